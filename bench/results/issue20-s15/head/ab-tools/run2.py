"""python run.py TREE ls|lineage [N] [--profile F] : fresh-process CLI runs against the harness."""
import json, os, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, "/work/wt-head")
from bench.history_scale import _CHILD as _C0
_CHILD = _C0.replace("    t1 = time.perf_counter()\n    out = io.StringIO()", "    t1 = time.perf_counter(); c1 = time.process_time()\n    out = io.StringIO()").replace(
    "    t2 = time.perf_counter()\n    text = out.getvalue()", "    t2 = time.perf_counter(); c2 = time.process_time()\n    text = out.getvalue()").replace(
    '"seconds": t2 - t1,', '"seconds": t2 - t1, "main_cpu": c2 - c1,')
assert "main_cpu" in _CHILD and "c1 = time" in _CHILD
cfg = json.loads(Path("/tmp/head/env" + os.environ.get("HTAG","") + ".json").read_text())
tree, what = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1
cache = os.environ.get("HCACHE", "/tmp/head/client")
env = {**os.environ, **cfg["env"], "ARTIFACTSTORE_CACHE_DIR": cache, "PYTHONPATH": tree,
       "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
       "AWS_EC2_METADATA_DISABLED": "true"}
argv = (["ls"] if what == "ls" else ["lineage", cfg["deep_ref"]]) + [
    "--store", cfg["url"], "--project", cfg["project"], "--json"]
op = {"kind": "cli", "argv": argv}
if os.environ.get("PROFILE"):
    op["profile"] = os.environ["PROFILE"]
def ctl(c):
    Path("/tmp/head/ctl" + os.environ.get("HTAG","")).write_text(c)
    while Path("/tmp/head/ctl" + os.environ.get("HTAG","")).exists(): time.sleep(0.01)
for _ in range(n):
    ctl("reset")
    t = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", sys.executable, "-c", _CHILD, json.dumps(op)],
                          env=env, cwd=tree, capture_output=True, text=True)
    wall = time.perf_counter() - t
    cf = Path("/tmp/head/count" + os.environ.get("HTAG",""))
    cf.unlink(missing_ok=True)
    ctl("count")
    while True:
        try:
            reqs = json.loads(cf.read_text()); break
        except (OSError, ValueError):
            time.sleep(0.02)
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = done.stderr.strip().splitlines()[-1].split()
    print(json.dumps({"what": what, "tree": tree, "rc": reply["rc"], "s": round(reply["seconds"], 3), "main_cpu": round(reply["main_cpu"], 3),
                      "import_s": round(reply["import_s"], 3), "wall": round(wall, 3),
                      "cpu": round(float(cpu[1]) + float(cpu[2]), 2), "rss_mib": int(cpu[3]) // 1024,
                      "n_req": len(reqs), "reqs": [r[:90] for r in reqs] if len(reqs) < 6 else len(reqs),
                      "load": open("/proc/loadavg").read().split()[0]}), flush=True)
    if reply["rc"]:
        print(reply["out"][-2000:])
