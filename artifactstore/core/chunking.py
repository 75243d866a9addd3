"""Content-defined chunking: FastCDC 2020 with normalized chunking.

Implements ``docs/design.md``, "Chunking". Vocabulary:

- **chunk**: a contiguous run of a file's bytes; a file is the concatenation of
  its chunks. Chunks are stored as blobs, so an edit to a large file stores only
  the chunks it touched.
- **cut point**: the offset where one chunk ends and the next begins. FastCDC
  picks it from the content (a Gear rolling fingerprint hitting a mask), so an
  insertion moves only the cut points near it.
- **gear hash**: that rolling fingerprint at the cut point (0 when the remainder
  was at most ``min_size`` and nothing was hashed). Not a content hash: never use
  it as an id.
- **chunker parameters** (:class:`ChunkerParams`): sizes, normalization level
  (NC) and seed. They are fixed per store and recorded in its config, because
  other values give other cut points and so lose deduplication.

Cut points are those of ``nlfiedler/fastcdc-rs`` v2020 (checked against the
vectors in ``tests/data/vectors/fastcdc_sekien.json``); the compiled ``pyfastcdc``
package computes them. Two constraints beyond pyfastcdc's own: ``min_size`` must
be even (the scan starts at ``min_size`` rounded down to even, so an odd minimum
could yield a chunk one byte short of it) and ``seed`` must be below 2**63
(pyfastcdc cannot shift larger seeds). Every chunk but the last of a stream is
then ``min_size`` to ``max_size`` bytes long; the last is 1 to ``max_size``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final, Protocol

from artifactstore.core.errors import FormatError, InvalidInputError
from artifactstore.core.readbuffers import ReadBuffers

if TYPE_CHECKING:
    from pyfastcdc import FastCDC

__all__ = [
    "ALGORITHMS",
    "ChunkerParams",
    "Readable",
    "chunk_spans",
    "chunk_views",
    "iter_chunks",
]

ALGORITHMS: Final = frozenset({"fastcdc2020"})
"""Chunking algorithms this client implements (the ``algorithm`` field)."""

# pyfastcdc's accepted ranges, checked here so a bad value fails with our error.
_MIN_RANGE: Final = (64, 1 << 20)
_AVG_RANGE: Final = (256, 4 << 20)
_MAX_RANGE: Final = (1024, 16 << 20)
_SEED_LIMIT: Final = 1 << 63


class Readable(Protocol):
    """A blocking binary stream: any ``BinaryIO``, ``io.BytesIO``, an fsspec file."""

    def read(self, size: int, /) -> bytes | None:
        """Return up to ``size`` bytes; ``b""`` only at the end of the stream."""
        ...


@dataclass(frozen=True, slots=True)
class ChunkerParams:
    """How a store cuts files into chunks. Defaults are the store defaults (16/64/256 KiB)."""

    min_size: int = 16384
    avg_size: int = 65536
    max_size: int = 262144
    normalization: int = 1
    seed: int = 0
    algorithm: str = "fastcdc2020"

    def __post_init__(self) -> None:
        if not isinstance(self.algorithm, str) or self.algorithm not in ALGORITHMS:
            raise InvalidInputError(
                f"unknown chunking algorithm {self.algorithm!r}; known: {sorted(ALGORITHMS)}"
            )
        for name, (low, high) in (
            ("min_size", _MIN_RANGE),
            ("avg_size", _AVG_RANGE),
            ("max_size", _MAX_RANGE),
        ):
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise InvalidInputError(f"{name} must be an int in [{low}, {high}], got {value!r}")
        if not self.min_size <= self.avg_size <= self.max_size:
            raise InvalidInputError(
                "chunk sizes must satisfy min_size <= avg_size <= max_size, got "
                f"{self.min_size}/{self.avg_size}/{self.max_size}"
            )
        if self.min_size % 2:
            raise InvalidInputError(f"min_size must be even, got {self.min_size}")
        if type(self.normalization) is not int or not 0 <= self.normalization <= 3:
            raise InvalidInputError(
                f"normalization must be an int in [0, 3], got {self.normalization!r}"
            )
        if type(self.seed) is not int or not 0 <= self.seed < _SEED_LIMIT:
            raise InvalidInputError(f"seed must be an int in [0, 2**63), got {self.seed!r}")

    def to_dict(self) -> dict[str, int | str]:
        """The fields as a plain dict, as recorded in a store's config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, fields: Mapping[str, object]) -> ChunkerParams:
        """Read parameters from a store's config; anything unexpected is a FormatError.

        All six fields are required and no others are allowed: a client that
        ignored a field it does not know would cut files differently.
        """
        if not isinstance(fields, Mapping):
            raise FormatError(f"chunker parameters must be a map, got {type(fields).__name__}")
        expected = set(cls.__dataclass_fields__)
        present = set(fields)
        if present != expected:
            missing = sorted(expected - present)
            unknown = sorted(map(repr, present - expected))
            raise FormatError(
                f"chunker parameters: missing {missing}, unknown {unknown}; "
                "this store may need a newer artifactstore"
            )
        algorithm = fields["algorithm"]
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise FormatError(
                f"store uses chunking algorithm {algorithm!r}, which this client does not "
                f"know (known: {sorted(ALGORITHMS)}); upgrade artifactstore"
            )
        try:
            return cls(**fields)  # type: ignore[arg-type]  # validated by __post_init__
        except InvalidInputError as exc:
            raise FormatError(f"bad chunker parameters in store config: {exc}") from exc


def _chunker(params: ChunkerParams) -> FastCDC:
    # here: pyfastcdc (and its typing_extensions) costs ~6 ms to import; reads never chunk
    from pyfastcdc import FastCDC

    return FastCDC(
        params.avg_size,
        min_size=params.min_size,
        max_size=params.max_size,
        normalized_chunking=params.normalization,  # type: ignore[arg-type]  # checked 0..3
        seed=params.seed,
    )


def chunk_spans(
    data: bytes | bytearray | memoryview, params: ChunkerParams
) -> list[tuple[int, int, int]]:
    """Cut a whole buffer; return ``(offset, length, gear_hash)`` for each chunk in order."""
    return [
        (chunk.offset, chunk.length, chunk.gear_hash) for chunk in _chunker(params).cut_buf(data)
    ]


def chunk_views(
    data: bytes | bytearray | memoryview, params: ChunkerParams
) -> Iterator[memoryview]:
    """The chunks of a buffer already in memory, as read-only views of it (no copy)."""
    view = memoryview(data).toreadonly()
    for chunk in _chunker(params).cut_buf(view):
        yield view[chunk.offset : chunk.offset + chunk.length]


def iter_chunks(
    stream: Readable, params: ChunkerParams, *, read_size: int = 8 << 20,
    reuse_buffers: int = 0, keep_idle_buffers: bool = False,
) -> Iterator[memoryview]:
    """Yield the chunks of ``stream`` in order, reading it once, in bounded memory.

    Cut points are exactly those of :func:`chunk_spans` on the whole content. Each
    chunk is a read-only view of its read buffer, whose bytes never change while the
    view exists, so it stays valid after the next iteration (holding it keeps its read
    buffer, up to ``read_size`` bytes, alive; a chunk that starts in the unfinished
    tail of the previous read is a copy of its own). Short reads are fine; an empty
    stream yields nothing. Peak memory is about ``2 * max(read_size, max_size) +
    max_size``, plus the buffers the consumer's views hold.

    ``reuse_buffers`` > 0 (for a big file, when ``stream`` has ``readinto``): each read
    goes into a buffer of :class:`~.readbuffers.ReadBuffers`, up to that many kept and
    reused once no chunk of theirs is viewed any more, instead of a fresh ``bytes``
    per read (fresh memory, whose every page the kernel faults in again);
    ``keep_idle_buffers``: idle ones are kept too (``ReadBuffers.keep_idle``).
    """
    if type(read_size) is not int or read_size < 1:
        raise InvalidInputError(f"read_size must be a positive int, got {read_size!r}")
    chunker = _chunker(params)
    max_size = params.max_size
    # Each round reads at least max_size new bytes, so every round makes progress.
    target = max(read_size, max_size)
    readinto: Callable[[memoryview], int | None] | None = (
        getattr(stream, "readinto", None) if reuse_buffers > 0 else None)
    if readinto is not None:
        return (yield from _chunks_in_buffers(
            readinto, chunker, ReadBuffers(max(target, 2 * max_size), reuse_buffers,
                                           keep_idle=keep_idle_buffers), max_size))
    carry = memoryview(b"")
    eof = False
    while not eof:
        # read() rather than a fresh buffer for readinto(): a fresh bytes object
        # needs no zero-fill, and a small file gets a buffer of its own size.
        view, eof = _read_up_to(stream, target)
        start = 0
        if len(carry):
            # The unfinished chunk left from the last round is re-cut together with
            # the first max_size new bytes only: joining it to the whole new buffer
            # would copy every byte of the stream once more. Every chunk starting
            # in the carry is final here (max_size bytes follow it), so cutting goes
            # on in the new buffer alone from the first chunk starting in it.
            head = memoryview(b"".join((carry, view[:max_size]))).toreadonly()
            head_eof = eof and len(view) <= max_size
            rest = yield from _copied(_final_chunks(chunker, head, head_eof, max_size))
            start = len(head) - len(rest) - len(carry)
            del head, rest
        carry = yield from _final_chunks(chunker, view[start:], eof, max_size)
        del view  # the consumer's chunks may keep it alive; this generator must not


def _chunks_in_buffers(
    readinto: Callable[[memoryview], int | None], chunker: FastCDC, buffers: ReadBuffers,
    max_size: int,
) -> Generator[memoryview, None, None]:
    """:func:`iter_chunks` reading into ``buffers``: the unfinished chunk of one read
    (shorter than ``max_size``) is copied to the start of the next buffer and the rest
    of that buffer is read into, so every chunk is a view of one buffer. No joined head
    and no per-chunk copy (both fresh memory, whose pages fault in: issue 20), and each
    read still adds at least ``buffers.size - max_size >= max_size`` new bytes."""
    carry = memoryview(b"")
    eof = False
    while not eof:
        buffer = buffers.take()
        have = len(carry)
        memoryview(buffer)[:have] = carry
        del carry  # the previous buffer is free once its chunks are
        view, eof = _read_into(readinto, buffer, have)
        if eof:  # no more reads: each buffer is freed with its last chunk's view
            buffers.release()
        del buffer
        carry = yield from _final_chunks(chunker, view, eof, max_size)
        del view  # the consumer's chunks may keep it alive; this generator must not


def _read_up_to(stream: Readable, target: int) -> tuple[memoryview, bool]:
    """Up to ``target`` bytes from ``stream`` (fewer only at its end), and whether it ended."""
    parts: list[bytes] = []
    have = 0
    eof = False
    while have < target:
        part = stream.read(target - have)
        if part is None:  # a non-blocking raw stream with no data yet
            raise InvalidInputError("iter_chunks needs a blocking stream; read() returned None")
        if not part:
            eof = True
            break
        parts.append(part)
        have += len(part)
    buf = parts[0] if len(parts) == 1 and type(parts[0]) is bytes else b"".join(parts)
    return memoryview(buf).toreadonly(), eof


def _read_into(readinto: Callable[[memoryview], int | None],
               buffer: bytearray, start: int = 0) -> tuple[memoryview, bool]:
    """:func:`_read_up_to` into ``buffer`` after its first ``start`` bytes (filled,
    fewer bytes only at the end): a read-only view of the whole of it that holds data,
    and whether the stream ended."""
    whole = memoryview(buffer)
    have = start
    eof = False
    while have < len(buffer):
        got = readinto(whole[have:])
        if got is None:  # a non-blocking raw stream with no data yet
            raise InvalidInputError("iter_chunks needs a blocking stream; readinto() "
                                    "returned None")
        if not got:
            eof = True
            break
        have += got
    return whole[:have].toreadonly(), eof


def _copied(
    chunks: Generator[memoryview, None, memoryview]
) -> Generator[memoryview, None, memoryview]:
    """``chunks``, each copied into a ``bytes`` of its own: a chunk cut from a joined
    head would otherwise keep the whole head (up to ``2 * max_size``) alive while it
    waits in a pack, next to the read buffers; the copy is at most one chunk a read."""
    while True:
        try:
            chunk = next(chunks)
        except StopIteration as end:
            rest: memoryview = end.value
            return rest
        yield memoryview(bytes(chunk)).toreadonly()


def _final_chunks(
    chunker: FastCDC, buf: memoryview, eof: bool, max_size: int
) -> Generator[memoryview, None, memoryview]:
    """Yield the chunks of ``buf`` whose cut points are final; return the rest."""
    for chunk in chunker.cut_buf(buf):
        # FastCDC restarts its fingerprint at every chunk start and looks at most
        # max_size bytes ahead, so a chunk is final once max_size bytes follow its
        # start (or the stream has ended); otherwise it is cut again next round.
        if not eof and len(buf) - chunk.offset < max_size:
            return buf[chunk.offset :]
        yield chunk.data
    return buf[:0]
