"""The final code at a million files: log and unchanged re-log of the shared tree (read only)."""
import json, sys, shutil
from pathlib import Path
sys.path.insert(0, "/tmp/stream-after2")
from bench.files_scale import Runner
work = Path("/tmp/stream-1m-final"); shutil.rmtree(work, ignore_errors=True); work.mkdir()
r = Runner(work); r.pythonpath = "/tmp/stream-after2"
load = [Path("/proc/loadavg").read_text().split()[0]]
store = str(work / "store"); src = "/tmp/million-1m/src"
r.tool("init", ["init", store, "-q"])
r.tool("log", ["--json", "log", "many", src, "--store", store, "-q"])
r.tool("re-log unchanged", ["--json", "log", "many", src, "--store", store, "-q"])
r.tool("re-log unchanged (2)", ["--json", "log", "many", src, "--store", store, "-q"])
load.append(Path("/proc/loadavg").read_text().split()[0])
Path("/tmp/stream-1m-final.json").write_text(json.dumps({"measures": [m.__dict__ for m in r.measures], "load": load}, indent=1))
for m in r.measures: print(m.step, round(m.seconds, 2), round(m.cpu, 2), m.max_rss >> 20)
print(load)
shutil.rmtree(work, ignore_errors=True)
