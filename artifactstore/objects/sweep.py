"""Condemning and sweeping the blobs of one key domain (docs/design.md §15).

Vocabulary: the **live set** is every blob id some live version names (the
caller marks it); **condemning** records the blobs outside it (and *orphan*
packs no index lists) in a condemnation; **sweeping** a condemnation, no
sooner than the store's commit window (and the grace period) after it, drops
what is still outside a freshly marked live set: a pack whose blobs are all
dead is deleted, one whose dead share passes the repack threshold is
*repacked* (its live blobs copied into new packs), then the index objects that
listed the dropped packs are rewritten, then the old index objects and packs
are deleted, then the condemnation. Every step leaves the store readable: new
packs and index objects land before old ones go, and readers that held an old
location refresh their index and retry.

Delta chunks (objects/deltas.py): the live set is *closed over links*: the bases of
every delta copy of a live blob are live too. A condemned delta copy of a live blob
that also has a full copy in another pack is dropped (a purge rewrites the deltas of
the bases it wipes as full chunks first, design §16), and keeps nothing live.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from artifactstore.backends.base import Backend
from artifactstore.core.digest import Digest
from artifactstore.core.errors import NotFoundError
from artifactstore.objects.envelope import Kind
from artifactstore.objects.gcrecords import Condemnation, write_condemnation
from artifactstore.objects.index import BlobLocation, decode_index, encode_indexes
from artifactstore.objects.layout import (
    index_key,
    index_prefix,
    pack_key,
    pack_prefix,
    parse_id_key,
)
from artifactstore.objects.packs import BlobEntry
from artifactstore.objects.store import ObjectStore, Progress

__all__ = [
    "DomainLayout", "IndexCache", "SweepResult", "close_over_links", "condemn", "read_layout",
    "rewrite_dependants", "sweep",
]  # fmt: skip

@dataclass
class DomainLayout:
    """The packs and index objects of a domain, read fresh from the backend."""

    #: index object -> the packs it lists, with their entries
    indexes: dict[Digest, list[tuple[Digest, list[BlobEntry]]]] = field(default_factory=dict)
    #: pack -> entries (the union over index objects)
    packs: dict[Digest, list[BlobEntry]] = field(default_factory=dict)
    #: packs present on the backend
    listed: set[Digest] = field(default_factory=set)

    @property
    def orphans(self) -> set[Digest]:
        """Packs no index object lists (an interrupted write, or a crashed sweep)."""
        return self.listed - set(self.packs)


IndexCache = dict[Digest, list[tuple[Digest, list[BlobEntry]]]]


def read_layout(objects: ObjectStore, cache: IndexCache | None = None) -> DomainLayout:
    """The domain as listed now; index objects already in ``cache`` are not fetched
    again (they are immutable), new ones are added to it."""
    backend = objects.backend
    layout = DomainLayout()
    cache = {} if cache is None else cache
    ids = [i for i in map(parse_id_key, backend.list(index_prefix(objects.domain)))
           if i is not None]
    missing = [i for i in ids if i not in cache]
    keys = [index_key(objects.domain, i) for i in missing]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="artifactstore-gc") as pool:
        for index_id, data in zip(missing, pool.map(_get_or_none(backend), keys), strict=True):
            if data is not None:  # None: rewritten by a sweep that just finished
                cache[index_id] = decode_index(index_id, data, objects.keys)
    for index_id in ids:
        packs = cache.get(index_id)
        if packs is None:
            continue
        layout.indexes[index_id] = packs
        for pack_id, entries in packs:
            known = layout.packs.setdefault(pack_id, [])
            seen = {e.id.raw for e in known}
            known.extend(e for e in entries if e.id.raw not in seen)
    layout.listed = {p for p in map(parse_id_key, backend.list(pack_prefix(objects.domain)))
                     if p is not None}
    return layout


def close_over_links(live: frozenset[bytes] | set[bytes], layout: DomainLayout,
                     dropped: Callable[[Digest, BlobEntry], bool] | None = None) -> set[bytes]:
    """``live`` with the bases of every delta copy of a live blob (design §15), except
    the copies ``dropped`` says go (condemned deltas with a full copy elsewhere)."""
    closed = set(live)
    deltas = [(p, e) for p, entries in layout.packs.items() for e in entries if e.bases]
    grew = bool(deltas)
    while grew:  # a base may itself have a delta copy elsewhere: to a fixed point
        grew = False
        for pack_id, e in deltas:
            if e.id.raw in closed and (dropped is None or not dropped(pack_id, e)):
                for base in e.bases:
                    if base.raw not in closed:
                        closed.add(base.raw)
                        grew = True
    return closed


def rewrite_dependants(objects: ObjectStore, purged: set[bytes], live: set[bytes],
                       ) -> dict[Digest, set[bytes]]:
    """Before a purge wipes ``purged``: every delta copy with a purged base (design §16)
    is returned (pack -> blob ids) for the purge's condemnation, and the blobs of those
    that ``live`` names and that have no full copy are first stored again as full
    chunks (read through their delta while the bases still exist, then flushed)."""
    layout = read_layout(objects)
    full = {e.id.raw for entries in layout.packs.values() for e in entries
            if e.kind is not Kind.CHUNK_DELTA}
    copies: dict[Digest, set[bytes]] = {}
    for pack_id, entries in layout.packs.items():
        for e in entries:
            if not e.bases or e.id.raw in purged or purged.isdisjoint(b.raw for b in e.bases):
                continue
            copies.setdefault(pack_id, set()).add(e.id.raw)
            if e.id.raw in live and e.id.raw not in full:
                objects.store_full(e.id, objects.read_blob(e.id))
                full.add(e.id.raw)
    objects.flush()
    return copies


@dataclass
class CondemnResult:
    record: Condemnation | None = None
    blobs: int = 0
    bytes: int = 0
    orphan_packs: int = 0


def condemn(
    objects: ObjectStore, live: frozenset[bytes] | set[bytes], pending: Iterable[Condemnation],
    *, dry_run: bool = False, only: frozenset[bytes] | None = None, purge: bool = False,
    cache: IndexCache | None = None, close: bool = True,
    copies: Mapping[Digest, set[bytes]] | None = None,
) -> CondemnResult:
    """Condemn every blob outside ``live`` not condemned yet (with ``only``: just those).

    ``live`` is closed over links unless ``close`` is False (a purge: the blobs it wipes
    are what no live version names, whatever deltas use them as bases). ``copies``
    (pack -> blob ids): copies condemned as well though their blobs are live (a purge's
    delta copies whose bases it wipes, rewritten as full chunks)."""
    layout = read_layout(objects, cache)
    if close:
        live = close_over_links(live, layout)
    earlier = list(pending)
    found: dict[Digest, frozenset[bytes]] = {}
    result = CondemnResult()
    for pack_id, entries in layout.packs.items():
        dead = {
            e.id.raw: e.length for e in entries
            if e.id.raw not in live and (only is None or e.id.raw in only)
            and (purge or not any(r.condemns(pack_id, e.id.raw) for r in earlier))
        }  # fmt: skip
        for e in entries:
            if copies is not None and e.id.raw in copies.get(pack_id, ()):
                dead[e.id.raw] = e.length
        if dead:
            found[pack_id] = frozenset(dead)
            result.blobs += len(dead)
            result.bytes += sum(dead.values())
    if only is None:
        for pack_id in layout.orphans:
            if not any(r.condemns(pack_id, b"") for r in earlier):
                found[pack_id] = frozenset()
                result.orphan_packs += 1
    if found and not dry_run:
        result.record = write_condemnation(objects.backend, objects.domain, found, purge=purge)
    return result


@dataclass
class SweepResult:
    packs_deleted: int = 0
    packs_repacked: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    index_objects_rewritten: int = 0
    #: blob ids dropped from the domain
    dropped: set[bytes] = field(default_factory=set)


def sweep(
    objects: ObjectStore, live: frozenset[bytes] | set[bytes], records: list[Condemnation],
    *, repack_threshold: float = 0.3, progress: Progress | None = None,
    cache: IndexCache | None = None,
) -> SweepResult:
    """Drop what ``records`` condemned and ``live`` still does not name (see the module)."""
    result = SweepResult()
    if not records:
        return result
    layout = read_layout(objects, cache)
    purge = any(r.purge for r in records)
    threshold = 0.0 if purge else repack_threshold
    full: dict[bytes, set[Digest]] = {}  # blob -> packs holding a full copy
    for pack_id, entries in layout.packs.items():
        if pack_id in layout.listed:
            for e in entries:
                if e.kind is not Kind.CHUNK_DELTA:
                    full.setdefault(e.id.raw, set()).add(pack_id)

    def superseded(pack_id: Digest, e: BlobEntry) -> bool:
        """A condemned delta copy whose blob has a full copy in another pack."""
        return (bool(e.bases) and bool(full.get(e.id.raw, set()) - {pack_id})
                and any(r.condemns(pack_id, e.id.raw) for r in records))

    live = close_over_links(live, layout, superseded)
    drop: set[Digest] = set()
    keep: dict[Digest, list[BlobEntry]] = {}
    for pack_id, entries in layout.packs.items():
        if pack_id not in layout.listed:
            continue  # indexed but missing: damage for verify, nothing to free
        dead = [e for e in entries
                if (e.id.raw not in live and any(r.condemns(pack_id, e.id.raw) for r in records))
                or superseded(pack_id, e)]
        if not dead:
            continue
        total = sum(e.length for e in entries)
        dead_bytes = sum(e.length for e in dead)
        if len(dead) < len(entries) and dead_bytes < threshold * total:
            continue  # not worth rewriting yet; a later gc condemns the rest again
        dead_ids = {e.id.raw for e in dead}
        drop.add(pack_id)
        keep[pack_id] = [e for e in entries if e.id.raw not in dead_ids]
        result.blobs_deleted += len(dead)
        result.bytes_freed += dead_bytes
        result.dropped |= {raw for raw in dead_ids if raw not in live}
    orphans = {p for r in records for p, blobs in r.packs.items()
               if not blobs and p in layout.orphans}
    # 1. live blobs of packs being dropped go to new packs (and their index objects)
    for pack_id, entries in keep.items():
        if entries:
            result.packs_repacked += 1
        for e in entries:
            objects.copy_blob(e.id, BlobLocation(pack_id, e.kind, e.offset, e.length,
                                                 e.raw_length), e.bases)
            if progress is not None:
                progress(e.length)
    objects.flush()
    # 2. index objects that list a dropped pack are replaced, then removed
    affected = [i for i, packs in layout.indexes.items() if any(p in drop for p, _ in packs)]
    remaining = [(p, tuple(entries)) for i in affected for p, entries in layout.indexes[i]
                 if p not in drop]
    for index_id, data in encode_indexes(remaining, objects.config.compression, objects.keys):
        objects.backend.put(index_key(objects.domain, index_id), data)
        result.index_objects_rewritten += 1
    for index_id in affected:
        _delete(objects, index_key(objects.domain, index_id))
    # 3. then the packs, 4. then the records
    for pack_id in drop | orphans:
        _delete(objects, pack_key(objects.domain, pack_id))
        result.packs_deleted += 1
    for record in records:
        _delete(objects, record.key)
    objects.refresh_index()
    return result


def _get_or_none(backend: Backend) -> Callable[[str], bytes | None]:
    def get(key: str) -> bytes | None:
        try:
            return backend.get(key)
        except NotFoundError:
            return None
    return get


def _delete(objects: ObjectStore, key: str) -> None:
    with contextlib.suppress(NotFoundError):
        objects.backend.delete(key)


def blobs_by_pack(layout: DomainLayout, ids: Iterable[bytes]) -> Mapping[Digest, set[bytes]]:
    wanted = set(ids)
    found: dict[Digest, set[bytes]] = {}
    for pack_id, entries in layout.packs.items():
        for e in entries:
            if e.id.raw in wanted:
                found.setdefault(pack_id, set()).add(e.id.raw)
    return found
