"""A pack spooled to a temporary file while it is uploaded (docs/design.md §11).

Why: a store that uploads a pack through a streamed body (S3: botocore hashes
it, then aiohttp sends it) would hold the pack's sealed parts in memory for the
whole upload, while the writer fills the next pack: two packs (32 MiB) of a
push's peak RSS. Written to an unlinked temporary file (about 4 ms for 16 MiB
here), the pack's bytes wait in the page cache instead, and the request, and
any retry of it, reads them from there (``backends/partsbody.py``,
``FileBody``). restic spools its packs the same way.

The file is made by :func:`tempfile.TemporaryFile` (``$TMPDIR``; private,
unlinked at once where the OS allows it, so a crash leaves nothing behind) and
holds sealed envelopes only: an encrypted domain's ciphertext, or what a plain
store uploads anyway. It is never read after the upload, so nothing half-written
is ever trusted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

__all__ = ["spooled"]

#: parts per writev call (POSIX guarantees at least 16; Linux allows 1,024)
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


@contextmanager
def spooled(parts: list[bytes | memoryview]) -> Iterator[tuple[BinaryIO, int]]:
    """The concatenation of ``parts`` in a temporary file, and its size; ``parts``
    is emptied as it is written (the caller's references are its own to drop)."""
    with tempfile.TemporaryFile(prefix="artifactstore-pack-") as file:
        size = _write(file, parts)
        yield file, size


def _write(file: BinaryIO, parts: list[bytes | memoryview]) -> int:
    pending = [memoryview(p).cast("B") for p in parts if len(p)]
    parts.clear()
    size = sum(len(p) for p in pending)
    if not hasattr(os, "writev"):  # Windows
        for piece in pending:
            file.write(piece)
        file.flush()
        return size
    fd = file.fileno()
    while pending:
        batch = pending[:_IOV_MAX]
        written = os.writev(fd, batch)
        done = 0  # a short write (rare on regular files) leaves the rest of the batch
        while done < len(batch) and written >= len(batch[done]):
            written -= len(batch[done])
            done += 1
        rest = pending[done:]
        if written and rest:
            rest[0] = rest[0][written:]
        pending = rest
    return size
