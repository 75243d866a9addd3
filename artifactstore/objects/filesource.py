"""The bytes of a file being written, as the object store's writer reads them.

Vocabulary: a :class:`HashingReader` passes a file's reads through and feeds them to
the file digest's hasher (big reads on a second thread); the file's *profile*
(:func:`file_profile`) is the chunker and zstd policy its first bytes decide (design
§2.2), and a :class:`Replayed` stream gives those sniffed first bytes back before the
rest, so nothing is read twice. Split from objects/store.py (its write session).
"""

from __future__ import annotations

import contextlib
import io
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Final

from artifactstore.core.chunking import ChunkerParams, Readable
from artifactstore.core.digest import Digest, Hasher
from artifactstore.core.errors import InvalidInputError
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Compression

__all__ = ["FIRST_READ", "HashingReader", "Replayed", "file_profile"]

#: reads at least this large are hashed for the file digest on a second thread
_BACKGROUND_HASH_MIN: Final = 1 << 20
#: the chunker's first read of a big file (``iter_chunks``' read size)
FIRST_READ: Final = 8 << 20


class HashingReader:
    """Passes reads through, feeding every byte read to a hasher.

    Big reads are hashed on ``pool`` (one thread, so in order) while the caller
    chunks them: BLAKE3 releases the GIL, and the file digest then costs the
    chunking thread nothing (~0.1 s of 0.7 s for 512 MiB here). At most two reads
    wait for the hasher, so memory stays bounded. Call :meth:`digest` at the end.
    """

    def __init__(self, stream: BinaryIO, hasher: Hasher, pool: ThreadPoolExecutor,
                 size_hint: int | None = None) -> None:
        self._stream = stream
        self._hasher = hasher
        self._pool = pool
        self._pending: Future[None] | None = None
        #: bytes still expected: a read asks for no more than that (plus one, to see
        #: the end), because asking for 8 MiB allocates 8 MiB however small the file,
        #: and thousands of such allocations fragment the heap (peak RSS)
        self._left = size_hint
        #: whether ``stream.readinto`` is tried (else read and copied)
        self._readinto = True

    def read(self, size: int = -1) -> bytes:
        left = self._left
        if left is not None and size > left + 1:
            size = left + 1
        data = self._stream.read(size)
        if left is not None:
            self._left = left - len(data) if len(data) <= left else None
        self._hash(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        """:meth:`read` into ``buffer`` (the chunker's reused read buffers): the bytes
        are hashed from a view of it, which keeps the buffer from being reused until
        the hasher is done with it (core/readbuffers.py)."""
        left = self._left
        if left is not None and len(buffer) > left + 1:
            buffer = buffer[:left + 1]
        got = self._fill(buffer)
        if left is not None:
            self._left = left - got if got <= left else None
        self._hash(buffer[:got].toreadonly())
        return got

    def _fill(self, buffer: memoryview) -> int:
        """The stream's ``readinto``; a stream without a working one (a raw stream
        that only defines ``read``) is read and copied."""
        if self._readinto:
            try:
                got: int | None = self._stream.readinto(buffer)  # type: ignore[attr-defined]
            except (AttributeError, NotImplementedError, io.UnsupportedOperation):
                self._readinto = False  # raised before reading anything
            else:
                if got is None:
                    raise InvalidInputError("the stream being written gave no data (a "
                                            "non-blocking stream): pass a blocking one")
                return got
        data = self._stream.read(len(buffer))
        if data is None:  # as iter_chunks says of read(): no data yet is not the end
            raise InvalidInputError("the stream being written gave no data (a "
                                    "non-blocking stream): pass a blocking one")
        buffer[:len(data)] = data
        return len(data)

    def _hash(self, data: bytes | memoryview) -> None:
        if len(data) >= _BACKGROUND_HASH_MIN:
            self._wait()
            self._pending = self._pool.submit(self._hasher.update, data)
        elif data:
            self._wait()
            self._hasher.update(data)

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def digest(self) -> Digest:
        self._wait()
        return self._hasher.digest()

    def abandon(self) -> None:
        """Let the in-flight update finish (it holds a read buffer); ignore its result."""
        if self._pending is not None:
            with contextlib.suppress(Exception):
                self._pending.result()
            self._pending = None


def file_profile(config: StoreConfig, reader: HashingReader
             ) -> tuple[ChunkerParams, Compression | None, Readable]:
    """The chunker and zstd policy of the file ``reader`` reads (design §2.2), and a
    stream of its bytes from the start: the first ``min_file`` bytes decide."""
    big = config.big_chunks
    if big is None:
        return config.chunker, None, reader
    # What the chunker reads first anyway: no extra copy, no extra read.
    head = _read_exactly(reader, max(big.min_file, FIRST_READ))
    source = Replayed(head, reader)
    if big.applies(head, len(head)):
        return big.chunker, big.compression, source
    return config.chunker, None, source


def _read_exactly(stream: Readable, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only at its end."""
    parts: list[bytes] = []
    have = 0
    while have < size:
        part = stream.read(size - have)
        if not part:
            break
        parts.append(part)
        have += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class Replayed:
    """``head``, then the rest of ``stream``: a stream whose first bytes were looked at."""

    def __init__(self, head: bytes, stream: HashingReader) -> None:
        self._head: bytes | None = head
        self._at = 0  # how much of the head readinto() gave out
        self._stream = stream

    def readinto(self, buffer: memoryview, /) -> int:
        head = self._head
        if head is None:
            return self._stream.readinto(buffer)
        # Once per file (the head was read to decide the file's profile): a copy.
        got = min(len(head) - self._at, len(buffer))
        buffer[:got] = memoryview(head)[self._at:self._at + got]
        self._at += got
        if self._at == len(head):
            self._head = None
        return got if got else self._stream.readinto(buffer)

    def read(self, size: int = -1, /) -> bytes | None:
        head = self._head
        if head is None:
            return self._stream.read(size)
        self._head = None
        if self._at:
            head = head[self._at:]
        if not head:
            return self._stream.read(size)
        if 0 <= size < len(head):  # the chunker asks for more than min_file: not reached
            self._head, self._at = head[size:], 0
            return head[:size]
        return head
