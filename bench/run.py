"""artifactstore, DVC, restic and borg on the same workloads, side by side (issue 7).

For each workload (``bench/suite/workloads.py``) and each installed tool: a fresh repo,
add every version (timed, repository size after each), restore v1 into an empty folder
(timed) and verify it byte for byte; peak RSS of each step's processes. Medians over
``--reps``; a Markdown table with ratios against the best other tool, and raw JSON.
With ``--s3``, the S3 case instead (``bench/suite/s3.py``): push, unchanged re-push and
restore of v1 against a moto server on 127.0.0.1 that counts the HTTP requests.

    python -m bench --scale 0.05 --reps 1            # quick look (or python bench/run.py)
    python -m bench --json r.json --markdown r.md
    python -m bench --s3 --scale 0.05 --reps 1       # the S3 case (images, model)

Tools that are not installed are skipped and named in the output. Results go to
``bench/results/`` unless ``--json``/``--markdown`` say otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.suite import report, runner, s3, workloads
from bench.suite.tools import TOOLS

RESULTS = Path(__file__).resolve().parent / "results"
S3_WORKLOADS = ("images", "model")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="size/count factor (default 1)")
    p.add_argument("--workloads", default=None,
                   help=f"default: {','.join(workloads.NAMES)}; "
                        f"with --s3 (alone): {','.join(S3_WORKLOADS)}")
    p.add_argument("--tools", default=",".join(TOOLS),
                   help=f"comma-separated tools to compare (default: {','.join(TOOLS)})")
    p.add_argument("--reps", type=int, default=3,
                   help="repetitions of each step; tables show medians (default 3)")
    p.add_argument("--json", type=Path, default=None,
                   help="where the raw results go (default bench/results/suite-<time>.json)")
    p.add_argument("--markdown", type=Path, default=None,
                   help="where the report goes (default bench/results/suite-<time>.md)")
    p.add_argument("--out", type=Path, default=None,
                   help="work dir to keep (and reuse) the generated data")
    p.add_argument("--s3", action="store_true",
                   help="run the S3 case (request counts against a moto server on 127.0.0.1 "
                        "that the suite starts and stops) instead of the local one")
    p.add_argument("--local", action="store_true", help="with --s3: run the local case too")
    p.add_argument("--settle", type=float, default=None, metavar="S",
                   help="seconds to wait after deleting a workload's trees, so freed inodes "
                        f"do not slow the next tool's file creation (default "
                        f"{runner.SETTLE_S:.0f} at scale >= 0.5, else 0)")
    args = p.parse_args(argv)
    if args.settle is None:
        args.settle = runner.SETTLE_S if args.scale >= 0.5 else 0.0
    default = S3_WORKLOADS if args.s3 and not args.local else workloads.NAMES
    args.workloads = [w for w in (args.workloads or ",".join(default)).split(",") if w]
    args.tools = [t for t in args.tools.split(",") if t]
    for t in args.tools:
        if t not in TOOLS:
            p.error(f"unknown tool {t!r}; choose from {', '.join(TOOLS)}")
    for w in args.workloads:
        if w not in workloads.NAMES:
            p.error(f"unknown workload {w!r}; choose from {', '.join(workloads.NAMES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, work)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    started = datetime.datetime.now(datetime.UTC)
    tools = [TOOLS[name]() for name in args.tools]
    present = [t for t in tools if t.available()]
    missing = [t.name for t in tools if not t.available()]
    versions = {t.name: t.version() for t in present}
    print(f"work dir {work}; tools: {', '.join(f'{n} {v}' for n, v in versions.items())}"
          + (f"; not installed (skipped): {', '.join(missing)}" if missing else ""), flush=True)
    load_before, t0 = os.getloadavg(), time.perf_counter()
    runner.settle(args.settle, log=lambda m: print(m, flush=True))  # earlier deletions
    results, generated = {}, []
    for name in args.workloads:
        print(f"generating {name} at scale {args.scale} ...", flush=True)
        w = workloads.generate(name, work / "data", args.scale)
        generated.append(w)
        if args.local or not args.s3:
            results[name] = runner.run_workload(present, w, work / "scratch", args.reps,
                                                log=lambda m: print(m, flush=True),
                                                settle_s=args.settle)
    s3_doc = None
    if args.s3:
        s3_doc = s3.run(args.tools, generated, work / "scratch", args.reps,
                        log=lambda m: print(m, flush=True), settle_s=args.settle)
    doc = {
        "date": started.isoformat(timespec="seconds"),
        "machine": report.machine(work),
        "settings": {"scale": args.scale, "reps": args.reps, "seed": workloads.SEED,
                     "cases": ["local"] * bool(results) + ["s3"] * bool(args.s3),
                     "workloads": args.workloads, "page_cache": "warm: each version read "
                     "just before its add", "mib": 1 << 20, "settle_s": args.settle},
        "tools": versions,
        "missing": missing,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "total_s": time.perf_counter() - t0,
        "workloads": results,
        "s3": s3_doc,
    }
    text = report.markdown(doc)
    print()
    print(text)
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + ("-s3" if args.s3 else "")
    json_path = args.json or RESULTS / f"suite-{stamp}.json"
    md_path = args.markdown or RESULTS / f"suite-{stamp}.md"
    for path in (json_path, md_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    md_path.write_text(text)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
