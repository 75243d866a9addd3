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
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections.abc import Sequence

__all__ = ["PartsBody"]


class PartsBody(io.RawIOBase):
    """Read-only, seekable bytes of the concatenation of ``parts``."""

    def __init__(self, parts: Sequence[bytes | memoryview]) -> None:
        super().__init__()
        self._parts = [memoryview(p).cast("B") for p in parts if len(p)]
        self._starts: list[int] = []
        total = 0
        for part in self._parts:
            self._starts.append(total)
            total += len(part)
        self._size = total
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
