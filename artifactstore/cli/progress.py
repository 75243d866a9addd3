"""A small progress bar on stderr for long transfers, and a countdown for waits.

Shown only when stderr is a terminal and ``--quiet`` is not set; otherwise
every call is a no-op, so scripts and CI logs stay clean. :meth:`Progress.wait`
is a wait callback (``artifactstore.objects.window``): while a purge, a gc with
grace 0 or a re-encryption waits out the commit window, the line counts down.
"""

from __future__ import annotations

import math
import sys
import time
from types import TracebackType
from typing import Self, TextIO

__all__ = ["Progress"]


class Progress:
    """Counts bytes towards a total and redraws at most ten times a second."""

    def __init__(self, label: str, total: int | None, *, enabled: bool,
                 stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled and self._stream.isatty()
        self._label = label
        self._total = total
        self._done = 0
        self._start = time.monotonic()
        self._drawn = 0.0
        self._width = 0  # of the line on screen, so a shorter one erases it
        self._waiting: float | None = None
        self._waited = 0.0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._enabled:
            if self._done or self._total:
                self._draw(force=True)
            if self._width:
                self._stream.write("\n")
                self._stream.flush()

    def advance(self, amount: int) -> None:
        self._done += amount
        if self._enabled:
            self._draw()

    def wait(self, remaining: float) -> None:
        """Count down the seconds ``remaining`` of a wait; ``0`` says it is over."""
        self._waited = max(self._waited, remaining)
        self._waiting = remaining if remaining > 0 else None
        if not self._enabled:
            return
        if remaining > 0:
            self._show(f"{self._label}: waiting {math.ceil(remaining)} s for in-flight "
                       "commits (the store's commit window)")
        else:
            self._show(f"{self._label}: waited {math.ceil(self._waited)} s for in-flight commits")

    def _show(self, line: str) -> None:
        self._stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self._stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._waiting is not None or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        rate = self._done / max(now - self._start, 1e-9) / 1e6
        if self._total:
            frac = min(self._done / self._total, 1.0)
            bar = "#" * int(frac * 30)
            line = f"{self._label} [{bar:<30}] {frac:6.1%} {rate:8.1f} MB/s"
        else:
            line = f"{self._label} {self._done / 1e6:10.1f} MB {rate:8.1f} MB/s"
        self._show(line)
