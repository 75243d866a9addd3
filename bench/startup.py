"""What a CLI command costs before it does anything, before/after in the same run
(issue 20, part STARTUP).

``python -m bench.startup --before SRC [--rounds 5] [--scale 0.25] [--work DIR]``
makes the suite's table workload (``bench/suite/workloads.py``) at ``--scale``, logs
its v1 into a local store made as the suite makes it (``init`` defaults: a private,
encrypted project), starts moto's S3 on 127.0.0.1 in this process and
logs a small folder into a public S3 store there, then runs, each in a fresh process,
alternating the code of this checkout (``after``) with the package tree at ``--before``
(``before``, put first on PYTHONPATH; the order flips every round):

* ``--help``;
* ``ls`` of the local store and of the S3 store (each variant with its own client
  cache, warmed by one unmeasured run);
* ``get`` of table v1 (``bench:v0``) from the local store into a fresh folder with
  an empty client cache.

Both trees are byte-compiled first (this machine sets ``PYTHONDONTWRITEBYTECODE``).
Per run: wall seconds, CPU seconds (user + system) and peak RSS of the process
(``wait4``), moto's request count for the S3 runs, and the 1-minute load average when
the run started. Prints a Markdown table of medians (min-max) and writes the raw runs
to ``--json``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
LAUNCH = HERE / "bench" / "suite" / "launch.py"


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall s, CPU s and peak RSS KiB of ``python -m artifactstore argv`` (must succeed),
    started through the suite's launcher (``bench/suite/launch.py``: a child forked from
    this process, which runs moto, would report this process's peak RSS as its own).
    Wall is the launcher's (spawn to exit); CPU the launcher's and the command's."""
    report = Path(env["ARTIFACTSTORE_CACHE_DIR"] + ".report")
    report.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(LAUNCH), str(report), sys.executable,
                             "-m", "artifactstore", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{argv} failed: {err.decode(errors='replace')}")
    rss, wall = report.read_text().split()
    report.unlink()
    return float(wall), usage.ru_utime + usage.ru_stime, int(rss) >> 10


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="older package tree")
    parser.add_argument("--rounds", type=int, default=5,
                        help="before/after rounds, alternated (default 5)")
    parser.add_argument("--scale", type=float, default=0.25, help="table workload scale")
    parser.add_argument("--work", type=Path, default=Path("/tmp/startup-bench"),
                        help="work folder for the stores and the table (default "
                             "/tmp/startup-bench)")
    parser.add_argument("--json", type=Path, help="where the raw results go")
    args = parser.parse_args(argv)

    from artifactstore.testing.servers import moto_s3_server
    from bench.suite.workloads import generate

    trees = {"after": HERE, "before": args.before.resolve()}
    for tree in trees.values():
        compileall.compile_dir(str(tree / "artifactstore"), quiet=1)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = generate("table", work / "data", args.scale)
    v1 = data.versions[0]
    small = work / "small"
    (small / "a").mkdir(parents=True)
    (small / "a" / "f.txt").write_text("one\n")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "ARTIFACTSTORE_", "FSSPEC_", "PYTHONPATH"))}
    home = work / "home"  # the identity the private store's project is made with
    (home / ".config").mkdir(parents=True)
    base.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    store = str(work / "store")

    with moto_s3_server(bucket="startup") as server:
        s3env = {"AWS_ENDPOINT_URL": server.endpoint_url, "AWS_ACCESS_KEY_ID": server.access_key,
                 "AWS_SECRET_ACCESS_KEY": server.secret_key,
                 "AWS_DEFAULT_REGION": server.region}
        s3url = "s3://startup/store"

        def env(variant: str, cache: Path) -> dict[str, str]:
            return {**base, **s3env, "PYTHONPATH": str(trees[variant]),
                    "ARTIFACTSTORE_CACHE_DIR": str(cache)}

        setup = env("after", work / "setup-cache")
        _run(["init", store, "-q"], setup)  # the suite's: init defaults (private)
        _run(["log", "bench", str(v1), "--store", store, "-q"], setup)
        _run(["init", "--public", s3url], setup)
        _run(["log", "small", str(small), "--store", s3url, "-q"], setup)
        steps: dict[str, list[str]] = {
            "--help": ["--help"],
            "ls, local": ["ls", "--store", store, "-q"],
            "ls, S3 (moto)": ["ls", "--store", s3url, "-q"],
            "get table v1, local": ["get", "bench:v0", "--store", store, "-q"],
        }
        for variant in trees:  # warm each variant's own cache for the ls runs
            for name in ("ls, local", "ls, S3 (moto)"):
                _run(steps[name], env(variant, work / f"cache-{variant}"))
        runs: list[dict[str, Any]] = []
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name, cmd in steps.items():
                for variant in order:
                    cache = work / f"cache-{variant}"
                    argv_ = list(cmd)
                    if name.startswith("get"):
                        cache = work / f"get-cache-{variant}-{r}"
                        target = work / f"out-{variant}-{r}"
                        argv_ += ["--dir", str(target)]
                    load = _load()
                    count = server.request_count
                    wall, cpu, rss = _run(argv_, env(variant, cache))
                    requests = server.request_count - count
                    if name.startswith("get"):
                        shutil.rmtree(target)
                        shutil.rmtree(cache)
                    runs.append({"step": name, "variant": variant, "round": r, "wall": wall,
                                 "cpu": cpu, "rss_kib": rss, "load": load,
                                 "requests": requests if "S3" in name else None})
                    print(f"{r} {name:22} {variant:6} wall {wall:.3f} cpu {cpu:.3f} "
                          f"rss {rss >> 10} MiB load {load:.2f}"
                          + (f" requests {requests}" if "S3" in name else ""), flush=True)
    print()
    print("| step | variant | wall s, median (min-max) | CPU s, median (min-max) | "
          "peak RSS MiB | requests | load |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in steps:
        for variant in ("before", "after"):
            mine = [x for x in runs if x["step"] == name and x["variant"] == variant]
            walls = [x["wall"] for x in mine]
            cpus = [x["cpu"] for x in mine]
            loads = [x["load"] for x in mine]
            reqs = {x["requests"] for x in mine}
            print(f"| {name} | {variant} | {statistics.median(walls):.3f} "
                  f"({min(walls):.3f}-{max(walls):.3f}) | {statistics.median(cpus):.3f} "
                  f"({min(cpus):.3f}-{max(cpus):.3f}) | "
                  f"{max(x['rss_kib'] for x in mine) >> 10} | "
                  f"{'/'.join(str(q) for q in sorted(reqs)) if None not in reqs else ''} | "
                  f"{min(loads):.1f}-{max(loads):.1f} |")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
