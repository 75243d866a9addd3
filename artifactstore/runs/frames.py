"""Runs and their history as pandas DataFrames, as W&B's export API gives them.

- :func:`runs_frame`: one row per run: ``id``, ``name``, ``job_type``, ``status``,
  ``tags`` (a list), ``started_at`` and ``ended_at`` (UTC timestamps), then
  ``config.<dotted key>`` and ``summary.<dotted key>`` for the union of keys.
- :func:`history_frame`: one row per step: ``_step``, ``_timestamp`` (UTC, of the
  step's last row), then one column per metric; rows logged at the same step merge,
  and media values stay reference maps (resolve them with ``Store.media``).

pandas is the ``[pandas]`` extra; it is imported when a frame is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from artifactstore.local.catalog import RunInfo
from artifactstore.media.base import is_reference, require
from artifactstore.records.runs import MetricsRow

__all__ = ["flatten", "history_frame", "runs_frame"]

RUN_COLUMNS = ("id", "name", "job_type", "status", "tags", "started_at", "ended_at")


def _pandas() -> Any:
    return require("pandas", "pandas", "DataFrames of runs")


def flatten(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Nested maps as dotted keys; media references (and empty maps) stay one value."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value and not is_reference(value):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = dict(value) if isinstance(value, Mapping) else value
    return flat


def runs_frame(runs: Iterable[RunInfo]) -> Any:
    """One row per run (see the module docstring)."""
    pd = _pandas()
    rows = []
    for run in runs:
        rows.append({
            "id": run.run_id, "name": run.name, "job_type": run.job_type,
            "status": run.status, "tags": list(run.tags), "started_at": run.started_at,
            "ended_at": run.ended_at, **flatten(run.config, "config."),
            **flatten(run.summary, "summary."),
        })  # fmt: skip
    config = sorted({k for r in rows for k in r if k.startswith("config.")})
    summary = sorted({k for r in rows for k in r if k.startswith("summary.")})
    frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *config, *summary])
    for column in ("started_at", "ended_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def history_frame(rows: Iterable[MetricsRow]) -> Any:
    """One row per step (see the module docstring)."""
    pd = _pandas()
    steps: dict[int, dict[str, Any]] = {}
    for row in rows:
        merged = steps.setdefault(row.step, {"_step": row.step})
        merged["_timestamp"] = row.at
        merged.update({k: dict(v) if isinstance(v, Mapping) else v
                       for k, v in row.values.items()})
    ordered = [steps[s] for s in sorted(steps)]
    metrics: dict[str, None] = {}
    for values in ordered:
        metrics.update(dict.fromkeys(k for k in values if k not in ("_step", "_timestamp")))
    frame = pd.DataFrame(ordered, columns=["_step", "_timestamp", *metrics])
    frame["_timestamp"] = pd.to_datetime(frame["_timestamp"], utc=True, format="ISO8601")
    return frame
