"""Read-only commands at scale, before/after in the same run (issue 20, part LAZY).

``python -m bench.readonly_scale --store DIR --name N --ref N:vA --old N:vA --new N:vB
--folder F --before SRC`` runs ``artifactstore --help``, ``ls N``, ``show REF F`` and
``diff OLD NEW F`` each in a fresh process, alternating the code of this checkout
(``after``) with the package tree at ``--before`` (``before``, put first on
PYTHONPATH), ``--reps`` rounds. Each variant has its own client cache (the merged
index's cache layout differs), warmed by one unmeasured run of each command; bytecode
is written and used as an installed package's is. Per run: wall seconds, CPU seconds
(user + system) and peak RSS of the process (``wait4``), and the load average when the
round started. Prints a Markdown table of medians (with min and max) and writes the raw
runs to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TypedDict


class _Timing(TypedDict):
    """One measured run, as written to ``--json``."""

    rep: int
    command: str
    variant: str
    wall: float
    cpu: float
    rss_kib: int
    exit: int
    load: float


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, int]:
    """Wall s, CPU s, peak RSS KiB and exit code of ``python -m artifactstore argv``."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "artifactstore", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd="/")
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.stderr.write(err.decode(errors="replace"))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, help="the store (a local path or URL)")
    ap.add_argument("--name", required=True, help="the artifact `ls NAME` lists")
    ap.add_argument("--ref", required=True, help="the version `show REF FOLDER` lists")
    ap.add_argument("--old", required=True, help="the first version of `diff OLD NEW FOLDER`")
    ap.add_argument("--new", required=True, help="the second version of `diff OLD NEW FOLDER`")
    ap.add_argument("--folder", required=True, help="the folder `show` and `diff` look at")
    ap.add_argument("--before", required=True, help="a package tree (the code before)")
    ap.add_argument("--caches", default="/tmp/readonly-caches",
                    help="client caches go in DIR/before and DIR/after")
    ap.add_argument("--reps", type=int, default=5, help="rounds of each variant (default 5)")
    ap.add_argument("--json", default=None, help="also write the raw runs as JSON here")
    args = ap.parse_args(argv)
    here = str(Path(__file__).resolve().parents[1])
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    envs = {
        "before": {**base, "PYTHONPATH": args.before,
                   "ARTIFACTSTORE_CACHE_DIR": f"{args.caches}/before"},
        "after": {**base, "PYTHONPATH": here, "ARTIFACTSTORE_CACHE_DIR": f"{args.caches}/after"},
    }
    store = ["--store", args.store]
    commands = {
        "--help": ["--help"],
        "ls NAME": ["ls", args.name, *store],
        "show REF FOLDER": ["show", args.ref, args.folder, *store],
        "diff OLD NEW FOLDER": ["diff", args.old, args.new, args.folder, *store],
    }
    for variant, env in envs.items():  # warm-up: the index cache, bytecode
        for label, command in commands.items():
            wall, cpu, rss, code = _run(command, env)
            print(f"warm-up {variant:6} {label:20} {wall:6.2f} s {cpu:6.2f} cpu "
                  f"{rss / 1024:6.0f} MiB exit {code}", flush=True)
    runs: list[_Timing] = []
    for rep in range(args.reps):
        for label, command in commands.items():
            order = ("before", "after") if rep % 2 == 0 else ("after", "before")
            for variant in order:
                load = os.getloadavg()[0]
                wall, cpu, rss, code = _run(command, envs[variant])
                runs.append({"rep": rep, "command": label, "variant": variant, "wall": wall,
                             "cpu": cpu, "rss_kib": rss, "exit": code, "load": load})
                print(f"{rep} {variant:6} {label:20} {wall:6.2f} s {cpu:6.2f} cpu "
                      f"{rss / 1024:6.0f} MiB load {load:.1f}", flush=True)
    print("\n| command | variant | wall s median (min-max) | CPU s median | peak RSS MiB "
          "| load |\n| --- | --- | ---: | ---: | ---: | ---: |")
    for label in commands:
        for variant in envs:
            mine = [r for r in runs if r["command"] == label and r["variant"] == variant]
            walls = [r["wall"] for r in mine]
            print(f"| `{label}` | {variant} | {statistics.median(walls):.2f} "
                  f"({min(walls):.2f}-{max(walls):.2f}) "
                  f"| {statistics.median(r['cpu'] for r in mine):.2f} "
                  f"| {max(r['rss_kib'] for r in mine) / 1024:.0f} "
                  f"| {min(r['load'] for r in mine):.1f}-{max(r['load'] for r in mine):.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    return 1 if any(r["exit"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
