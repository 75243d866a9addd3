"""Index objects and the merged index (docs/design.md §6).

Vocabulary: an *index object* is an immutable, content-addressed list of
``blob id -> (pack, offset, length)`` for the packs one flush wrote. The
*merged index* is their union, held in memory and cached on local disk so that
opening a store only fetches index objects it has not merged yet.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from artifactstore.core import encoding
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import ArtifactStoreError, IntegrityError
from artifactstore.core.privatefiles import write_private_file
from artifactstore.objects.envelope import Compression, Kind, open_envelope, seal
from artifactstore.objects.packs import BlobEntry, decode_records, encode_records

if TYPE_CHECKING:
    from artifactstore.objects.domainkeys import DomainKeys

#: what an encrypted index object is bound to (design §13.3)
INDEX_BINDING = b"index"

__all__ = [
    "MAX_ENTRIES_PER_INDEX",
    "BlobLocation",
    "MergedIndex",
    "decode_index",
    "encode_indexes",
]

MAX_ENTRIES_PER_INDEX = 65536
_INDEX_VERSION = 1
_CACHE_VERSION = 2
_RECORD = struct.Struct("<32sIQIIBI")


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where to read one blob: its pack and the envelope's byte range in it."""

    pack: Digest
    kind: Kind
    offset: int
    length: int
    raw_length: int


def encode_indexes(
    packs: Iterable[tuple[Digest, tuple[BlobEntry, ...]]], compression: Compression,
    keys: DomainKeys | None = None,
) -> Iterator[tuple[Digest, bytes]]:
    """Index objects ``(id, bytes)`` for ``packs``, none listing more than the maximum."""
    batch: list[list[bytes]] = []
    count = 0

    def emit() -> tuple[Digest, bytes]:
        data = seal(Kind.INDEX, encoding.pack({"version": _INDEX_VERSION, "packs": batch}),
                    compression, keys=keys, binding=INDEX_BINDING)
        return hash_bytes(data), data

    for pack_id, all_entries in packs:
        entries = all_entries
        while entries:
            room = MAX_ENTRIES_PER_INDEX - count
            batch.append([pack_id.raw, encode_records(entries[:room])])
            count += len(entries[:room])
            entries = entries[room:]
            if count >= MAX_ENTRIES_PER_INDEX:
                yield emit()
                batch, count = [], 0
    if batch:
        yield emit()


def decode_index(index_id: Digest, data: bytes,
                 keys: DomainKeys | None = None) -> list[tuple[Digest, list[BlobEntry]]]:
    """Verify an index object against its id and return its packs and entries."""
    what = f"index object {index_id.hex}"
    if hash_bytes(data) != index_id:
        raise IntegrityError(f"{what} does not match its id: the store is damaged")
    _, plaintext = open_envelope(data, expected_kind=Kind.INDEX, raw_length=None, what=what,
                                 keys=keys, binding=INDEX_BINDING)
    body = encoding.unpack(plaintext, what=what)
    if not isinstance(body, dict) or body.get("version") != _INDEX_VERSION:
        raise IntegrityError(f"{what} has an unknown layout")
    result = []
    try:
        for pack_raw, records in body["packs"]:
            result.append((Digest(bytes(pack_raw)), decode_records(records, what=what)))
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{what} is malformed: {exc}") from None
    return result


class MergedIndex:
    """The union of index objects, with an on-disk cache.

    ``refresh`` takes the current listing of index ids and a fetch function; it
    merges the ids it has not seen and forgets exactly what the ids that
    vanished (a gc sweep replaced them) listed: every row remembers the index
    object it came from, and a blob listed by several objects keeps its other
    rows, so a sweep never forces a client to fetch every index object again.
    """

    def __init__(self, cache_path: Path | None, keys: DomainKeys | None = None, *,
                 cache_root: Path | None = None) -> None:
        #: the domain's keys: index objects of an encrypted domain are encrypted
        self.keys = keys
        self._cache_path = cache_path
        self._cache_root = cache_root  # the user's cache folder: private from there down
        self._clear()
        if cache_path is not None:
            self._load_cache(cache_path)

    def _clear(self) -> None:
        self._packs: list[Digest] = []
        self._pack_no: dict[Digest, int] = {}
        self._indexes: list[Digest] = []
        self._index_no: dict[Digest, int] = {}
        self._merged: set[Digest] = set()
        # blob -> (pack_no, kind, offset, length, raw_length, index_no)
        self._blobs: dict[bytes, tuple[int, int, int, int, int, int]] = {}
        #: further rows of blobs listed by more than one index object (rare)
        self._more: dict[bytes, list[tuple[int, int, int, int, int, int]]] = {}

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, blob_id: Digest) -> bool:
        return blob_id.raw in self._blobs

    @property
    def merged_ids(self) -> frozenset[Digest]:
        return frozenset(self._merged)

    @property
    def packs(self) -> tuple[Digest, ...]:
        """Packs some merged index object lists."""
        used = {row[0] for row in self._blobs.values()}
        return tuple(p for n, p in enumerate(self._packs) if n in used)

    def lookup(self, blob_id: Digest) -> BlobLocation | None:
        row = self._blobs.get(blob_id.raw)
        if row is None:
            return None
        pack_no, kind, offset, length, raw_length, _ = row
        return BlobLocation(self._packs[pack_no], Kind(kind), offset, length, raw_length)

    def add_pack(
        self, pack_id: Digest, entries: Iterable[BlobEntry], *, index_id: Digest,
        prefer: bool = False,
    ) -> None:
        """Add a pack's blobs as listed by ``index_id``; a blob already located keeps
        its location unless ``prefer`` (a pack this client just wrote: the freshest)."""
        pack_no = self._pack_no.get(pack_id)
        if pack_no is None:
            pack_no = self._pack_no[pack_id] = len(self._packs)
            self._packs.append(pack_id)
        index_no = self._index_no.get(index_id)
        if index_no is None:
            index_no = self._index_no[index_id] = len(self._indexes)
            self._indexes.append(index_id)
        blobs, more = self._blobs, self._more
        for e in entries:
            row = (pack_no, int(e.kind), e.offset, e.length, e.raw_length, index_no)
            old = blobs.get(e.id.raw)
            if old is None:
                blobs[e.id.raw] = row
            elif old != row:
                if prefer:
                    blobs[e.id.raw] = row
                    row = old
                more.setdefault(e.id.raw, []).append(row)

    def refresh(
        self,
        listed: Iterable[Digest],
        fetch_many: Callable[[list[Digest]], Iterable[tuple[Digest, bytes | None]]],
    ) -> tuple[int, int]:
        """Merge index objects not seen yet and forget vanished ones.

        ``fetch_many`` yields ``None`` for an object that vanished after the
        listing. Returns ``(fetched, vanished while fetching)``.
        """
        listed_set = set(listed)
        gone = self._merged - listed_set
        if gone:
            self._forget(gone)
        missing = sorted(listed_set - self._merged)
        skipped = 0
        for index_id, data in fetch_many(missing):
            if data is None:
                skipped += 1
                continue
            for pack_id, entries in decode_index(index_id, data, self.keys):
                self.add_pack(pack_id, entries, index_id=index_id)
            self._merged.add(index_id)
        if missing or gone:
            self._save_cache()
        return len(missing) - skipped, skipped

    def _forget(self, gone: set[Digest]) -> None:
        numbers = {self._index_no[i] for i in gone if i in self._index_no}
        blobs, more = self._blobs, self._more
        for raw in [b for b, row in blobs.items() if row[5] in numbers]:
            others = [r for r in more.pop(raw, ()) if r[5] not in numbers]
            if others:
                blobs[raw] = others.pop(0)
                if others:
                    more[raw] = others
            else:
                del blobs[raw]
        for raw in [b for b, rows in more.items() if any(r[5] in numbers for r in rows)]:
            kept = [r for r in more[raw] if r[5] not in numbers]
            if kept:
                more[raw] = kept
            else:
                del more[raw]
        self._merged -= gone

    def note_written(self, index_id: Digest) -> None:
        """Record an index object this client wrote (its packs are already added)."""
        self._merged.add(index_id)

    def save(self) -> None:
        self._save_cache()

    # The cache is only an accelerator: a damaged or foreign file is ignored and rebuilt.
    def _load_cache(self, path: Path) -> None:
        try:
            body = encoding.unpack(path.read_bytes(), what=f"index cache {path}")
            if body.get("version") != _CACHE_VERSION:
                return
            packs = [Digest(bytes(p)) for p in body["packs"]]
            indexes = [Digest(bytes(i)) for i in body["indexes"]]
            blobs: dict[bytes, tuple[int, int, int, int, int, int]] = {}
            more: dict[bytes, list[tuple[int, int, int, int, int, int]]] = {}
            for raw, pack_no, offset, length, raw_length, kind, index_no in _RECORD.iter_unpack(
                body["records"]
            ):
                if pack_no >= len(packs) or index_no >= len(indexes):
                    return
                row = (pack_no, kind, offset, length, raw_length, index_no)
                if raw in blobs:
                    more.setdefault(raw, []).append(row)
                else:
                    blobs[raw] = row
            merged = {indexes[n] for n in body["merged"]}
        except (OSError, ArtifactStoreError, KeyError, TypeError, ValueError, struct.error,
                AttributeError, IndexError):
            return
        self._packs = packs
        self._pack_no = {p: n for n, p in enumerate(packs)}
        self._indexes = indexes
        self._index_no = {i: n for n, i in enumerate(indexes)}
        self._blobs = blobs
        self._more = more
        self._merged = merged

    def _save_cache(self) -> None:
        if self._cache_path is None:
            return
        rows = [(raw, row) for raw, row in self._blobs.items()]
        rows += [(raw, row) for raw, extra in self._more.items() for row in extra]
        records = b"".join(
            _RECORD.pack(raw, pack_no, offset, length, raw_length, kind, index_no)
            for raw, (pack_no, kind, offset, length, raw_length, index_no) in rows
        )
        body = encoding.pack({
            "version": _CACHE_VERSION,
            "indexes": [i.raw for i in self._indexes],
            "merged": sorted(self._index_no[i] for i in self._merged),
            "packs": [p.raw for p in self._packs],
            "records": records,
        })
        path = self._cache_path
        try:
            write_private_file(path, body, root=self._cache_root)
        except OSError:
            # A cache that cannot be written only costs refetching next time.
            return
