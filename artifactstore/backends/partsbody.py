"""A request body read from a pack's parts, without joining them.

Why: an upload through s3fs/botocore/aiohttp given ``bytes`` makes two more
copies of a whole pack on top of the joined buffer. botocore wraps the bytes
in a ``BytesIO``, and aiohttp's ``BytesIOPayload`` calls ``getbuffer()``, which
un-shares (copies) the ``BytesIO``'s initial bytes; a ``bytearray`` or
``memoryview`` body instead goes to the socket in one write, and asyncio
buffers whatever the socket did not take at once (a copy of most of the pack).
A :class:`PartsBody` is a seekable, read-only file over the parts: botocore
hashes it (the checksum and the signature read it and seek back) and aiohttp
streams it in 64 KiB reads, each a small copy, so a pack upload holds the
sealed parts and nothing else (measured in docs/benchmarks.md, "Writes, round
four").

A :class:`FileBody` is the same over the first bytes of a file (a pack spooled
to a temporary file, objects/spool.py): it reads with ``pread`` at its own
position, so each request (a retry too) reads the file from its start, and the
pack's bytes stay in the page cache, not in the process's memory ("S3 push
memory").
"""

from __future__ import annotations

import io
import os
from bisect import bisect_right
from collections.abc import Sequence
from typing import BinaryIO

__all__ = ["FileBody", "PartsBody"]


class _Body(io.RawIOBase):
    """A read-only, seekable body of a known size (s3fs asks its ``len``)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._pos = 0

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._pos = position
        return position


class PartsBody(_Body):
    """Read-only, seekable bytes of the concatenation of ``parts``."""

    def __init__(self, parts: Sequence[bytes | memoryview]) -> None:
        views = [memoryview(p).cast("B") for p in parts if len(p)]
        self._parts = views
        self._starts: list[int] = []
        total = 0
        for part in views:
            self._starts.append(total)
            total += len(part)
        super().__init__(total)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        done = 0
        for piece in self._pieces(len(out)):
            out[done:done + len(piece)] = piece
            done += len(piece)
        return done

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when ``size`` is negative or None)."""
        left = max(0, self._size - self._pos)
        return b"".join(self._pieces(left if size is None or size < 0 else min(size, left)))

    def readall(self) -> bytes:
        return self.read(-1)

    def _pieces(self, want: int) -> list[memoryview]:
        """Views of the next ``want`` bytes (fewer at the end), moving the position."""
        pieces = []
        index = bisect_right(self._starts, self._pos) - 1
        while want > 0 and self._pos < self._size:
            part = self._parts[index]
            at = self._pos - self._starts[index]
            piece = part[at:at + want]
            pieces.append(piece)
            want -= len(piece)
            self._pos += len(piece)
            index += 1
        return pieces


class FileBody(_Body):
    """Read-only, seekable bytes ``0 .. size`` of ``file`` (read with ``pread``: the
    file's own position is not used, and it is not closed here)."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        super().__init__(size)
        self._fd = file.fileno()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        want = min(len(out), max(0, self._size - self._pos))
        done = 0
        while done < want:
            got = os.preadv(self._fd, [out[done:want]], self._pos)
            if got <= 0:
                raise OSError(f"the spooled body ended at {self._pos} of {self._size} bytes")
            done += got
            self._pos += got
        return done

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when ``size`` is negative or None)."""
        left = max(0, self._size - self._pos)
        want = left if size is None or size < 0 else min(size, left)
        data = os.pread(self._fd, want, self._pos)  # one copy, almost always whole
        if len(data) < want:  # a short read: fill the rest (or fail: the file ended)
            out = bytearray(data) + bytearray(want - len(data))
            self._pos += len(data)
            self.readinto(memoryview(out)[len(data):])
            return bytes(out)
        self._pos += want
        return data

    def readall(self) -> bytes:
        return self.read(-1)
