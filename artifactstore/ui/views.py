"""What the pages of the web UI show, as plain data read through :class:`artifactstore.Store`.

Vocabulary:

- **column**: a key of the runs table: ``id``, ``name``, ``job_type``, ``status``,
  ``started``, ``tags``, or ``config.<key>`` / ``summary.<key>`` for one value of a run's
  config or summary (top-level keys; nested values are shown as JSON).
- **row**: one run as the table shows it, a dict of column -> value.
- **series**: one metric of one run as lists ``x`` (the step), ``t`` (seconds since
  the run started, from each row's time) and ``y``, in step order; long series are
  **downsampled** on the server: the steps are cut into buckets and each bucket keeps
  its lowest and highest point, so spikes survive and a chart gets at most about
  :data:`MAX_POINTS` points however long the run; a live page asks only for the rows
  after the last step it drew (``since``).
- **compare**: 2 to :data:`MAX_COMPARED` runs side by side: their configs and summaries
  as one table each (a key whose values differ is marked) and, per metric, one series
  per run that logged it.

Every function here is pure over the store's answers: the app turns them into HTML and
JSON, the tests call them directly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import artifactstore
from artifactstore.core.errors import InvalidInputError
from artifactstore.ui.runfilter import matches, parse_conditions

__all__ = ["MAX_COMPARED", "MAX_POINTS", "PAGE_ROWS", "compare_page", "downsample", "plain",
           "run_ids", "run_page", "runs_table", "sort_rows"]

MAX_POINTS: Final = 1000
MAX_COMPARED: Final = 10
#: an input or output ref as runs record them
_REF: Final = re.compile(r"(?P<name>[^:]+):v(?P<number>[0-9]+)")
#: rows of the runs table per page: a browser lays out 1,000 rows x 26 columns in about
#: 1.5 s on 2 busy cores, 100 in about 0.2 s (docs/benchmarks.md, "Web UI at scale")
PAGE_ROWS: Final = 100
MAX_PAGE_ROWS: Final = 1000
BASE_COLUMNS: Final = ("id", "name", "job_type", "status", "started", "tags")


def plain(value: Any) -> Any:
    """``value`` as strict JSON can carry it: NaN and infinities become their text
    (``JSON.parse`` refuses the bare ``NaN`` Python writes), bytes their size, and
    anything else that is not a dict, list, number, string, bool or None its ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return str(value)


def _cell(value: Any) -> Any:
    """A value as a table cell: numbers, strings, bools and None as they are, else JSON."""
    value = plain(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def _row(run: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": run.run_id, "name": run.name, "job_type": run.job_type,
                           "status": run.status, "started": run.started_at,
                           "tags": list(run.tags)}
    for part, values in (("config", run.config), ("summary", run.summary)):
        for key, value in (values or {}).items():
            row[f"{part}.{key}"] = _cell(value)
    return row


def _sort_key(value: Any) -> tuple[int, Any]:
    # None last; numbers before text (NaN is text by now: plain); bools as numbers
    if value is None:
        return (3, 0)
    if isinstance(value, bool | int | float):
        return (0, float(value))
    return (1, str(value))


def sort_rows(rows: Sequence[Mapping[str, Any]], column: str,
              descending: bool = False) -> list[Mapping[str, Any]]:
    """``rows`` ordered by ``column`` (missing values last, whatever the direction)."""
    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    present.sort(key=lambda r: _sort_key(r[column]), reverse=descending)
    return present + missing


def runs_table(store: artifactstore.Store, *, status: str | None = None,
               tag: str | None = None, job_type: str | None = None,
               sort: str | None = None, descending: bool = False,
               offset: int = 0, limit: int = PAGE_ROWS,
               where: str | None = None) -> dict[str, Any]:
    """The runs table: its columns (base, then config, then summary keys, of every run
    that passes the filters) and one page of rows: ``limit`` rows from ``offset`` of the
    sorted runs that meet the conditions of ``where`` (``total`` of them;
    :mod:`.runfilter`)."""
    if not 0 < limit <= MAX_PAGE_ROWS or offset < 0:
        raise InvalidInputError(f"limit is 1 to {MAX_PAGE_ROWS} and offset >= 0, not "
                                f"{limit!r:.20} and {offset!r:.20}")
    rows = [_row(run) for run in store.runs(status=status, tag=tag, job_type=job_type)]
    extra: dict[str, None] = {}
    for part in ("config.", "summary."):
        for row in rows:
            extra.update((k, None) for k in sorted(row) if k.startswith(part))
    columns = [*BASE_COLUMNS, *extra]
    conditions = parse_conditions(where, columns)
    if conditions:
        rows = [row for row in rows if matches(row, conditions)]
    if sort is not None:
        if sort not in columns:
            raise InvalidInputError(f"cannot sort by {sort!r:.80}: use one of the columns "
                                    f"({', '.join(columns)[:300]})")
        rows = [dict(r) for r in sort_rows(rows, sort, descending)]
    total = len(rows)
    # every row of the page has every column
    page = [{c: row.get(c) for c in columns} for row in rows[offset:offset + limit]]
    query = {k: v for k, v in (("status", status), ("tag", tag), ("job_type", job_type),
                               ("where", where), ("sort", sort),
                               ("order", "desc" if descending else None),
                               ("limit", None if limit == PAGE_ROWS else limit)) if v}
    return {"columns": columns, "rows": page, "sort": sort, "descending": descending,
            "filters": {"status": status, "tag": tag, "job_type": job_type,
                        "where": ", ".join(map(str, conditions)) or None},
            "total": total, "offset": offset, "limit": limit, "query": query,
            "previous": max(0, offset - limit) if offset > 0 else None,
            "next": offset + limit if offset + limit < total else None}


def downsample(xs: Sequence[float], ys: Sequence[float],
               max_points: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most ``max_points`` points of the series (module docstring): per bucket of
    consecutive points, its minimum and its maximum, in x order."""
    if len(xs) <= max_points:
        return list(xs), list(ys)
    buckets = max(1, max_points // 2)
    size = len(xs) / buckets
    out_x: list[float] = []
    out_y: list[float] = []
    for b in range(buckets):
        lo, hi = int(b * size), min(len(xs), int((b + 1) * size))
        if lo >= hi:
            continue
        low = min(range(lo, hi), key=ys.__getitem__)
        high = max(range(lo, hi), key=ys.__getitem__)
        for i in sorted({low, high}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def _series(rows: Iterable[Any]) -> dict[str, tuple[list[float], list[float]]]:
    found: dict[str, tuple[list[float], list[float]]] = {}
    isfinite = math.isfinite
    for row in rows:
        step = float(row.step)
        for key, value in row.values.items():
            # exact types first: a 10,000-step run of 10 metrics is 100,000 values
            kind = type(value)
            if kind is float:
                if not isfinite(value):
                    continue
            elif kind is int:
                value = float(value)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                continue  # strings, bools and media references are not charted
            elif not isfinite(value):
                continue
            else:
                value = float(value)
            pair = found.get(key)
            if pair is None:
                pair = found[key] = ([], [])
            pair[0].append(step)
            pair[1].append(value)
    return found


def _seconds(at: str, started: datetime) -> float:
    try:
        return round((datetime.fromisoformat(at) - started).total_seconds(), 3)
    except (TypeError, ValueError):
        return math.nan  # a row without a readable time: off the time chart


def _charts(run: Any, rows: Sequence[Any], max_points: int) -> dict[str, Any]:
    """One downsampled series per numeric metric (by name), x = step and time alike:
    the points kept are the same, their time is looked up by step."""
    try:
        started = datetime.fromisoformat(run.started_at)
    except (TypeError, ValueError):
        started = None
    times = {row.step: row.at for row in rows}  # a step logged twice: its last row
    charts = {}
    for metric, (xs, ys) in sorted(_series(rows).items()):
        dx, dy = downsample(xs, ys, max_points)
        dt = [math.nan if started is None else _seconds(times[int(x)], started) for x in dx]
        charts[metric] = {"x": dx, "t": [None if math.isnan(t) else t for t in dt],
                          "y": dy, "points": len(xs)}
    return charts


def _live_summary(run: Any, rows: Sequence[Any]) -> dict[str, Any]:
    """The summary; while a run is running (its summary is written when it ends), the
    last value of each metric so far."""
    if run.summary or run.status != "running":
        return dict(run.summary or {})
    last: dict[str, Any] = {}
    for row in rows:
        last.update(row.values)
    return last


def _links(refs: Iterable[str]) -> list[dict[str, Any]]:
    """Input or output refs with their artifact name and version number (for links);
    a ref of another form keeps ``number`` None (shown, not linked)."""
    found = []
    for ref in refs:
        m = _REF.fullmatch(ref)
        found.append({"ref": ref, "name": m["name"] if m else None,
                      "number": int(m["number"]) if m else None})
    return found


def _code(store: artifactstore.Store, run: Any) -> dict[str, Any]:
    code = dict(run.code or {})
    saved = store.saved_code(run.run_id)
    return {"commit": code.get("commit"), "branch": code.get("branch"),
            "dirty": code.get("dirty"), "remote": code.get("remote"),
            "saved": None if saved is None else saved.ref,
            "patch": None if saved is None else saved.patch,
            "entry_name": None if saved is None else saved.entry_name,
            "entry": None if saved is None else saved.entry}


def run_page(store: artifactstore.Store, run_id: str, max_points: int = MAX_POINTS, *,
             since: int | None = None) -> dict[str, Any]:
    """One run: its record, its code, the other runs (to compare code with), and one
    downsampled series per numeric metric. With ``since`` (a live page asking what is
    new), only the rows after that step, read from a freshly synced catalog, and no
    code or other runs."""
    run = store.get_run(run_id, sync=True if since is not None else None)
    rows = list(store.run_history(run.run_id, sync=False))
    last = max((row.step for row in rows), default=None)
    if since is not None:
        rows = [row for row in rows if row.step > since]
    data = {"run": plain(run.as_dict()), "label": run.label, "last_step": last,
            "summary": plain(_live_summary(run, rows)), "status": run.status,
            "metrics": _charts(run, rows, max_points)}
    if since is None:
        data["inputs"] = _links(run.inputs)
        data["outputs"] = _links(run.outputs)
        data["code"] = plain(_code(store, run))
        data["others"] = [{"id": r.run_id, "label": r.label} for r in store.runs(sync=False)
                          if r.run_id != run.run_id]
    return data


def run_ids(text: str | None) -> list[str]:
    """The run ids (or unique prefixes) of a ``runs=ID1,ID2,...`` argument."""
    ids = list(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise InvalidInputError(f"compare 2 to {MAX_COMPARED} runs: give runs=ID1,ID2,... "
                                f"(ids or unique prefixes), not {len(ids)}")
    return ids


def _side_by_side(values: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per key of any of ``values`` (sorted): each run's cell (None when it
    lacks the key) and whether they differ."""
    keys = sorted({k for v in values for k in v})
    rows = []
    for key in keys:
        cells = [_cell(v.get(key)) for v in values]
        rows.append({"key": key, "values": cells,
                     "differs": len({json.dumps(c, sort_keys=True) for c in cells}) > 1})
    return rows


def compare_page(store: artifactstore.Store, ids: Sequence[str],
                 max_points: int = MAX_POINTS) -> dict[str, Any]:
    """The runs ``ids`` side by side (module docstring)."""
    runs = [store.get_run(i) for i in ids]
    if len({r.run_id for r in runs}) < len(runs):
        raise InvalidInputError("these ids name the same run twice: give each run once")
    metrics: dict[str, list[Any]] = {}
    for index, run in enumerate(runs):
        rows = list(store.run_history(run.run_id, sync=False))
        for metric, series in _charts(run, rows, max_points).items():
            metrics.setdefault(metric, [None] * len(runs))[index] = series
    summaries = [_live_summary(r, list(store.run_history(r.run_id, sync=False)))
                 if r.status == "running" else r.summary or {} for r in runs]
    return {"runs": [{"id": r.run_id, "label": r.label, "status": r.status} for r in runs],
            "config": _side_by_side([r.config or {} for r in runs]),
            "summary": _side_by_side(summaries),
            "metrics": dict(sorted(metrics.items()))}
