"""What the pages of the web UI show, as plain data read through :class:`artifactstore.Store`.

Vocabulary:

- **column**: a key of the runs table: ``id``, ``name``, ``job_type``, ``status``,
  ``started``, ``tags``, or ``config.<key>`` / ``summary.<key>`` for one value of a run's
  config or summary (top-level keys; nested values are shown as JSON).
- **row**: one run as the table shows it, a dict of column -> value.
- **series**: one metric of one run as two lists ``x`` (the step) and ``y``, in step
  order; long series are **downsampled** on the server: the steps are cut into buckets and
  each bucket keeps its lowest and highest point, so spikes survive and a chart gets at
  most about :data:`MAX_POINTS` points however long the run.

Every function here is pure over the store's answers: the app turns them into HTML and
JSON, the tests call them directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import artifactstore
from artifactstore.core.errors import InvalidInputError

__all__ = ["MAX_POINTS", "PAGE_ROWS", "downsample", "plain", "run_page", "runs_table", "sort_rows"]

MAX_POINTS: Final = 1000
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
               offset: int = 0, limit: int = PAGE_ROWS) -> dict[str, Any]:
    """The runs table: its columns (base, then config, then summary keys, of every run
    that passes the filters) and one page of rows: ``limit`` rows from ``offset`` of the
    sorted runs (``total`` of them)."""
    if not 0 < limit <= MAX_PAGE_ROWS or offset < 0:
        raise InvalidInputError(f"limit is 1 to {MAX_PAGE_ROWS} and offset >= 0, not "
                                f"{limit!r:.20} and {offset!r:.20}")
    rows = [_row(run) for run in store.runs(status=status, tag=tag, job_type=job_type)]
    extra: dict[str, None] = {}
    for part in ("config.", "summary."):
        for row in rows:
            extra.update((k, None) for k in sorted(row) if k.startswith(part))
    columns = [*BASE_COLUMNS, *extra]
    if sort is not None:
        if sort not in columns:
            raise InvalidInputError(f"cannot sort by {sort!r:.80}: use one of the columns "
                                    f"({', '.join(columns)[:300]})")
        rows = [dict(r) for r in sort_rows(rows, sort, descending)]
    total = len(rows)
    # every row of the page has every column
    page = [{c: row.get(c) for c in columns} for row in rows[offset:offset + limit]]
    query = {k: v for k, v in (("status", status), ("tag", tag), ("job_type", job_type),
                               ("sort", sort), ("order", "desc" if descending else None),
                               ("limit", None if limit == PAGE_ROWS else limit)) if v}
    return {"columns": columns, "rows": page, "sort": sort, "descending": descending,
            "filters": {"status": status, "tag": tag, "job_type": job_type},
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


def run_page(store: artifactstore.Store, run_id: str,
             max_points: int = MAX_POINTS) -> dict[str, Any]:
    """One run: its record, and one downsampled series per numeric metric (by name)."""
    run = store.get_run(run_id)
    charts = {}
    for metric, (xs, ys) in sorted(_series(store.run_history(run.run_id)).items()):
        dx, dy = downsample(xs, ys, max_points)
        charts[metric] = {"x": dx, "y": dy, "points": len(xs)}
    return {"run": plain(run.as_dict()), "label": run.label, "metrics": charts}
