"""Writing many buffers to a file in few system calls (``writev`` / ``pwritev``).

A pack is written as its parts (sealed blobs, header, footer) without joining them:
the kernel gathers them. One call takes at most :data:`IOV_MAX` buffers and may write
fewer bytes than asked (rare on regular files); :func:`write_parts` loops until every
byte is written. Where the OS has neither call (Windows) the parts are written one by
one through the file object.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import BinaryIO, Final

__all__ = ["IOV_MAX", "write_parts"]

#: buffers per call (POSIX guarantees at least 16; Linux allows 1,024)
IOV_MAX: Final = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


def write_parts(file: BinaryIO, parts: Sequence[bytes | memoryview], *,
                offset: int | None = None) -> int:
    """Write ``parts`` in order, at the file's position or (``offset``) from that offset
    without moving it; returns the bytes written."""
    pending = [memoryview(p).cast("B") for p in parts if len(p)]
    size = sum(len(p) for p in pending)
    vectored = hasattr(os, "pwritev") if offset is not None else hasattr(os, "writev")
    if not vectored:
        if offset is not None:
            file.seek(offset)
        for piece in pending:
            file.write(piece)
        file.flush()
        return size
    file.flush()
    fd = file.fileno()
    position = offset
    while pending:
        batch = pending[:IOV_MAX]
        if position is None:
            written = os.writev(fd, batch)
        else:
            written = os.pwritev(fd, batch, position)
            position += written
        done = 0  # a short write leaves the rest of the batch
        while done < len(batch) and written >= len(batch[done]):
            written -= len(batch[done])
            done += 1
        rest = pending[done:]
        if written and rest:
            rest[0] = rest[0][written:]
        pending = rest
    return size
