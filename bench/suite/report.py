"""The Markdown table and the machine description of a suite run."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

MIB = 1 << 20


def machine(work: Path) -> dict[str, Any]:
    """``bench/ingest.py``'s machine description, or a minimal one if it cannot load."""
    path = Path(__file__).resolve().parent.parent / "ingest.py"
    try:
        spec = importlib.util.spec_from_file_location("_bench_ingest", path)
        if spec is None or spec.loader is None:
            raise ImportError(path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        info: dict[str, Any] = module.machine(work)
        return info
    except Exception as exc:  # a machine description must never stop the run
        return {"cores": os.cpu_count(), "os": f"{platform.system()} {platform.release()}",
                "python": platform.python_version(), "error": repr(exc)}


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def markdown(doc: dict[str, Any]) -> str:
    info = doc["machine"]
    lines = [
        f"# Suite: artifactstore vs other tools ({doc['date']} UTC)",
        "",
        f"Machine: {info.get('cpu', '?')}, {info.get('cores')} cores, "
        f"{info.get('ram_gib', '?')} GiB RAM, {info.get('os')}, {info.get('filesystem', '?')}; "
        f"python {info.get('python')}; git {info.get('git')}. Load average before/after: "
        f"{doc['load_average']['before'][0]:.2f} / {doc['load_average']['after'][0]:.2f}.",
        f"Scale {doc['settings']['scale']}, {doc['settings']['reps']} repetition(s), medians; "
        f"seed {doc['settings']['seed']}. MiB = 2^20 bytes. Tools: "
        + ", ".join(f"{n} ({v})" for n, v in doc["tools"].items())
        + (f"; not installed: {', '.join(doc['missing'])}" if doc["missing"] else "") + ".",
        "",
        "Columns: time to add each version (each a full folder), its sum, time to restore v1 "
        "into an empty folder (verified byte for byte), repository size after each version, "
        "peak RSS of the tool's processes over all steps; `x best other` divides by the best "
        "(lowest) value among the other tools.",
    ]
    for name, w in doc["workloads"].items():
        sizes = " / ".join(f"{b / MIB:.1f}" for b in w["nbytes"])
        files = " / ".join(str(f) for f in w["files"])
        lines += ["", f"## {name}: {' / '.join(w['versions'])} = {sizes} MiB, {files} files", "",
                  "| tool | add s (per version) | add s total | restore v1 s | stored MiB "
                  "(after each) | peak RSS MiB | x best other: add / restore / stored / RSS |",
                  "| --- | --- | ---: | ---: | --- | ---: | --- |"]
        for tool, s in w["tools"].items():
            r = w["ratios_vs_best_other"][tool]
            lines.append(
                f"| {tool} | {' / '.join(f'{x:.2f}' for x in s['add_s'])} | "
                f"{s['add_total_s']:.2f} | {s['restore_s']:.2f} | "
                f"{' / '.join(f'{b / MIB:.1f}' for b in s['stored_bytes'])} | "
                f"{s['peak_rss'] / MIB:.0f} | "
                + " / ".join(_ratio(r[m]) for m in ("add_total_s", "restore_s",
                                                     "final_stored_bytes", "peak_rss"))
                + " |")
    return "\n".join(lines) + "\n"
