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


def metadata_cell(after_adds: list[float | None] | None, after_restore: float | None) -> str:
    """``a / b / c; restore r`` in MiB, or ``-`` for a tool without local metadata."""
    if not after_adds or all(b is None for b in after_adds):
        return "-"
    adds = " / ".join("-" if b is None else f"{b / MIB:.2f}" for b in after_adds)
    return adds + ("" if after_restore is None else f"; restore {after_restore / MIB:.2f}")


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
    ]
    if doc["workloads"]:
        lines += [
            "",
            "Columns: time to add each version (each a full folder), its sum, time to restore "
            "v1 into an empty folder (verified byte for byte), repository size after each "
            "version, peak RSS of the tool's processes over all steps, artifactstore's local "
            "metadata (refs, index, catalog, stat cache and `known` in its cache folder, "
            "`local/metadata.py`) after each add and after the restore; `x best other` "
            "divides by the best (lowest) value among the other programs (`artifactstore` "
            "runs a store made by `init`, private and encrypted, and `artifactstore-public` "
            "one made by `init --public`; neither is compared with the other).",
        ]
    for name, w in doc["workloads"].items():
        sizes = " / ".join(f"{b / MIB:.1f}" for b in w["nbytes"])
        files = " / ".join(str(f) for f in w["files"])
        lines += ["", f"## {name}: {' / '.join(w['versions'])} = {sizes} MiB, {files} files", "",
                  "| tool | add s (per version) | add s total | restore v1 s | stored MiB "
                  "(after each) | peak RSS MiB | local metadata MiB (after each; restore) | "
                  "x best other: add / restore / stored / RSS |",
                  "| --- | --- | ---: | ---: | --- | ---: | --- | --- |"]
        for tool, s in w["tools"].items():
            r = w["ratios_vs_best_other"][tool]
            lines.append(
                f"| {tool} | {' / '.join(f'{x:.2f}' for x in s['add_s'])} | "
                f"{s['add_total_s']:.2f} | {s['restore_s']:.2f} | "
                f"{' / '.join(f'{b / MIB:.1f}' for b in s['stored_bytes'])} | "
                f"{s['peak_rss'] / MIB:.0f} | "
                f"{metadata_cell(s.get('metadata_bytes'), s.get('restore_metadata_bytes'))} | "
                + " / ".join(_ratio(r[m]) for m in ("add_total_s", "restore_s",
                                                     "final_stored_bytes", "peak_rss"))
                + " |")
    if doc.get("s3") is not None:
        lines += s3_markdown(doc["s3"], doc["settings"]["scale"])
    return "\n".join(lines) + "\n"


_STEP_NAMES = {"init": "init", "push": "push v1", "repush": "re-push v1 (unchanged)",
               "restore": "restore v1 (cold cache)"}


def _judged(value: float, target: float | None, scale: float) -> str:
    """`` ✗`` over the target; `` ✓`` within it at full scale; nothing below full scale.

    Why not judged below scale 1: the targets are for the full workload, and requests
    and memory grow with the data, so only a miss at a small scale tells something.
    """
    if target is None:
        return ""
    if value > target:
        return " ✗"
    return " ✓" if scale >= 1 else ""


def s3_markdown(s3: dict[str, Any], scale: float) -> list[str]:
    """The S3 section: per workload, one row per tool and step."""
    targets, rss_target = s3["targets"]["requests"], s3["targets"]["peak_rss"]
    quotes = s3["issue_quotes"]
    lines = [
        "", f"## S3 ({s3['server']}; moto {s3['moto']})", "",
        "Per step: HTTP requests the server received while it ran (by kind; LIST = a GET "
        "listing a bucket's keys), body MiB uploaded / downloaded, wall time, peak RSS of the "
        "tool's processes. push v1 = first upload of v1 into a new repository (created by "
        "init); re-push = the same v1 again with the client caches of the push; restore = v1 "
        "into an empty folder with an empty client cache (keys and config kept), verified "
        "byte for byte. artifactstore runs through its API (`open` + `log_artifact`, "
        "`artifact(ref).download`); DVC's push is `dvc add` + `dvc push`, its restore "
        "`dvc pull`. Targets (issue 7, for scale 1): images push v1 at most "
        f"{targets['images']['push']} requests (issue: restic "
        f"{quotes['restic images push requests']:,}, DVC {quotes['dvc images push requests']:,})"
        f", unchanged re-push at most {targets['images']['repush']}, restore at most "
        f"{targets['images']['restore']}; peak RSS at most {rss_target / MIB:.0f} MiB "
        f"(issue: DVC's model push {quotes['dvc model push peak RSS MiB']} MiB). ✗ = over its "
        "target; ✓ = within it (judged at scale 1 only). Local metadata: artifactstore's "
        "refs, index, catalog, stat cache and `known` in the cache folder after the step "
        "(the restore's: the cache it started empty). `x best other` divides the requests "
        "by the fewest among the other tools.",
    ]
    if s3["missing"]:
        lines.append(f"Not run (no S3 support installed): {', '.join(s3['missing'])}.")
    for name, w in s3["workloads"].items():
        wt = targets.get(name, {})
        lines += ["", f"### S3 {name}: {w['version']} = {w['nbytes'] / MIB:.1f} MiB, "
                  f"{w['files']} files", "",
                  "| tool | step | requests | GET / PUT / POST / HEAD / DELETE / LIST | "
                  "MiB up / down | s | peak RSS MiB | stored MiB (objects) | "
                  "local metadata MiB | x best other |",
                  "| --- | --- | ---: | --- | --- | ---: | ---: | --- | ---: | ---: |"]
        for tool, s in w["tools"].items():
            r = w["ratios_vs_best_other"][tool]
            for step in ("init", "push", "repush", "restore"):
                st = s["steps"][step]
                kinds = " / ".join(f"{st['by_kind'].get(k, 0):g}" for k in
                                   ("GET", "PUT", "POST", "HEAD", "DELETE", "LIST"))
                other = {k: n for k, n in st["by_kind"].items()
                         if k not in ("GET", "PUT", "POST", "HEAD", "DELETE", "LIST") and n}
                kinds += "".join(f", {k} {n:g}" for k, n in other.items())
                spread = sorted(set(st["requests_each_rep"]))
                count = f"{st['requests']:,.0f}" + _judged(st["requests"], wt.get(step), scale)
                if len(spread) > 1:
                    count += f" ({spread[0]:,}-{spread[-1]:,})"
                if st["max_rss"] == 0:  # no measured command: local set-up only
                    seconds = rss = "local only"
                else:
                    seconds = f"{st['seconds']:.2f}"
                    rss = f"{st['max_rss'] / MIB:.0f}" + _judged(st["max_rss"], rss_target, scale)
                stored = (f"{st['stored_bytes'] / MIB:.1f} ({st['stored_objects']:,.0f})"
                          if "stored_bytes" in st else "")
                ratio = _ratio(r.get(f"{step}_requests"))
                meta = st.get("metadata_bytes")
                meta_cell = "-" if meta is None else f"{meta / MIB:.2f}"
                lines.append(
                    f"| {tool} | {_STEP_NAMES[step]} | {count} | {kinds} | "
                    f"{st['bytes_in'] / MIB:.1f} / {st['bytes_out'] / MIB:.1f} | {seconds} | "
                    f"{rss} | {stored} | {meta_cell} | {ratio} |")
        for tool, why in s3["not_applicable"].items():
            lines.append(f"| {tool} | n/a: {why} | | | | | | | | |")
        if "artifactstore" in w["tools"]:
            lines += ["", f"artifactstore's requests on {name} by path (ids as `*`; a listing "
                      "shows its prefix, `(deep)` when it has no delimiter):", ""]
            for step in ("init", "push", "repush", "restore"):
                shapes = w["tools"]["artifactstore"]["steps"][step]["by_shape"]
                lines.append(f"- {_STEP_NAMES[step]}: " + ", ".join(
                    f"`{shape}` {n:g}" for shape, n in shapes.items() if n))
        lines += ["", "Peak RSS over all steps, MiB (x best other): " + ", ".join(
            f"{tool} {s['peak_rss'] / MIB:.0f}{_judged(s['peak_rss'], rss_target, scale)} "
            f"({_ratio(w['ratios_vs_best_other'][tool]['peak_rss']) or '-'})"
            for tool, s in w["tools"].items())
            + ". init + push v1 requests: " + ", ".join(
            f"{tool} {s['steps']['init']['requests'] + s['steps']['push']['requests']:,.0f}"
            for tool, s in w["tools"].items()) + "."]
    return lines
