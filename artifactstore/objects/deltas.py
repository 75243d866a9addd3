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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import zstandard

from artifactstore.core.digest import Digest
from artifactstore.objects.blobrefs import FileRef

__all__ = [
    "DELTA_FEATURE", "KEEP_OUTRIGHT", "MAX_BASES", "BaseCache", "DeltaSource", "delta_frame",
    "dictionary",
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
    return compressor.compress(plaintext)


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
