"""Packs: many blob envelopes in one object (docs/design.md §5).

Vocabulary: a *pack* holds blob envelopes back to back, then a *trailer* (an
envelope listing every blob with its offset), the trailer's length and a magic.
A :class:`PackBatch` collects the blobs of the next pack as plaintext (or as
envelopes copied from another pack) until the pack target is reached, and seals
them later, off the writer's thread (a local store's big compressible chunks are
sealed as they come instead: chunksealing.py); a :class:`PackBuilder` appends sealed blobs;
:func:`assemble` joins them into the pack's bytes; :func:`read_trailer` recovers
the blob list from a pack alone, and :func:`read_tail` from its last bytes only
(what an index rebuild reads).

Blob lists (in trailers and index objects) are *records*: fixed 49-byte rows
``id:32s kind:u8 offset:u64 length:u32 raw_length:u32``, little-endian. *Links* name
the bases of each delta chunk (objects/deltas.py) beside the records:
``[[delta_id, [base_id, ...]], ...]`` in the order of the records.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from artifactstore.core import encoding
from artifactstore.core.digest import Digest, checked_digest, hash_bytes
from artifactstore.core.errors import IntegrityError
from artifactstore.objects.chunksealing import ChunkSealing, SealingChunk, ToSeal
from artifactstore.objects.deltas import MAX_BASES, seal_delta
from artifactstore.objects.envelope import (
    KIND_OF,
    AdaptiveSealer,
    Compression,
    Kind,
    compressed,
    open_envelope,
    seal,
    seal_parts,
)

if TYPE_CHECKING:
    from artifactstore.objects.domainkeys import DomainKeys

#: what an encrypted trailer is bound to (design §13.3)
TRAILER_BINDING = b"pack trailer"

__all__ = [
    "PACK_MAGIC",
    "TAIL_SIZE",
    "BlobEntry",
    "FinishedPack",
    "PackBatch",
    "PackBuilder",
    "PendingPack",
    "assemble",
    "check_pack",
    "checked_links",
    "checked_records",
    "decode_links",
    "decode_records",
    "encode_links",
    "encode_records",
    "read_tail",
    "read_trailer",
    "trailer_length",
]

PACK_MAGIC = b"ASP1"
#: read buffers one open pack may keep alive through views (8 MiB reads: a 16 MiB
#: pack of consecutive chunks spans three)
PINNED_BUFFERS = 3
#: in an encrypted domain, a file's chunk up to this size is sealed on the writer's thread
#: as it is added while its pack's chunks do not compress (PackBatch.add)
INLINE_SEAL_MAX = 256 << 10
_TAIL = struct.Struct("<I4s")
TAIL_SIZE = _TAIL.size
"""Bytes after the trailer: its length (u32) and the magic."""
RECORD = struct.Struct("<32sBQII")


@dataclass(frozen=True, slots=True)
class BlobEntry:
    """Where one blob's envelope sits inside its pack."""

    id: Digest
    kind: Kind
    offset: int
    length: int
    raw_length: int
    #: a delta chunk's bases, in dictionary order (its links); () for every other blob
    bases: tuple[Digest, ...] = ()


def encode_links(entries: Iterable[BlobEntry]) -> list[list[object]]:
    """The links of ``entries`` (their deltas' bases), for a trailer or an index entry."""
    return [[e.id.raw, [b.raw for b in e.bases]] for e in entries if e.bases]


def decode_links(links: object, entries: list[BlobEntry], *, what: str) -> list[BlobEntry]:
    """``entries`` with the bases ``links`` give their deltas (:func:`checked_links`)."""
    bases = checked_links(links, ((e.id.raw, e.kind) for e in entries), what=what)
    if not bases:
        return entries
    return [e if e.id.raw not in bases else BlobEntry(
        e.id, e.kind, e.offset, e.length, e.raw_length,
        tuple(checked_digest(b) for b in bases[e.id.raw])) for e in entries]


def checked_links(links: object, blobs: Iterable[tuple[bytes, int]], *, what: str
                  ) -> dict[bytes, tuple[bytes, ...]]:
    """The bases of each delta of ``blobs`` (``(id, kind)`` pairs) as ``links`` name them:
    every delta has 1 to MAX_BASES distinct bases, none itself, and links name nothing
    but the deltas listed (IntegrityError otherwise)."""
    if not isinstance(links, list):
        raise IntegrityError(f"{what} has malformed links")
    bases: dict[bytes, tuple[bytes, ...]] = {}
    for link in links:
        if (not isinstance(link, list) or len(link) != 2 or not _is_id(link[0])
                or not isinstance(link[1], list) or not 1 <= len(link[1]) <= MAX_BASES
                or not all(_is_id(b) for b in link[1]) or link[0] in bases):
            raise IntegrityError(f"{what} has a malformed link")
        named = tuple(link[1])
        if len(set(named)) != len(named) or link[0] in named:
            raise IntegrityError(f"{what} links a delta to a base twice or to itself")
        bases[link[0]] = named
    linked = 0
    for raw, kind in blobs:
        if kind == Kind.CHUNK_DELTA:
            if raw not in bases:
                raise IntegrityError(f"{what} lists delta {raw.hex()} without its bases")
            linked += 1
        elif raw in bases:
            raise IntegrityError(f"{what} links blob {raw.hex()}, which is no delta")
    if linked != len(bases):
        raise IntegrityError(f"{what} links blobs it does not list")
    return bases


def _is_id(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == 32


def encode_records(entries: Iterable[BlobEntry]) -> bytes:
    pack = RECORD.pack
    return b"".join(
        pack(e.id.raw, int(e.kind), e.offset, e.length, e.raw_length) for e in entries
    )


def decode_records(data: bytes, *, what: str) -> list[BlobEntry]:
    """Blob entries from records, each checked for a known kind and a sane range."""
    kinds = KIND_OF  # a dict, not an enum call
    # ``raw`` is 32 bytes (the record's layout): Digest's own check is not needed
    return [BlobEntry(checked_digest(raw), kinds[kind], offset, length, raw_length)
            for raw, kind, offset, length, raw_length in checked_records(data, what=what)]


def checked_records(data: bytes, *, what: str) -> list[tuple[bytes, int, int, int, int]]:
    """The rows ``(id, kind, offset, length, raw_length)`` of records, as
    :func:`decode_records` checks them, without an object per row: a cold client
    merges every record of the store's index (design §6)."""
    if not isinstance(data, bytes) or len(data) % RECORD.size:
        raise IntegrityError(f"{what} has a malformed blob list")
    rows = list(RECORD.iter_unpack(data))
    kinds = KIND_OF
    for raw, kind, _, length, _ in rows:
        if kind not in kinds:
            raise IntegrityError(f"{what} lists blob {raw.hex()} of unknown kind {kind}")
        if length <= 0:
            raise IntegrityError(f"{what} lists blob {raw.hex()} with length 0")
    return rows


@dataclass(frozen=True, slots=True)
class PendingPack:
    """Sealed blobs taken from a builder, not yet joined into one object."""

    parts: tuple[bytes | memoryview, ...]
    entries: tuple[BlobEntry, ...]


@dataclass(frozen=True, slots=True)
class FinishedPack:
    """A complete pack: its id, bytes (dropped after upload) and blob list."""

    id: Digest
    data: bytes
    entries: tuple[BlobEntry, ...]


class PackBuilder:
    """Appends sealed blobs without copying them; :meth:`take` empties it."""

    def __init__(self) -> None:
        self._parts: list[bytes | memoryview] = []
        self._entries: list[BlobEntry] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def add(
        self, blob_id: Digest, kind: Kind, header: bytes, payload: bytes | memoryview,
        raw_length: int, bases: tuple[Digest, ...] = (),
    ) -> None:
        length = len(header) + len(payload)
        self._entries.append(BlobEntry(blob_id, kind, self._size, length, raw_length, bases))
        self._parts.append(header)
        self._parts.append(payload)
        self._size += length

    def take(self) -> PendingPack:
        pending = PendingPack(tuple(self._parts), tuple(self._entries))
        self._parts, self._entries, self._size = [], [], 0
        return pending


@dataclass(frozen=True, slots=True)
class _Sealed:
    id: Digest
    kind: Kind
    header: bytes
    body: bytes | memoryview
    raw_length: int
    bases: tuple[Digest, ...] = ()


class PackBatch:
    """The blobs of the next pack, in order, sealed (zstd, AES) when the pack is: the
    costly step then runs where the pack is uploaded, beside the chunking.

    ``size`` counts plaintext bytes (and copied envelopes): a pack is closed on what
    went in, so a compressible pack is smaller than the target, never larger. An
    ``eager`` batch seals each blob as it is added and counts sealed bytes, as a
    writer does for a backend that joins a pack into one buffer to send it (S3,
    GCS): there the network sets the pace, and a pack in flight already costs two
    copies, so holding a third (its plaintext) is not worth it.
    """

    __slots__ = ("_compression", "_deferring", "_eager", "_items", "_keys", "_pinned",
                 "_sealer", "_sealing", "_size")

    def __init__(self, compression: Compression | None, keys: DomainKeys | None = None, *,
                 eager: bool = False, sealing: ChunkSealing | None = None) -> None:
        self._compression = compression
        self._keys = keys
        self._eager = eager
        #: where chunks with their own compression are sealed as they come (not eager)
        self._sealing = sealing
        self._items: list[ToSeal | _Sealed | SealingChunk] = []
        self._size = 0
        #: read buffers this batch's views keep alive (until the pack is sealed)
        self._pinned: list[object] = []
        self._sealer = AdaptiveSealer(compression)
        #: a chunk sealed in add compressed: the other small ones wait for seal()
        self._deferring = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def pins_buffers(self) -> bool:
        """Whether views of read buffers wait in this batch (not chunks sealed as they
        came, which hold their own sealed bytes only)."""
        return bool(self._pinned)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, blob_id: Digest, kind: Kind, plaintext: bytes | memoryview, *,
            adaptive: bool, compression: Compression | None = None,
            bases: tuple[Digest, ...] = (), base_data: tuple[bytes, ...] = ()) -> None:
        """A blob to seal; ``adaptive``: a file's chunk, whose compression is given up
        where the chunks before it in the pack did not compress (:class:`AdaptiveSealer`).
        ``compression``: this blob's policy instead of the batch's (always tried).
        ``bases``, ``base_data``: a chunk tried as a delta against these chunks (their
        ids and plaintexts): stored as one when that pays (objects/deltas.py).

        A view into a read buffer keeps the whole buffer alive until the pack is
        sealed: new chunks scattered through a big file (a 5% rewrite) would pin
        every buffer read. Past :data:`PINNED_BUFFERS` buffers a view is copied.
        """
        if self._eager or bases:
            # a delta candidate is sealed now, on the writer's thread: held until the pack
            # is sealed, the bases of a pack of deltas cost +75 MiB peak (table v4); in
            # ChunkSealing's pool, +40 MiB (each job's zstd context with 2^20-entry tables)
            # and twice the packs, for no less CPU (docs/benchmarks.md, session 15)
            kind, header, payload, bases = self._seal_one(
                ToSeal(blob_id, kind, plaintext, adaptive, compression, bases, base_data))
            self.add_sealed(blob_id, kind, header, payload, len(plaintext), bases)
            return
        if compression is not None and self._sealing is not None:
            # sealed now in the pool; its read buffer is viewed only until then
            self._items.append(SealingChunk(blob_id, len(plaintext), self._sealing.submit(
                ToSeal(blob_id, kind, plaintext, adaptive, compression), self._keys)))
            self._size += len(plaintext)
            return
        if (self._keys is not None and adaptive and compression is None
                and not self._deferring and len(plaintext) <= INLINE_SEAL_MAX):
            # sealed here while nothing compressed (design §5): AES-GCM lets go of the GIL,
            # and on the I/O thread each blob then waited to take it back from this one
            kind, header, payload, _ = self._seal_one(
                ToSeal(blob_id, kind, plaintext, adaptive))
            self._deferring = compressed(header)
            self.add_sealed(blob_id, kind, header, payload, len(plaintext))
            return
        if isinstance(plaintext, memoryview):
            base = plaintext.obj
            if type(base) is bytes and len(base) == plaintext.nbytes:
                plaintext = base  # the whole buffer (a small file): it pins nothing more
            elif not any(b is base for b in self._pinned):
                if len(self._pinned) < PINNED_BUFFERS:
                    self._pinned.append(base)
                else:
                    plaintext = bytes(plaintext)
        self._items.append(ToSeal(blob_id, kind, plaintext, adaptive, compression, bases,
                                   base_data))
        self._size += len(plaintext)

    def add_sealed(self, blob_id: Digest, kind: Kind, header: bytes,
                   body: bytes | memoryview, raw_length: int,
                   bases: tuple[Digest, ...] = ()) -> None:
        """A blob's envelope as it is (a rescue or a repack copies it verbatim, a
        delta with its ``bases``)."""
        self._items.append(_Sealed(blob_id, kind, header, body, raw_length, bases))
        self._size += len(header) + len(body)

    def absorb(self, other: PackBatch) -> None:
        """Append ``other``'s blobs after this batch's (``other`` is left empty)."""
        self._items += other._items
        self._size += other._size
        self._pinned += other._pinned
        other._items, other._size, other._pinned = [], 0, []

    def take(self) -> PackBatch:
        """This batch's blobs as a new batch; this one is left empty."""
        taken = PackBatch(self._compression, self._keys, eager=self._eager,
                          sealing=self._sealing)
        taken._items, taken._size, taken._pinned = self._items, self._size, self._pinned
        taken._sealer, self._sealer = self._sealer, AdaptiveSealer(self._compression)
        self._items, self._size, self._pinned = [], 0, []
        return taken

    def seal(self) -> PendingPack:
        """Seal every blob in order, each plaintext released once it is sealed."""
        builder = PackBuilder()
        items, self._items, self._size, self._pinned = self._items, [], 0, []
        items.reverse()  # popped from the end, in order
        while items:
            item = items.pop()
            if isinstance(item, _Sealed):
                builder.add(item.id, item.kind, item.header, item.body, item.raw_length,
                            item.bases)
            elif isinstance(item, SealingChunk):
                kind, header, body, bases = item.future.result()
                builder.add(item.id, kind, header, body, item.raw_length, bases)
            else:
                kind, header, body, bases = self._seal_one(item)
                builder.add(item.id, kind, header, body, len(item.plaintext), bases)
        return builder.take()

    def _seal_one(self, item: ToSeal
                  ) -> tuple[Kind, bytes, bytes | memoryview, tuple[Digest, ...]]:
        """The blob's kind, envelope (header, payload) and bases (a delta's)."""
        if item.bases:
            return seal_delta(item.id, item.plaintext, item.bases, item.base_data,
                              item.compression or self._compression, self._keys)
        if item.compression is not None:
            return (item.kind, *seal_parts(item.kind, item.plaintext, item.compression,
                                           keys=self._keys, binding=item.id.raw), ())
        if item.adaptive:
            return (item.kind, *self._sealer.seal_parts(item.kind, item.plaintext,
                                                        keys=self._keys, binding=item.id.raw),
                    ())
        return (item.kind, *seal_parts(item.kind, item.plaintext, self._compression,
                                       keys=self._keys, binding=item.id.raw), ())


def pack_parts(
    pending: PendingPack, keys: DomainKeys | None = None
) -> tuple[Digest, tuple[bytes | memoryview, ...]]:
    """The pack's id and its bytes as parts (blobs, trailer, tail), not joined.

    See :func:`assemble` for the layout; a backend writes the parts without a copy.
    """
    body: dict[str, object] = {"version": 1, "blobs": encode_records(pending.entries)}
    links = encode_links(pending.entries)
    if links:  # absent when the pack holds no delta: older packs read as they were
        body["links"] = links
    trailer = seal(Kind.PACK_TRAILER, encoding.pack(body), keys=keys, binding=TRAILER_BINDING)
    tail = _TAIL.pack(len(trailer), PACK_MAGIC)
    return hash_bytes(trailer), (*pending.parts, trailer, tail)


def assemble(pending: PendingPack, keys: DomainKeys | None = None) -> FinishedPack:
    """Join the blobs, append the trailer, and name the pack by its trailer's hash.

    The trailer lists every blob's id, offset and length, so its hash commits to
    the pack's content without hashing all of it again (every blob is verified
    against its own id on read): one BLAKE3 pass over the data instead of two.
    """
    pack_id, parts = pack_parts(pending, keys)
    return FinishedPack(pack_id, b"".join(parts), pending.entries)


def trailer_length(tail: bytes, pack_size: int, *, what: str) -> int:
    """The trailer's length, from the pack's last bytes (at least :data:`TAIL_SIZE`)."""
    if len(tail) < _TAIL.size or pack_size < _TAIL.size:
        raise IntegrityError(f"{what} is truncated: no pack trailer")
    length, magic = _TAIL.unpack_from(tail, len(tail) - _TAIL.size)
    if magic != PACK_MAGIC or length > pack_size - _TAIL.size:
        raise IntegrityError(f"{what} has a damaged pack trailer")
    return int(length)


def _trailer_span(data: bytes, *, what: str) -> tuple[int, int]:
    trailer_end = len(data) - _TAIL.size
    return trailer_end - trailer_length(data, len(data), what=what), trailer_end


def _check_tiling(entries: tuple[BlobEntry, ...], data_end: int, *, what: str) -> None:
    offset = 0
    for e in entries:
        if e.offset != offset:
            raise IntegrityError(f"{what} has a gap or overlap at offset {offset}")
        offset += e.length
    if offset != data_end:
        raise IntegrityError(f"{what} has {data_end - offset} unlisted bytes before its trailer")


def check_pack(data: bytes, pack_id: Digest, *, what: str,
               keys: DomainKeys | None = None) -> tuple[BlobEntry, ...]:
    """The blob list of a whole pack whose trailer matches ``pack_id``.

    Also checks that the blobs tile the data region exactly, so every byte of
    the pack is covered by a blob id, the trailer hash or the fixed tail.
    """
    start, end = _trailer_span(data, what=what)
    if hash_bytes(memoryview(data)[start:end]) != pack_id:
        raise IntegrityError(
            f"{what} does not match its id: it is damaged; restore it from a backup"
        )
    entries = read_trailer(data, what=what, keys=keys)
    _check_tiling(entries, start, what=what)
    return entries


def read_trailer(data: bytes, *, what: str,
                 keys: DomainKeys | None = None) -> tuple[BlobEntry, ...]:
    """The blob list of a whole pack, checked against the pack's size."""
    start, trailer_end = _trailer_span(data, what=what)
    return _decode_trailer(memoryview(data)[start:trailer_end], start, what=what, keys=keys)


def read_tail(tail: bytes, pack_id: Digest, pack_size: int, *, what: str,
              keys: DomainKeys | None = None) -> tuple[BlobEntry, ...]:
    """The blob list of a pack from its last bytes, checked against ``pack_id``.

    ``tail`` must hold the trailer and the fixed tail (:func:`trailer_length`
    says how much that is). The blobs are not read, but they must tile the data
    region exactly, as :func:`check_pack` requires of a whole pack.
    """
    length = trailer_length(tail, pack_size, what=what)
    if len(tail) < length + _TAIL.size:
        raise IntegrityError(f"{what}: the tail read holds only part of the trailer")
    envelope = memoryview(tail)[len(tail) - _TAIL.size - length : len(tail) - _TAIL.size]
    if hash_bytes(envelope) != pack_id:
        raise IntegrityError(
            f"{what} does not match its id: its trailer is damaged; restore it from a backup"
        )
    data_end = pack_size - _TAIL.size - length
    entries = _decode_trailer(envelope, data_end, what=what, keys=keys)
    _check_tiling(entries, data_end, what=what)
    return entries


def _decode_trailer(envelope: memoryview, data_end: int, *, what: str,
                    keys: DomainKeys | None) -> tuple[BlobEntry, ...]:
    _, body = open_envelope(
        envelope, expected_kind=Kind.PACK_TRAILER, raw_length=None, what=f"trailer of {what}",
        keys=keys, binding=TRAILER_BINDING,
    )
    decoded = encoding.unpack(body, what=f"trailer of {what}")
    if not isinstance(decoded, dict) or decoded.get("version") != 1:
        raise IntegrityError(f"trailer of {what} has an unknown layout")
    entries = tuple(decode_links(decoded.get("links", []),
                                 decode_records(decoded.get("blobs", b""),
                                                what=f"trailer of {what}"),
                                 what=f"trailer of {what}"))
    for e in entries:
        if e.offset + e.length > data_end:
            raise IntegrityError(f"{what} lists blob {e.id.hex} beyond its data")
    return entries
