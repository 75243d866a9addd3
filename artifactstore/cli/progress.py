"""Progress on stderr for long transfers (bytes, total, rate and time left, drawn by
tqdm), and a countdown for waits.

Shown only when stderr is a terminal and ``--quiet`` is not set; otherwise every call
is a no-op, so scripts and CI logs stay clean. The bar appears with the first bytes, so
a command that moves none (a purge's wait, a gc) shows no byte counter.
:meth:`Progress.wait` is a wait callback (``artifactstore.objects.window``): while a
purge, a gc with grace 0 or a re-encryption waits out the commit window, the line
counts down.
"""

from __future__ import annotations

import io
import math
import os
import sys
from types import TracebackType
from typing import Any, Self, TextIO

__all__ = ["Progress"]


def _columns(stream: TextIO) -> int | None:
    """The terminal width behind ``stream`` (0 when it reports none), None if unknown."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


class Progress:
    """Counts bytes towards a total (or none) and shows them at most ten times a second."""

    def __init__(self, label: str, total: int | None, *, enabled: bool,
                 stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled and self._stream.isatty()
        self._label = label
        self._total = total
        self._min_interval = min_interval  # seconds between redraws
        self._bar: Any = None  # a tqdm bar once bytes move
        self._width = 0  # of the countdown line on screen, so a shorter one erases it
        self._waited = 0.0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()  # the final numbers stay on their line
        elif self._width:
            self._stream.write("\n")
            self._stream.flush()

    def advance(self, amount: int) -> None:
        if not self._enabled:
            return
        if self._bar is None:
            from tqdm import tqdm  # only when a bar is drawn: ~50 ms of every command's start

            # bytes in decimal units (MB, as the rate), elapsed<left, rate
            columns = _columns(self._stream)
            self._bar = tqdm(total=self._total or None, desc=self._label, unit="B",
                             unit_scale=True, file=self._stream,
                             mininterval=self._min_interval, miniters=1,
                             # a terminal that reports no size (a bare pty) would get an
                             # empty line: draw it as on a 100x24 terminal
                             ncols=100 if columns == 0 else None,
                             nrows=24 if columns == 0 else None,
                             dynamic_ncols=columns != 0, leave=True)
        self._bar.update(amount)

    def wait(self, remaining: float) -> None:
        """Count down the seconds ``remaining`` of a wait; ``0`` says it is over."""
        self._waited = max(self._waited, remaining)
        if not self._enabled:
            return
        if remaining > 0:
            self._show(f"{self._label}: waiting {math.ceil(remaining)} s for in-flight "
                       "commits (the store's commit window)")
        else:
            self._show(f"{self._label}: waited {math.ceil(self._waited)} s for in-flight commits")

    def _show(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self._stream)  # above the bar, which stays
            return
        self._stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self._stream.flush()
