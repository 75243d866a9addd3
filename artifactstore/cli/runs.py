"""Commands over runs: runs ls, runs show, runs export, runs media, runs purge,
runs plot, runs diff-code.

Vocabulary: a **run** as read back is a :class:`~artifactstore.local.catalog.RunInfo`;
its **record** is ``RunInfo.as_dict()`` plus ``last_heartbeat``; its **history**
is its metrics rows (``step``, ``at``, ``values``) in order. Export formats:

- ``jsonl``: one record per line; with ``--history`` each also holds
  ``"history"``, a list of ``{step, at, values}``, written row by row.
- ``csv``: one row per run: :data:`RUN_COLUMNS`, then ``config.<dotted key>``
  and ``summary.<dotted key>`` for the union of keys over the runs. With
  ``--history``, one row per (run, step) instead: ``run_id, step, at`` and
  ``metrics.<key>`` for the union of metric keys (join on ``run_id``).

A cell holds text as it is, ``true``/``false``, numbers, nothing for None, and
JSON for lists. The ``--output`` file appears complete or not at all.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import artifactstore
from artifactstore.cli._common import (
    add_action,
    open_existing,
    open_output,
    progress_bar,
    say,
    table,
)
from artifactstore.core.errors import InvalidInputError, local_write_error
from artifactstore.core.sizes import human_size
from artifactstore.model.paths import join_under

if TYPE_CHECKING:  # each command imports what it uses (cli/main.py: start-up)
    from artifactstore.local.catalog import RunInfo


RUN_COLUMNS: Final = (
    "run_id", "name", "job_type", "status", "started_at", "ended_at", "by", "tags",
    "git_commit", "git_branch", "git_dirty", "inputs", "outputs", "error",
)  # fmt: skip


def _select(store: artifactstore.Store, args: argparse.Namespace) -> list[RunInfo]:
    # A CLI process is one-shot: always read the store's current state.
    return store.runs(job_type=args.job_type, status=args.status, tag=args.tag,
                      since=args.since, until=args.until, sync=True)


def _record(run: RunInfo) -> dict[str, Any]:
    return {**run.as_dict(), "last_heartbeat": run.last_heartbeat}


def _duration(run: RunInfo) -> str:
    from artifactstore.records.runs import parse_time

    if run.ended_at is None:
        return "-"
    seconds = (parse_time(run.ended_at) - parse_time(run.started_at)).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _flatten(value: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Nested mappings as ``prefix + dotted key``; an empty mapping or a media reference
    stays one value."""
    from artifactstore.media import is_reference

    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, Mapping) and item and not is_reference(item):
            flat.update(_flatten(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def ls(args: argparse.Namespace) -> list[dict[str, Any]]:
    from artifactstore.records.runs import parse_time

    with open_existing(args) as store:
        runs = _select(store, args)
    if not runs:
        filtered = any(getattr(args, f) for f in ("job_type", "status", "tag", "since", "until"))
        say(args, "no runs match these filters" if filtered else
            "no runs yet: record one with 'with store.run(job_type=...) as run:' in Python")
    else:
        rows = [("ID", "NAME", "JOB TYPE", "STATUS", "STARTED (UTC)", "DURATION",
                 "INPUTS -> OUTPUTS")]
        rows += [(r.run_id, r.name or "-", r.job_type or "-", r.status,
                  f"{parse_time(r.started_at).astimezone(UTC):%Y-%m-%d %H:%M:%S}", _duration(r),
                  f"{','.join(r.inputs) or '-'} -> {','.join(r.outputs) or '-'}") for r in runs]
        say(args, table(rows))
    return [_record(r) for r in runs]


def show(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        run = store.get_run(args.run_id, sync=True)
    lines = [f"{key:15} {_cell(value) or '-'}" for key, value in (
        ("run_id", run.run_id), ("name", run.name), ("job_type", run.job_type),
        ("status", run.status), ("error", run.error),
        ("state", run.state if run.state_at is None else
         f"{run.state} on {run.state_at[:19]} by {run.state_by}: "
         f"{run.state_reason or 'no reason given'}"),
        ("started_at", run.started_at),
        ("ended_at", run.ended_at), ("duration", _duration(run)),
        ("last_heartbeat", run.last_heartbeat), ("by", run.by), ("tags", ", ".join(run.tags)),
        ("inputs", ", ".join(run.inputs)), ("outputs", ", ".join(run.outputs)))]
    env = dict(run.env)
    if isinstance(env.get("packages"), list):
        env["packages"] = f"{len(env['packages'])} packages (see --json)"
    for title, values in (("code", run.code), ("config", run.config),
                          ("summary", run.summary), ("env", env)):
        flat = _flatten(values or {}, "")
        lines.append(f"{title}:" + ("" if flat else " -"))
        lines += [f"  {k} = {json.dumps(v, default=str)}" for k, v in flat.items()]
    say(args, "\n".join(lines))
    return _record(run)


def _write_jsonl(store: artifactstore.Store, runs: list[RunInfo], out: TextIO,
                 history: bool) -> int:
    for run in runs:
        line = json.dumps(_record(run), sort_keys=True, default=str)
        if not history:
            out.write(line + "\n")
            continue
        # Rows go out one by one: a long history is never held in memory.
        out.write(line[:-1] + ', "history": [')
        for i, row in enumerate(store.run_history(run.run_id)):
            body = {"step": row.step, "at": row.at, "values": dict(row.values)}
            out.write((", " if i else "") + json.dumps(body, sort_keys=True, default=str))
        out.write("]}\n")
    return len(runs)


def _csv_row(run: RunInfo) -> dict[str, Any]:
    code = run.code or {}
    return {
        "run_id": run.run_id, "name": run.name, "job_type": run.job_type,
        "status": run.status, "started_at": run.started_at, "ended_at": run.ended_at,
        "by": run.by, "tags": ";".join(run.tags), "git_commit": code.get("commit"),
        "git_branch": code.get("branch"), "git_dirty": code.get("dirty"),
        "inputs": ";".join(run.inputs), "outputs": ";".join(run.outputs), "error": run.error,
        **_flatten(run.config, "config."), **_flatten(run.summary, "summary."),
    }  # fmt: skip


def _write_csv(runs: list[RunInfo], out: TextIO) -> int:
    config: set[str] = set()
    summary: set[str] = set()
    for run in runs:
        config.update(_flatten(run.config, "config."))
        summary.update(_flatten(run.summary, "summary."))
    columns = [*RUN_COLUMNS, *sorted(config), *sorted(summary)]
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        row = _csv_row(run)
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    return len(runs)


def _write_csv_history(store: artifactstore.Store, runs: list[RunInfo], out: TextIO) -> int:
    # Two passes, so that no history is held: the first finds the metric columns.
    keys: dict[str, None] = {}
    for run in runs:
        for row in store.run_history(run.run_id):
            keys.update(dict.fromkeys(row.values))
    columns = ["run_id", "step", "at", *(f"metrics.{k}" for k in keys)]
    # A running run may log new metric names between the passes: those are left out.
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for run in runs:
        for row in store.run_history(run.run_id):
            writer.writerow({"run_id": run.run_id, "step": row.step, "at": row.at,
                             **{f"metrics.{k}": _cell(v) for k, v in row.values.items()}})
            count += 1
    return count


def export(args: argparse.Namespace) -> int | dict[str, Any]:
    with open_existing(args) as store:
        runs = _select(store, args)
        with open_output(args.output) as out:
            if args.format == "jsonl":
                rows = _write_jsonl(store, runs, out, args.history)
            elif args.history:
                rows = _write_csv_history(store, runs, out)
            else:
                rows = _write_csv(runs, out)
    if args.output is None:
        return 0  # the data went to stdout: nothing else may be printed there
    say(args, f"wrote {len(runs)} runs ({rows} {args.format} rows) to {args.output}")
    return {"output": args.output, "format": args.format, "history": args.history,
            "runs": len(runs), "rows": rows}


def _cell_files(reference: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The media files a reference names besides its own: masks of an image."""
    from artifactstore.media import is_file_reference

    masks = reference.get("masks")
    return [m for m in masks.values() if is_file_reference(m)] if isinstance(masks, dict) else []


def media(args: argparse.Namespace) -> list[dict[str, Any]]:
    from artifactstore.media import is_file_reference

    if args.step is not None and args.step < 0:
        raise InvalidInputError(f"--step is a step number >= 0, got {args.step}")
    out = Path(args.out) if args.out is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {args.out} is a file; name a folder")
    found: list[dict[str, Any]] = []
    with open_existing(args) as store:
        run_id = store.get_run(args.run_id, sync=True).run_id
        for entry in store.run_media(run_id, key=args.key, step=args.step):
            item: dict[str, Any] = {"step": entry.step, "key": entry.key,
                                    "reference": dict(entry.reference), "saved": []}
            if out is not None and is_file_reference(entry.reference):
                wanted = [entry.reference, *_cell_files(entry.reference)]
                first = store.media(run_id, entry.reference)
                if first.type == "table":
                    for row in first.table().rows:
                        for cell in row:
                            if is_file_reference(cell):
                                wanted += [cell, *_cell_files(cell)]
                for reference in wanted:
                    target = join_under(out, str(reference["path"]))
                    try:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        store.media(run_id, reference).save(target)
                    except OSError as exc:
                        raise local_write_error(exc, f"cannot write {target}",
                                                "choose another --out") from None
                    item["saved"].append(str(target))
            found.append(item)
    if not found:
        say(args, f"run {run_id} has no media" + (" matching these filters"
                                                   if args.key or args.step is not None else ""))
    else:
        rows = [("STEP", "KEY", "TYPE", "FORMAT", "SIZE", "PATH")]
        rows += [(str(i["step"]), i["key"], str(i["reference"]["_type"]),
                  str(i["reference"].get("format", "inline")),
                  human_size(i["reference"]["size"]) if "size" in i["reference"] else "-",
                  str(i["reference"].get("path", "-"))) for i in found]
        say(args, table(rows))
        saved = sum(len(i["saved"]) for i in found)
        if out is not None:
            say(args, f"saved {saved} files under {out}")
    return found


def purge(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store, progress_bar(args, f"purge run {args.run_id}") as count:
        report = store.purge_run(args.run_id, reason=args.reason, wait=not args.no_wait,
                                 on_wait=count.wait)
    say(args, f"purged the media of run {report.run_id} ({len(report.versions)} versions): "
              f"wiped {report.blobs_wiped} blobs ({human_size(report.bytes_wiped)}), rewrote "
              f"{report.packs_rewritten} packs; checked {report.indexes_checked} index objects "
              f"and {report.packs_checked} packs: "
              f"{'none holds them' if report.absent else 'SOME STILL DO'}; the run is deleted")
    return report.as_dict()
def plot(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.ui.charts import plot_metric  # imports matplotlib only when plotting

    with open_existing(args) as store:
        chart = plot_metric(store, args.run_ids, args.metric, args.out, x=args.x)
    empty = [s.run_id for s in chart.series if not s.points]
    say(args, f"wrote a chart of {args.metric} over {len(chart.series)} run(s) to {args.out}")
    if empty:
        say(args, f"no numeric {args.metric} in: {', '.join(empty)}")
    return chart.as_dict()


def diff_code(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        found = store.diff_code(args.run_a, args.run_b, repo=args.repo, sync=True)
    say(args, found.to_text().rstrip("\n"))
    return found.as_dict()


#: ``records.runs.STATUSES`` for the help text, which must not import the run records
#: (~40 ms: signatures, compression); tests/test_cli_startup.py checks they are equal
STATUSES = ("running", "finished", "failed", "crashed")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job-type", metavar="T", help="only runs of this job type")
    p.add_argument("--status", metavar="S", help=f"only runs in this state: {', '.join(STATUSES)}")
    p.add_argument("--tag", metavar="T", help="only runs with this tag")
    p.add_argument("--since", metavar="ISO", help="only runs started at or after this time")
    p.add_argument("--until", metavar="ISO", help="only runs started before this time")


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``runs`` command; ``add(name, handler, help)`` returns a subparser and
    ``common`` holds the global options every subcommand accepts."""
    p = add("runs", None, "list, show or export the runs of the project")
    runs = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    a = add_action(runs, common, "ls", ls, "the runs, oldest first",
                   description="List the runs, oldest first; --json prints their records.")
    _filters(a)
    a = add_action(runs, common, "show", show, "every field of one run",
                   description="Every field of one run: config, summary, code state, env, "
                               "inputs, outputs and error.")
    a.add_argument("run_id", metavar="RUN_ID", help="a run id or a unique prefix of one")
    a = add_action(
        runs, common, "export", export, "the runs as JSON Lines or CSV",
        description="Write the runs as JSON Lines (one record per run; with --history each "
                    "has a 'history' list of {step, at, values}) or CSV (one row per run: "
                    f"{', '.join(RUN_COLUMNS)} (tags, inputs and outputs joined with ';'), "
                    "then config.<dotted key> and summary.<dotted key> for the union of keys; "
                    "with --history one row per run and step instead: run_id, step, at and "
                    "metrics.<key>, to join with the run table on run_id). Writes to stdout "
                    "unless --output is given; the file appears only once complete.")
    a.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                   help="JSON Lines (the default) or CSV")
    a.add_argument("--output", "-o", metavar="FILE",
                   help="write here instead of stdout; --json then prints a summary")
    a.add_argument("--history", action="store_true", help="include the metrics history")
    _filters(a)
    a = add_action(runs, common, "media", media, "list or save the media a run logged",
                   description="List the media references of a run's history (images, "
                               "tables, histograms, ...), or save their files under --out "
                               "(tables with the media of their cells), each checked against "
                               "its digest.")
    a.add_argument("run_id", metavar="RUN_ID", help="a run id or a unique prefix of one")
    a.add_argument("--key", metavar="K", help="only the media logged under this key")
    a.add_argument("--step", metavar="N", type=int, help="only the media of this step")
    a.add_argument("--out", metavar="DIR", help="save the files here, at their paths")
    a = add_action(runs, common, "purge", purge, "takedown: wipe a run's media, delete the run",
                   description="Purge every version of the run's media artifact "
                               "(media-<run id>) as 'artifactstore purge' does, and delete "
                               "the run. Its other outputs are kept: purge them by name.")
    a.add_argument("run_id", metavar="RUN_ID", help="a run id or a unique prefix of one")
    a.add_argument("--reason", required=True, help="why (recorded in the purge record)")
    a.add_argument("--no-wait", action="store_true",
                   help="wipe at once instead of waiting out the store's commit window "
                        "(default 120 s): only safe when nobody else writes meanwhile")
    a = add_action(
        runs, common, "plot", plot, "a chart of one metric, several runs overlaid",
        description="Draw one metric of one or more runs on one chart and write it as PNG "
                    "or SVG (by the file's suffix). Needs matplotlib: "
                    "pip install 'artifactstore[plot]'.")
    a.add_argument("run_ids", metavar="RUN_ID", nargs="+",
                   help="the runs to draw (ids or unique prefixes), one line each")
    a.add_argument("--metric", required=True, metavar="KEY",
                   help="the metric to draw, as logged with run.log({KEY: value})")
    a.add_argument("--x", choices=("step", "time"), default="step",
                   help="the x axis: the step (the default) or seconds since the run started")
    a.add_argument("--out", "-o", required=True, metavar="FILE.png|FILE.svg",
                   help="the chart file to write; its suffix picks the format")
    a = add_action(
        runs, common, "diff-code", diff_code, "what changed between the code of two runs",
        description="Compare the code of two runs: their commits (with the commits between "
                    "them and 'git diff A B' when the git repository here, or --repo, holds "
                    "both), and the difference of their saved patches and entry scripts when "
                    "both ran with save_code=True.")
    a.add_argument("run_a", metavar="RUN_A", help="the earlier run (an id or unique prefix)")
    a.add_argument("run_b", metavar="RUN_B", help="the later run (an id or unique prefix)")
    a.add_argument("--repo", metavar="DIR",
                   help="a folder in the git repository to ask for the commits "
                        "(default: the current directory)")
