"""Delta chunks: a new chunk stored against the previous version's chunks (design §4).

Vocabulary: a *delta* (kind ``CHUNK_DELTA``) is a chunk whose envelope payload is a
zstd frame compressed with a raw-content *dictionary*: the plaintexts of its *bases*
(1 to :data:`MAX_BASES` plain ``CHUNK`` blobs, depth 1) joined in their listed order.
The delta's id is the id of the chunk it rebuilds, so trees, chunk lists and
deduplication do not know it is a delta; its bases are named beside it (its *links*)
in the pack trailer and the index objects (design §5, §6), where gc and the index see
them. A reader opens a delta with its bases' plaintexts, bounded by the raw length,
then checks the id as for any chunk: a wrong or swapped base ends in IntegrityError.

The writer (:class:`DeltaSource`, one per file being written) picks as bases the chunks
of the same path's file in the version the new one is logged on top of that overlap
the new chunk's byte range, for new chunks of big compressible files only (§2.2). It
keeps a delta when the frame is at most :data:`KEEP_OUTRIGHT` of the raw size, or at
most half of what the plain compression gives; else the chunk is stored plain.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import zstandard

from artifactstore.core.digest import Digest
from artifactstore.core.errors import IntegrityError, NotFoundError
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.envelope import (
    Compression,
    Kind,
    compressed,
    exact_size,
    seal_compressed,
    seal_parts,
)

if TYPE_CHECKING:
    from artifactstore.objects.domainkeys import DomainKeys


class Location(Protocol):
    """What a reader knows of a blob's place (``index.BlobLocation``; not imported: the
    index's packs use this module)."""

    @property
    def kind(self) -> Kind: ...

    @property
    def raw_length(self) -> int: ...


L = TypeVar("L", bound=Location)

__all__ = [
    "BASES_PER_READ", "DELTA_FEATURE", "KEEP_OUTRIGHT", "MAX_BASES", "BaseCache", "BaseReader",
    "DeltaSource", "Sealing", "delta_frame", "dictionary", "seal_delta",
]  # fmt: skip

#: the config's mandatory feature of a store whose writers may store deltas (design §3)
DELTA_FEATURE = "delta-chunks"
MAX_BASES = 3
#: a delta this small (of the raw size) is kept without compressing the chunk plainly
KEEP_OUTRIGHT = 1 / 16
#: zstd "dfast" with a big hash table: 2^16 entries lose most positions of a 0.5-1.5 MiB
#: dictionary, 2^20 keep them (docs/benchmarks.md, "Table stored after v4: what delta
#: compression would give"); only writers use them (a frame says how to read itself)
_DELTA_PARAMS = {"chain_log": 16, "hash_log": 20, "min_match": 7, "search_log": 1,
                 "strategy": 2, "target_length": 0, "window_log": 22}


#: the bases of one read's delta chunks are fetched together before it (coalesced range
#: reads, not one request per base), at most about this many bytes of them a read; the
#: base cache holds several reads' worth, so none is evicted before use
BASES_PER_READ = 4 << 20
#: a blob's kind, envelope (header, payload) and bases: what sealing a delta candidate gives
Sealing = tuple[Kind, bytes, "bytes | memoryview", tuple[Digest, ...]]


def dictionary(bases: Sequence[bytes]) -> bytes:
    """The dictionary of a delta: its bases' plaintexts joined in the listed order."""
    return b"".join(bases)


def delta_frame(plaintext: bytes | memoryview, bases: Sequence[bytes]) -> bytes:
    """The zstd frame of ``plaintext`` against ``bases`` (a raw-content dictionary)."""
    params = zstandard.ZstdCompressionParameters(**_DELTA_PARAMS)
    compressor = zstandard.ZstdCompressor(
        compression_params=params,
        dict_data=zstandard.ZstdCompressionDict(dictionary(bases),
                                                dict_type=zstandard.DICT_TYPE_RAWCONTENT))
    return exact_size(compressor.compress(plaintext))  # small frames, held until packed


@dataclass(frozen=True, slots=True)
class DeltaSource:
    """The previous version's file at the same path: its chunks by byte offset."""

    ids: tuple[Digest, ...]
    offsets: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, ref: FileRef) -> DeltaSource:
        offsets, ends, at = [], [], 0
        for chunk in ref.chunks:
            offsets.append(at)
            at += chunk.length
            ends.append(at)
        return cls(tuple(c.id for c in ref.chunks), tuple(offsets), tuple(ends))

    def following(self, first: Digest) -> tuple[Digest, ...]:
        """The chunk ``first`` and the ones after it in the previous file (each once)."""
        try:
            at = self.ids.index(first)
        except ValueError:
            return ()
        return tuple(dict.fromkeys(self.ids[at:]))

    def bases(self, offset: int, length: int) -> tuple[Digest, ...]:
        """The previous chunks overlapping ``[offset, offset + length)``, at most
        :data:`MAX_BASES` (those overlapping most), in file order, each once."""
        first = bisect_right(self.ends, offset)
        last = bisect_left(self.offsets, offset + length)
        picked = list(range(first, last))
        if len(picked) > MAX_BASES:
            def overlap(i: int) -> int:
                return min(self.ends[i], offset + length) - max(self.offsets[i], offset)
            picked = sorted(sorted(picked, key=overlap, reverse=True)[:MAX_BASES])
        seen: dict[Digest, None] = {}
        for i in picked:
            seen.setdefault(self.ids[i], None)
        return tuple(seen)


class BaseCache:
    """The plaintexts of recently used bases, shared by the threads of one object store
    (consecutive deltas of a file mostly share a base: each is read once)."""

    def __init__(self, capacity: int = 16 << 20) -> None:
        self._capacity = capacity
        self._held = 0
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, blob_id: Digest, read: Callable[[Digest], bytes]) -> bytes:
        """The plaintext of base ``blob_id``, from here or from ``read`` (checked)."""
        with self._lock:
            data = self._items.get(blob_id.raw)
            if data is not None:
                self._items.move_to_end(blob_id.raw)
                return data
        data = read(blob_id)
        self.put(blob_id, data)
        return data

    def holds(self, blob_id: Digest) -> bool:
        with self._lock:
            return blob_id.raw in self._items

    def put(self, blob_id: Digest, data: bytes) -> None:
        """Keep base ``blob_id``'s plaintext (checked by the caller)."""
        with self._lock:
            if blob_id.raw not in self._items:
                self._items[blob_id.raw] = data
                self._held += len(data)
                while self._held > self._capacity and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._held -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._held = 0


def seal_delta(blob_id: Digest, plaintext: bytes | memoryview, bases: tuple[Digest, ...],
               base_data: tuple[bytes, ...], compression: Compression | None,
               keys: DomainKeys | None) -> Sealing:
    """A chunk sealed as a delta against ``bases`` when that pays, else as a plain chunk
    (with ``compression``): kept outright when its frame is at most KEEP_OUTRIGHT of the
    raw size, else only when it is at most half of what the plain compression gives."""
    raw = len(plaintext)
    frame = delta_frame(plaintext, base_data)
    if len(frame) > raw * KEEP_OUTRIGHT:
        header, payload = seal_parts(Kind.CHUNK, plaintext, compression, keys=keys,
                                     binding=blob_id.raw)
        stored = len(payload) if compressed(header) else raw
        if 2 * len(frame) > stored:
            return Kind.CHUNK, header, payload, ()
    header, payload = seal_compressed(Kind.CHUNK_DELTA, frame, keys=keys, binding=blob_id.raw)
    return Kind.CHUNK_DELTA, header, payload, bases


class BaseReader(Generic[L]):
    """The bases of delta chunks for a blob reader: each read through ``read_blob``
    (checked) and kept a while in a :class:`BaseCache`; :meth:`plan` and
    :meth:`prefetch` let a reader fetch a read's bases together before it."""

    def __init__(self, *, locate: Callable[[Digest], L],
                 read_blob: Callable[[Digest], bytes],
                 read_many: Callable[[Iterable[Digest]], Iterator[tuple[Digest, bytes]]],
                 bases: Callable[[Digest, L], tuple[Digest, ...]]) -> None:
        self._locate = locate
        self._read_blob = read_blob
        self._read_many = read_many
        self._bases = bases
        self.cache = BaseCache()

    def dictionary(self, blob_id: Digest, location: L, what: str,
                   bases: tuple[Digest, ...] | None = None) -> bytes:
        """The dictionary of a delta copy: its bases' checked plaintexts, joined (the
        ``bases`` given, else those the index names)."""
        if bases is None:
            bases = self._bases(blob_id, location)
        if not bases:
            raise IntegrityError(f"{what} is a delta chunk the index names no bases for: "
                                 "run 'artifactstore verify'")
        try:
            return dictionary([self.cache.get(b, self._read_base) for b in bases])
        except NotFoundError as exc:
            raise IntegrityError(f"{what} is a delta chunk whose base is missing ({exc}); "
                                 "run 'artifactstore verify'") from None

    def _read_base(self, base_id: Digest) -> bytes:
        location = self._locate(base_id)
        if location.kind is not Kind.CHUNK:  # depth 1: a base is a plain chunk
            raise IntegrityError(f"base {base_id.hex} of a delta chunk is stored as a "
                                 f"{location.kind.name}, not a plain CHUNK")
        return self._read_blob(base_id)

    def plan(self, blob_id: Digest, location: L, into: dict[Digest, int]) -> None:
        """Add the bases of the delta at ``location`` to ``into`` (base -> raw size; 0:
        not fetched ahead, a missing or not plain one: the delta fails alone, naming it)."""
        for base in self._bases(blob_id, location):
            if base not in into:
                try:
                    found = self._locate(base)
                except NotFoundError:
                    into[base] = 0
                    continue
                into[base] = found.raw_length if found.kind is Kind.CHUNK else 0

    def prefetch(self, bases: dict[Digest, int]) -> None:
        """Read the planned bases the cache lacks, together (neighbouring chunks of the
        previous version share range reads)."""
        wanted = [b for b, size in bases.items() if size and not self.cache.holds(b)]
        if not wanted:
            return
        try:
            for base, data in self._read_many(wanted):
                self.cache.put(base, data)
        except (IntegrityError, NotFoundError):
            return  # each delta then reads its bases alone, and fails naming itself
