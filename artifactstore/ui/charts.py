"""Charts of run metrics, written as PNG or SVG files (``artifactstore runs plot``).

Vocabulary:

- **series**: one run's values of one metric, as ``(x, y)`` points in step order;
  ``x`` is the step, or with ``x="time"`` the seconds since the run started. Rows
  where the metric is missing or is not a number (a string, a bool, a media
  reference) are left out.
- **chart**: the series of several runs overlaid on one set of axes, one line per
  run, labelled with the run's name (else its job type) and the start of its id.

matplotlib draws them (the ``plot`` extra): a figure built without ``pyplot``, so a
user's interactive backend and open figures are never touched.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import artifactstore
from artifactstore.core.errors import InvalidInputError, MissingExtraError, NotFoundError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Chart", "Series", "metric_series", "plot_metric"]

FORMATS: Final = {".png": "png", ".svg": "svg"}
XAxis = Literal["step", "time"]


@dataclass(frozen=True, slots=True)
class Series:
    run_id: str
    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """What :func:`plot_metric` wrote: the file, its format and the series drawn."""

    path: str
    format: str
    metric: str
    x: XAxis
    series: tuple[Series, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"output": self.path, "format": self.format, "metric": self.metric,
                "x": self.x, "runs": {s.run_id: len(s.points) for s in self.series}}


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def metric_series(store: artifactstore.Store, run_id: str, metric: str,
                  x: XAxis = "step") -> Series:
    """The series of ``metric`` in run ``run_id`` (a unique prefix is enough)."""
    run = store.get_run(run_id, sync=True)
    start = _time(run.started_at)
    points: list[tuple[float, float]] = []
    for row in store.run_history(run.run_id, sync=False):
        value = row.values.get(metric)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        where = row.step if x == "step" else (_time(row.at) - start).total_seconds()
        points.append((float(where), float(value)))
    return Series(run.run_id, f"{run.label} ({run.run_id[-8:]})", tuple(points))


def plot_metric(store: artifactstore.Store, run_ids: Sequence[str], metric: str,
                out: str | os.PathLike[str], *, x: XAxis = "step",
                title: str | None = None) -> Chart:
    """Draw ``metric`` of each run in ``run_ids`` on one chart and write it to ``out``
    (``.png`` or ``.svg``, by its suffix); the file appears only once complete."""
    target = Path(out)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InvalidInputError(f"--out {str(out)!r:.80}: name a .png or .svg file")
    if x not in ("step", "time"):
        raise InvalidInputError(f"x must be 'step' or 'time', not {x!r:.20}")
    if not run_ids:
        raise InvalidInputError("name at least one run to plot")
    figure_class = _figure_class()  # before reading: a missing extra fails fast
    series = tuple(metric_series(store, run_id, metric, x) for run_id in run_ids)
    if not any(s.points for s in series):
        raise NotFoundError(f"no numeric values of metric {metric!r:.60} in these runs: "
                            "see 'artifactstore runs show RUN' for the metrics they logged")
    figure = _draw(figure_class(figsize=(8, 4.5), dpi=100), series, metric, x, title)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # No date in the SVG: the same runs draw the same file.
        figure.savefig(temp, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        os.replace(temp, target)
    except FileNotFoundError:
        raise NotFoundError(f"cannot write {out}: folder {target.parent} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)
    return Chart(str(out), fmt, metric, x, series)


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtraError("charts need matplotlib: pip install 'artifactstore[plot]'") \
            from exc
    return Figure


def _draw(figure: Figure, series: Sequence[Series], metric: str, x: XAxis,
          title: str | None) -> Figure:
    axes = figure.add_subplot()
    for s in series:
        if s.points:
            xs, ys = zip(*s.points, strict=True)
            axes.plot(xs, ys, label=s.label, linewidth=1.4,
                      marker="o" if len(xs) == 1 else None)
    axes.set_xlabel("step" if x == "step" else "seconds since the run started")
    axes.set_ylabel(metric)
    axes.set_title(title or metric)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure
