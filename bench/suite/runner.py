"""Runs every tool on every workload: add each version, restore v1, verify it.

One repetition of a tool on a workload: a fresh repo; for each version ``os.sync()``,
read the version folder once (untimed, so the page cache is warm for every tool
alike), then the timed add and the repo's size; then restore v1 into an empty folder
(timed) and compare it with the generated v1 byte for byte, raising
:class:`VerifyError` on any difference. Repetitions of one workload rotate the tool
order, so no tool always runs first.

Nothing is deleted while a workload runs: every repetition gets its own repo and
restore folders, removed together at the end, followed by :func:`settle`. Why: ext4
without a journal (this machine's) does not reuse an inode freed in the last 60 s
(300 s while its inode table block is dirty), and each file creation scans past such
inodes (``recently_deleted`` in the kernel's profile). Deleting a 20,000-file tree
made the next 20,000 creations cost 5-13 s instead of 0.6 s, whichever tool came next.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench.suite.tools import Tool
from bench.suite.workloads import Workload, files_of


class VerifyError(AssertionError):
    """A restore differs from the version it restored."""


def verify(expected: Path, got: Path) -> int:
    """Raise unless ``got`` holds exactly the files of ``expected``, byte for byte."""
    want, have = files_of(expected), files_of(got)
    if want != have:
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        raise VerifyError(f"restore of {expected} into {got}: missing {missing[:5]}, "
                          f"extra {extra[:5]}")
    for rel in want:
        if not filecmp.cmp(expected / rel, got / rel, shallow=False):
            raise VerifyError(f"restore of {expected}: {rel} differs")
    return len(want)


def warm(root: Path) -> None:
    """Read every file under ``root`` once, so the page cache holds it for the next step."""
    for rel in files_of(root):
        with open(root / rel, "rb", buffering=0) as f:
            while f.read(8 << 20):
                pass


#: seconds to wait after deleting trees (module docstring): ext4's 60 s, and a margin
SETTLE_S = 65.0


def settle(seconds: float, log: Any = print) -> None:
    """Write back what is dirty, then wait until freed inodes may be reused again."""
    os.sync()
    if seconds > 0:
        log(f"  settling {seconds:.0f} s (inodes freed by deletions; runner docstring)")
        time.sleep(seconds)


def metadata_bytes(tool: object) -> int | None:
    """The tool's local metadata now, for a tool that reports it (artifactstore), else None."""
    measure = getattr(tool, "metadata_bytes", None)
    return None if measure is None else int(measure())


def _median_or_none(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def run_once(tool: Tool, workload: Workload, scratch: Path, rep: int = 0) -> dict[str, Any]:
    repo, out = scratch / f"{tool.name}-{rep}", scratch / f"{tool.name}-{rep}-restore"
    for p in (repo, out):
        shutil.rmtree(p, ignore_errors=True)
    try:
        tool.init(repo)
        adds = []
        for label, folder in zip(workload.labels, workload.versions, strict=True):
            os.sync()
            warm(folder)
            tool.add(folder, label)
            adds.append({"version": label, "seconds": tool.last.seconds,
                         "max_rss": tool.last.max_rss, "stored_bytes": tool.stored_bytes(),
                         "metadata_bytes": metadata_bytes(tool)})
        out.mkdir()
        os.sync()
        tool.restore(workload.labels[0], out)
        restore = {"version": workload.labels[0], "seconds": tool.last.seconds,
                   "max_rss": tool.last.max_rss, "metadata_bytes": metadata_bytes(tool)}
        restore["files_verified"] = verify(workload.versions[0], out)
    finally:
        tool.cleanup()  # repo and restore stay until the workload is done (docstring)
    return {"adds": adds, "restore": restore, "verified": True}


def summarize(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repetitions, per version and for the restore."""
    med = statistics.median
    n = len(reps[0]["adds"])
    add_s = [med(r["adds"][i]["seconds"] for r in reps) for i in range(n)]
    return {
        "versions": [a["version"] for a in reps[0]["adds"]],
        "add_s": add_s,
        "add_total_s": med(sum(a["seconds"] for a in r["adds"]) for r in reps),
        "stored_bytes": [med(r["adds"][i]["stored_bytes"] for r in reps) for i in range(n)],
        "restore_s": med(r["restore"]["seconds"] for r in reps),
        "peak_rss": med(max([a["max_rss"] for a in r["adds"]] + [r["restore"]["max_rss"]])
                        for r in reps),
        "add_peak_rss": med(max(a["max_rss"] for a in r["adds"]) for r in reps),
        "restore_peak_rss": med(r["restore"]["max_rss"] for r in reps),
        # local metadata after each add and after the restore (None: the tool has none)
        "metadata_bytes": [_median_or_none([r["adds"][i].get("metadata_bytes") for r in reps])
                           for i in range(n)],
        "restore_metadata_bytes": _median_or_none(
            [r["restore"].get("metadata_bytes") for r in reps]),
        "verified": all(r["verified"] for r in reps),
        "reps": len(reps),
    }


# Metrics compared across tools: lower is better for all of them.
METRICS = ("add_total_s", "restore_s", "final_stored_bytes", "peak_rss")


def family(tool: str) -> str:
    """The program a tool name runs: ``artifactstore-public`` is ``artifactstore``."""
    return tool.partition("-")[0]


def ratios(by_tool: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each tool's value over the best (lowest) value among the other tools (not a
    variant of the same program: ``family``)."""
    def value(summary: dict[str, Any], metric: str) -> float:
        if metric == "final_stored_bytes":
            return float(summary["stored_bytes"][-1])
        return float(summary[metric])

    out: dict[str, dict[str, float | None]] = {}
    for name, summary in by_tool.items():
        others = [s for n, s in by_tool.items() if family(n) != family(name)]
        out[name] = {}
        for metric in METRICS:
            best = min((value(s, metric) for s in others), default=None)
            out[name][metric] = value(summary, metric) / best if best else None
    return out


def run_workload(tools: list[Tool], workload: Workload, scratch: Path,
                 reps: int, log: Any = print, settle_s: float = SETTLE_S) -> dict[str, Any]:
    raw: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tools}
    need = 3 * max(workload.nbytes) * len(tools) * reps
    scratch.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(scratch).free < need:
        raise OSError(f"{scratch} has {shutil.disk_usage(scratch).free >> 30} GiB free; this "
                      f"workload keeps every repetition until it ends: about {need >> 30} GiB")
    try:
        for i in range(reps):
            shift = i % len(tools)
            for tool in tools[shift:] + tools[:shift]:
                log(f"  {workload.name} rep {i + 1}/{reps}: {tool.name} ...")
                raw[tool.name].append(run_once(tool, workload, scratch, i))
    finally:
        for p in list(scratch.iterdir()):
            shutil.rmtree(p, ignore_errors=True)
        settle(settle_s, log)
    summaries = {name: summarize(r) for name, r in raw.items()}
    return {
        "versions": list(workload.labels),
        "nbytes": list(workload.nbytes),
        "files": list(workload.files),
        "tools": summaries,
        "ratios_vs_best_other": ratios(summaries),
        "raw": raw,
    }
