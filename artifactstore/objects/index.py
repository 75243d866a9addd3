"""Index objects and the merged index (docs/design.md §6).

Vocabulary: an *index object* is an immutable, content-addressed list of
``blob id -> (pack, offset, length)`` for the packs one flush wrote. The
*merged index* is their union, held in memory and cached on local disk so that
opening a store only fetches index objects it has not merged yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from artifactstore.core import encoding
from artifactstore.core.digest import Digest, checked_digest, hash_bytes
from artifactstore.core.errors import IntegrityError
from artifactstore.objects.envelope import KIND_OF, Compression, Kind, open_envelope, seal
from artifactstore.objects.indexcache import RECORD as _RECORD
from artifactstore.objects.indexcache import (
    CacheDamagedError,
    CacheImage,
    Table,
    load_cache,
    merge_table,
    write_cache,
)
from artifactstore.objects.packs import (
    BlobEntry,
    checked_links,
    checked_records,
    encode_links,
    encode_records,
)

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
#: where a cache record holds its kind, and the kind of a delta copy
_KIND_AT = 52
_DELTA = int(Kind.CHUNK_DELTA)
_INDEX_VERSION = 1
_FOLD = 1 << 16  # rows added before they are folded into a new table
#: rows of one pack as an index object lists them: (id, kind, offset, length, raw_length)
Rows = list[tuple[bytes, int, int, int, int]]


class BlobLocation(NamedTuple):
    """Where to read one blob: its pack and the envelope's byte range in it.

    Immutable and typed like the frozen dataclasses, but a tuple: a restore makes
    one per chunk, and a tuple is made in a third of a frozen dataclass's time."""

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
    batch: list[list[object]] = []
    count = 0

    def emit() -> tuple[Digest, bytes]:
        data = seal(Kind.INDEX, encoding.pack({"version": _INDEX_VERSION, "packs": batch}),
                    compression, keys=keys, binding=INDEX_BINDING)
        return hash_bytes(data), data

    for pack_id, all_entries in packs:
        entries = all_entries
        while entries:
            room = MAX_ENTRIES_PER_INDEX - count
            links = encode_links(entries[:room])
            batch.append([pack_id.raw, encode_records(entries[:room])]
                         + ([links] if links else []))
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
    kinds = KIND_OF
    return [(pack_id, [BlobEntry(checked_digest(raw), kinds[kind], offset, length, raw_length,
                                 tuple(map(checked_digest, links[raw])) if raw in links
                                 else ())
                       for raw, kind, offset, length, raw_length in rows])
            for pack_id, rows, links in _index_rows(index_id, data, keys, what)]


def _index_rows(index_id: Digest, data: bytes, keys: DomainKeys | None, what: str,
                ) -> list[tuple[Digest, Rows, dict[bytes, tuple[bytes, ...]]]]:
    """:func:`decode_index` with each pack's rows as checked tuples, not objects, and
    its links (delta -> bases)."""
    if hash_bytes(data) != index_id:
        raise IntegrityError(f"{what} does not match its id: the store is damaged")
    _, plaintext = open_envelope(data, expected_kind=Kind.INDEX, raw_length=None, what=what,
                                 keys=keys, binding=INDEX_BINDING)
    body = encoding.unpack(plaintext, what=what)
    if not isinstance(body, dict) or body.get("version") != _INDEX_VERSION:
        raise IntegrityError(f"{what} has an unknown layout")
    result = []
    try:
        for pack_raw, records, *more in body["packs"]:
            if len(more) > 1:
                raise ValueError("an index entry has more than 3 fields")
            rows = checked_records(records, what=what)
            links = checked_links(more[0] if more else [], ((r[0], r[1]) for r in rows),
                                  what=what)
            result.append((Digest(bytes(pack_raw)), rows, links))
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{what} is malformed: {exc}") from None
    return result


class MergedIndex:
    """The union of index objects, with an on-disk cache (objects/indexcache.py).

    ``refresh`` takes the current listing of index ids and a fetch function; it
    merges the ids it has not seen and forgets exactly what the ids that
    vanished (a gc sweep replaced them) listed: every row remembers the index
    object it came from, and a blob listed by several objects keeps its other
    rows, so a sweep never forces a client to fetch every index object again.

    A delta chunk's copy (kind ``CHUNK_DELTA``) has *links*: its bases, kept by blob and
    pack (:meth:`bases`). A blob with a delta copy and a full copy is read from the full
    one: a full row always takes a delta row's place as the blob's first row.

    Rows live as packed records, not objects: the cache file's sorted table
    (memory-mapped when big), rows added since in a dict (folded into a new in-memory table
    every 65,536), and the rare further rows of a blob in another dict. A damaged
    cache block found by a lookup drops the whole cache; ``on_damage`` (the object
    store's refresh) then fetches every index object again and the lookup retries.
    """

    def __init__(self, cache_path: Path | None, keys: DomainKeys | None = None, *,
                 cache_root: Path | None = None) -> None:
        #: the domain's keys: index objects of an encrypted domain are encrypted
        self.keys = keys
        #: called after a damaged cache was dropped, to merge the store's index again
        self.on_damage: Callable[[], object] | None = None
        self._cache_path = cache_path
        self._cache_root = cache_root  # the user's cache folder: private from there down
        self._clear()
        if cache_path is not None:
            image = load_cache(cache_path)
            if image is not None:
                self._adopt(image)

    def _clear(self) -> None:
        self._packs: list[Digest] = []
        self._pack_no: dict[Digest, int] = {}
        self._indexes: list[Digest] = []
        self._index_no: dict[Digest, int] = {}
        self._merged: set[Digest] = set()
        #: the sorted records (a blob's first row), from the cache file or folded in memory
        self._table = Table.empty()
        #: first rows of blobs the table does not hold, added since it was made
        self._fresh: dict[bytes, bytes] = {}
        #: first rows replacing the table's for blobs it holds (a preferred add)
        self._replaced: dict[bytes, bytes] = {}
        #: further rows of blobs listed by more than one index object (rare)
        self._more: dict[bytes, list[bytes]] = {}
        #: the bases of each delta copy: blob id -> pack number -> base ids
        self._links: dict[bytes, dict[int, tuple[bytes, ...]]] = {}

    def _adopt(self, image: CacheImage) -> None:
        """Take the state a cache file holds (checked by ``load_cache``)."""
        self._packs = [Digest(p) for p in image.packs]
        self._pack_no = {p: n for n, p in enumerate(self._packs)}
        self._indexes = [Digest(i) for i in image.indexes]
        self._index_no = {i: n for n, i in enumerate(self._indexes)}
        self._merged = {self._indexes[n] for n in image.merged}
        self._table = image.table
        self._fresh, self._replaced, self._more = {}, {}, {}
        for record in image.more:
            self._more.setdefault(record[:32], []).append(record)
        self._links = {}
        for raw, pack_no, bases in image.links:
            self._links.setdefault(raw, {})[pack_no] = bases

    def _damaged(self) -> None:
        """Drop everything the cache gave: the next refresh fetches every index object."""
        self._clear()
        if self.on_damage is not None:
            self.on_damage()

    def __len__(self) -> int:
        return self._table.count + len(self._fresh)

    def __contains__(self, blob_id: Digest) -> bool:
        return self.has(blob_id.raw)

    def has(self, raw: bytes) -> bool:
        """Whether the blob of id ``raw`` (32 bytes) is indexed: ``in`` without making a
        :class:`Digest` or copying its record (a re-log asks this once per file)."""
        if raw in self._replaced or raw in self._fresh:
            return True
        try:
            return self._table.find(raw) is not None
        except CacheDamagedError:
            self._damaged()
            return self._first(raw) is not None

    def missing(self, raws: Sequence[bytes]) -> list[bytes]:
        """The ids of ``raws`` (32 bytes each) not indexed, in their order: :meth:`has`
        of each in one loop."""
        replaced, fresh = self._replaced, self._fresh
        try:
            return [raw for raw in self._table.missing(raws)
                    if raw not in replaced and raw not in fresh]
        except CacheDamagedError:
            self._damaged()
            return [raw for raw in raws if self._first(raw) is None]

    @property
    def merged_ids(self) -> frozenset[Digest]:
        return frozenset(self._merged)

    @property
    def packs(self) -> tuple[Digest, ...]:
        """Packs some merged index object lists."""
        try:
            self._fold()
            used = set(self._table.column(32, 4))
        except CacheDamagedError:
            self._damaged()
            self._fold()
            used = set(self._table.column(32, 4))
        return tuple(p for n, p in enumerate(self._packs) if n in used)

    def _first(self, raw: bytes) -> bytes | None:
        """The record of a blob's first row, or None. Raises CacheDamagedError."""
        record = self._replaced.get(raw) or self._fresh.get(raw)
        if record is None:
            number = self._table.find(raw)
            if number is not None:
                record = self._table.record(number)
        return record

    def lookup(self, blob_id: Digest) -> BlobLocation | None:
        try:
            raw = blob_id.raw
            if not self._replaced and not self._fresh:  # a restore's case: the table only
                number = self._table.find(raw)
                return None if number is None else self._location(self._table.record(number))
            record = self._first(raw)
            return None if record is None else self._location(record)
        except CacheDamagedError:
            self._damaged()
            record = self._first(blob_id.raw)
            return None if record is None else self._location(record)

    def bases(self, blob_id: Digest, location: BlobLocation) -> tuple[Digest, ...]:
        """The bases of the delta copy of ``blob_id`` at ``location`` (a location of kind
        ``CHUNK_DELTA`` this index gave); () when the index has no links for it."""
        pack_no = self._pack_no.get(location.pack)
        named = self._links.get(blob_id.raw, {}).get(pack_no, ()) if pack_no is not None \
            else ()
        return tuple(Digest(b) for b in named)

    def has_deltas(self) -> bool:
        """Whether any delta copy is indexed (a commit check then checks bases too)."""
        return bool(self._links)

    def is_delta(self, raw: bytes) -> bool:
        """Whether some indexed copy of blob ``raw`` is a delta."""
        return raw in self._links

    def all_bases(self, raw: bytes) -> set[bytes]:
        """The bases of every delta copy of blob ``raw`` (ids, 32 bytes each)."""
        return {b for named in self._links.get(raw, {}).values() for b in named}

    def _location(self, record: bytes) -> BlobLocation:
        _, pack_no, offset, length, raw_length, kind, index_no = _RECORD.unpack(record)
        if pack_no >= len(self._packs) or index_no >= len(self._indexes):
            raise CacheDamagedError("a row of the index cache names no pack or index")
        known = KIND_OF.get(kind)  # not Kind(kind): an enum call per blob of a restore
        if known is None:
            raise CacheDamagedError("a row of the index cache has an unknown kind")
        return BlobLocation(self._packs[pack_no], known, offset, length, raw_length)

    def add_pack(
        self, pack_id: Digest, entries: Iterable[BlobEntry], *, index_id: Digest,
        prefer: bool = False,
    ) -> None:
        """Add a pack's blobs as listed by ``index_id``; a blob already located keeps
        its location unless ``prefer`` (a pack this client just wrote: the freshest),
        except that a full copy is always preferred to a delta copy."""
        entries = list(entries)
        rows = [(e.id.raw, int(e.kind), e.offset, e.length, e.raw_length) for e in entries]
        links = {e.id.raw: tuple(b.raw for b in e.bases) for e in entries if e.bases}
        try:
            self._add_pack(pack_id, rows, index_id, prefer, links)
        except CacheDamagedError:
            self._damaged()
            self._add_pack(pack_id, rows, index_id, prefer, links)

    def _add_pack(self, pack_id: Digest, rows: list[tuple[bytes, int, int, int, int]],
                  index_id: Digest, prefer: bool,
                  links: dict[bytes, tuple[bytes, ...]]) -> None:
        """Rows ``(id, kind, offset, length, raw_length)`` (checked) of one pack, and
        its links (delta -> bases)."""
        pack_no = self._pack_no.get(pack_id)
        if pack_no is None:
            pack_no = self._pack_no[pack_id] = len(self._packs)
            self._packs.append(pack_id)
        index_no = self._index_no.get(index_id)
        if index_no is None:
            index_no = self._index_no[index_id] = len(self._indexes)
            self._indexes.append(index_id)
        for raw, bases in links.items():
            self._links.setdefault(raw, {})[pack_no] = bases
        fresh, replaced, more, first = self._fresh, self._replaced, self._more, self._first
        pack = _RECORD.pack
        for raw, kind, offset, length, raw_length in rows:
            record = pack(raw, pack_no, offset, length, raw_length, kind, index_no)
            old = first(raw)
            if old is None:
                fresh[raw] = record
                if len(fresh) >= _FOLD:
                    self._fold()
                    fresh, replaced = self._fresh, self._replaced
            elif old != record:
                if old[_KIND_AT] == _DELTA or kind == _DELTA:  # a full copy goes first
                    take = old[_KIND_AT] == _DELTA and (kind != _DELTA or prefer)
                else:
                    take = prefer
                if take:
                    if raw in fresh:
                        fresh[raw] = record
                    else:
                        replaced[raw] = record
                    record = old
                more.setdefault(raw, []).append(record)

    def _fold(self) -> None:
        """Merge the rows added since into a new in-memory table."""
        if not self._fresh and not self._replaced:
            return
        self._table = merge_table(self._table, self._fresh.values(), self._replaced.values())
        self._fresh, self._replaced = {}, {}

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
        try:
            return self._refresh(listed_set, fetch_many)
        except CacheDamagedError:
            self._clear()  # and merge every listed object again
            return self._refresh(listed_set, fetch_many)

    def _refresh(
        self, listed_set: set[Digest],
        fetch_many: Callable[[list[Digest]], Iterable[tuple[Digest, bytes | None]]],
    ) -> tuple[int, int]:
        gone = self._merged - listed_set
        if gone:
            self._forget(gone)
        missing = sorted(listed_set - self._merged)
        skipped = 0
        for index_id, data in fetch_many(missing):
            if data is None:
                skipped += 1
                continue
            what = f"index object {index_id.hex}"
            for pack_id, rows, links in _index_rows(index_id, data, self.keys, what):
                self._add_pack(pack_id, rows, index_id, False, links)
            self._merged.add(index_id)
        if missing or gone:
            self._save_cache()
        return len(missing) - skipped, skipped

    def _forget(self, gone: set[Digest]) -> None:
        """Drop every row the index objects ``gone`` listed (a blob's next row, if
        any, becomes its first). Rebuilds the table: gc sweeps are rare."""
        numbers = {self._index_no[i] for i in gone if i in self._index_no}
        if not numbers:
            self._merged -= gone
            return
        self._fold()
        table = self._table
        dropped = [n for n, owner in enumerate(table.column(53, 4)) if owner in numbers]
        dropped_ids = {table.record(n)[:32] for n in dropped}
        promoted: list[bytes] = []
        for raw, rows in list(self._more.items()):
            kept = [r for r in rows if _RECORD.unpack(r)[6] not in numbers]
            if kept and raw in dropped_ids:
                # a full copy before a delta copy (the reader's rule)
                at = next((n for n, r in enumerate(kept) if r[_KIND_AT] != _DELTA), 0)
                promoted.append(kept.pop(at))
            if kept:
                self._more[raw] = kept
            else:
                del self._more[raw]
        if dropped:
            pieces, done = [], 0
            for number in dropped:
                pieces.append(table.span(done, number))
                done = number + 1
            pieces.append(table.span(done, table.count))
            self._table = merge_table(Table.build(bytearray(b"".join(pieces))), promoted, ())
        self._merged -= gone
        self._prune_links()

    def _prune_links(self) -> None:
        """Forget the links of delta copies no row lists any more (a sweep dropped them:
        a commit check must not ask for their bases)."""
        for raw, by_pack in list(self._links.items()):
            first = self._first(raw)
            rows = ([first] if first is not None else []) + self._more.get(raw, [])
            packs = {_RECORD.unpack(r)[1] for r in rows if r[_KIND_AT] == _DELTA}
            kept = {n: bases for n, bases in by_pack.items() if n in packs}
            if kept:
                self._links[raw] = kept
            else:
                del self._links[raw]

    def note_written(self, index_id: Digest) -> None:
        """Record an index object this client wrote (its packs are already added)."""
        self._merged.add(index_id)

    def save(self) -> None:
        try:
            self._save_cache()
        except CacheDamagedError:
            self._damaged()
            self._save_cache()

    def _save_cache(self) -> None:
        if self._cache_path is None:
            return
        self._fold()
        image = CacheImage(
            packs=[p.raw for p in self._packs],
            indexes=[i.raw for i in self._indexes],
            merged=[self._index_no[i] for i in self._merged],
            table=self._table,
            more=[r for rows in self._more.values() for r in rows],
            links=[(raw, pack_no, bases) for raw, by_pack in self._links.items()
                   for pack_no, bases in by_pack.items()],
        )
        try:
            written = write_cache(self._cache_path, image, root=self._cache_root)
        except OSError:
            # A cache that cannot be written only costs refetching next time.
            return
        self._table = written.table  # the file, as read back: the folded copy is freed
