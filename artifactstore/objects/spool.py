"""Packs spooled to temporary files while they are uploaded (docs/design.md §8, Memory).

Why: a store that uploads a pack through a streamed body (S3: botocore hashes
it, then aiohttp sends it) would hold the pack's sealed parts in memory for the
whole upload, while the writer fills the next pack: two packs (32 MiB) of a
push's peak RSS. Written to a temporary file (a few ms for 16 MiB), the pack's
bytes wait in the page cache instead, and the request, and any retry of it,
reads them from there (``backends/partsbody.py``, ``FileBody``). restic spools
its packs the same way.

A :class:`Spools` keeps its files for the next packs (one per upload in flight):
a pack overwrites the last one from offset 0, so the kernel reuses the file's
pages instead of allocating and freeing 16 MiB of page cache per pack. Only the
pack's own bytes are read back (a shorter pack leaves older bytes past its end,
never sent). The files are made by :func:`tempfile.TemporaryFile` (``$TMPDIR``;
private, unlinked at once where the OS allows it, so a crash leaves nothing
behind) and hold sealed envelopes only: an encrypted domain's ciphertext, or what
a plain store uploads anyway.

A spool that cannot be written (``$TMPDIR`` full, missing or read-only) raises
:class:`SpoolError` before anything is sent, with the caller's parts untouched: the
store then sends the pack from memory as before (more memory, never a failed push).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from artifactstore.core.vectorio import write_parts

__all__ = ["SpoolError", "Spools"]


class SpoolError(OSError):
    """A pack could not be written to its spool file; its parts are as they were."""


class Spools:
    """Temporary files for packs being uploaded, each used by one upload at a time."""

    def __init__(self) -> None:
        self._idle: list[BinaryIO] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def spooled(self, parts: list[bytes | memoryview]) -> Iterator[tuple[BinaryIO, int]]:
        """The concatenation of ``parts`` in a spool file from offset 0, and its size;
        ``parts`` is emptied once written (the caller drops its own references), or
        left as it was with :class:`SpoolError` when the file cannot be written."""
        with self._lock:
            file = self._idle.pop() if self._idle else None
        try:
            if file is None:
                file = tempfile.TemporaryFile(prefix="artifactstore-pack-")  # noqa: SIM115 (kept open)
            size = _write(file, parts)
        except OSError as exc:
            if file is not None:
                file.close()
            raise SpoolError(exc.errno, f"cannot spool a pack: {exc.strerror or exc}") from exc
        parts.clear()
        try:
            yield file, size
        except BaseException:
            file.close()  # in an unknown state: not reused
            raise
        with self._lock:
            if self._closed:
                file.close()
            else:
                self._idle.append(file)

    def close(self) -> None:
        """Close the idle files (and any still in use as its upload ends)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for file in idle:
            file.close()


def _write(file: BinaryIO, parts: list[bytes | memoryview]) -> int:
    return write_parts(file, parts, offset=0)
