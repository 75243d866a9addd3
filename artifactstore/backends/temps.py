"""Temp files that interrupted writes leave in a store, and their removal.

Vocabulary: a **temp file** is what a backend writes before an object gets its
name (the local backend's ``.tmp-<hex>`` beside the final name, see
:mod:`.local`); a writer killed between the two leaves it behind, invisible to
``list`` and never removed by anyone else. It is **stale** when it has not been
written to for longer than the store's commit window: a live writer renames
its temp file within a commit (design §15), so a stale one belongs to no writer.

Backends without temp files (object stores write atomically) have none: a
backend offers ``temp_files()`` and ``remove_temp(temp)`` only if it keeps them,
and wrappers pass both through (the read-only wrapper refuses the removal).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["TempFile", "remove_stale_temps", "stale_temps"]


@dataclass(frozen=True, slots=True)
class TempFile:
    """A temp file at ``path`` (relative to the store's root), last written at ``mtime``."""

    path: str
    mtime: float
    size: int


def stale_temps(backend: Any, older_than: float, *, now: float | None = None) -> list[TempFile]:
    """The temp files of ``backend`` not written to for ``older_than`` seconds."""
    finder = getattr(backend, "temp_files", None)
    if finder is None:
        return []
    moment = time.time() if now is None else now
    return [t for t in finder() if moment - t.mtime > older_than]


def remove_stale_temps(backend: Any, older_than: float) -> list[TempFile]:
    """Remove the stale temp files of ``backend``; returns those removed."""
    found = stale_temps(backend, older_than)
    for temp in found:
        backend.remove_temp(temp, older_than)
    return found
