"""Unit tests of objects/sweep.py: the layout of a domain, condemning, sweeping (design §15).

One object store on a memory backend; each flush writes one pack and one index
object, so a test lays packs out exactly as it needs them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from artifactstore.backends import drop_memory_store, open_backend
from artifactstore.core.digest import Digest
from artifactstore.core.errors import NotFoundError
from artifactstore.core.synthetic import random_bytes
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Kind
from artifactstore.objects.gcrecords import Condemnation, condemnations
from artifactstore.objects.layout import index_key, index_prefix, pack_key, pack_prefix
from artifactstore.objects.store import ObjectStore
from artifactstore.objects.sweep import (
    IndexCache,
    SweepResult,
    blobs_by_pack,
    condemn,
    read_layout,
    sweep,
)


@pytest.fixture
def objects() -> Iterator[ObjectStore]:
    name = f"sweep-{uuid.uuid4().hex[:10]}"
    store = ObjectStore.open(open_backend(f"memory://{name}"), create=StoreConfig.new())
    yield store
    store.close()
    drop_memory_store(name)


def pack_of(objects: ObjectStore, *sizes: int, seed: int = 0) -> list[Digest]:
    """Write one pack holding blobs of ``sizes`` bytes; their ids, in order."""
    ids = [objects.put_blob(Kind.CHUNK, random_bytes(size, seed=seed * 100 + i))
           for i, size in enumerate(sizes)]
    objects.flush()
    return ids


def raws(ids: list[Digest]) -> set[bytes]:
    return {i.raw for i in ids}


def keys(objects: ObjectStore, prefix: str = "") -> set[str]:
    return set(objects.backend.list(prefix))


def readable(objects: ObjectStore, blob: Digest) -> bool:
    objects.refresh_index()
    try:
        objects.read_blob(blob)
    except NotFoundError:
        return False
    return True


# -- read_layout -------------------------------------------------------------------------


def test_the_layout_of_an_empty_domain_is_empty(objects: ObjectStore) -> None:
    layout = read_layout(objects)
    assert (layout.indexes, layout.packs, layout.listed, layout.orphans) == ({}, {}, set(), set())


def test_layout_lists_packs_index_objects_and_orphans(objects: ObjectStore) -> None:
    first = pack_of(objects, 100, 200, seed=1)
    second = pack_of(objects, 300, seed=2)
    layout = read_layout(objects)
    assert len(layout.indexes) == 2
    assert len(layout.packs) == len(layout.listed) == 2
    assert layout.orphans == set()
    by_pack = blobs_by_pack(layout, raws(first + second))
    assert sorted(map(len, by_pack.values())) == [1, 2]
    assert blobs_by_pack(layout, [b"\x00" * 32]) == {}
    # an index object lost: its pack is an orphan, still listed on the backend
    (orphan,) = [p for p, blobs in by_pack.items() if blobs == raws(second)]
    (gone,) = [i for i, packs in layout.indexes.items() if packs[0][0] == orphan]
    objects.backend.delete(index_key(objects.domain, gone))
    later = read_layout(objects)
    assert later.orphans == {orphan}
    assert orphan in later.listed
    assert orphan not in later.packs


def test_layout_takes_index_objects_from_the_cache(objects: ObjectStore) -> None:
    pack_of(objects, 100)
    cache: IndexCache = {}
    layout = read_layout(objects, cache)
    assert set(cache) == set(layout.indexes)
    (index_id,) = cache
    cache[index_id] = []  # a cached object is never fetched again (index objects are immutable)
    assert read_layout(objects, cache).packs == {}
    assert read_layout(objects).packs == layout.packs  # without the cache: fetched


# -- condemn ---------------------------------------------------------------------------


def test_nothing_to_condemn_when_everything_is_live(objects: ObjectStore) -> None:
    ids = pack_of(objects, 100, 200)
    found = condemn(objects, raws(ids), [])
    assert (found.record, found.blobs, found.bytes, found.orphan_packs) == (None, 0, 0, 0)
    assert keys(objects, "gc/") == set()
    empty = ObjectStore.open(open_backend(f"memory://sweep-empty-{uuid.uuid4().hex}"),
                             create=StoreConfig.new())
    assert condemn(empty, set(), []).record is None  # an empty domain


def test_condemn_records_dead_blobs_by_pack_once(objects: ObjectStore) -> None:
    live = pack_of(objects, 100, 200, seed=1)
    dead = pack_of(objects, 300, 400, seed=2)
    found = condemn(objects, raws(live) | {dead[0].raw}, [])
    assert found.record is not None
    assert (found.blobs, found.orphan_packs) == (1, 0)
    assert found.bytes >= 400  # envelope bytes, header included
    assert list(found.record.packs.values()) == [frozenset({dead[1].raw})]
    assert condemnations(objects.backend, objects.domain) == [found.record]
    # already condemned by a pending record: not condemned again
    again = condemn(objects, raws(live) | {dead[0].raw}, [found.record])
    assert (again.record, again.blobs) == (None, 0)


def test_a_dry_run_counts_and_writes_nothing(objects: ObjectStore) -> None:
    pack_of(objects, 500)
    before = keys(objects)
    found = condemn(objects, set(), [], dry_run=True)
    assert (found.record, found.blobs) == (None, 1)
    assert found.bytes >= 500
    assert keys(objects) == before


def test_only_limits_what_is_condemned_and_a_purge_ignores_pending(objects: ObjectStore) -> None:
    ids = pack_of(objects, 100, 200, 300)
    first = condemn(objects, set(), [], only=frozenset({ids[0].raw}))
    assert first.record is not None
    assert set().union(*first.record.packs.values()) == {ids[0].raw}
    assert not first.record.purge
    purged = condemn(objects, set(), [first.record], only=frozenset({ids[0].raw}), purge=True)
    assert purged.record is not None
    assert purged.record.purge
    assert purged.blobs == 1


def test_orphan_packs_are_condemned_with_no_blob_list(objects: ObjectStore) -> None:
    pack_of(objects, 100, seed=1)
    layout = read_layout(objects)
    ((index_id, [(pack, _)]),) = layout.indexes.items()
    objects.backend.delete(index_key(objects.domain, index_id))
    assert condemn(objects, set(), [], only=frozenset()).record is None  # not with only
    found = condemn(objects, set(), [])
    assert found.record is not None
    assert (found.orphan_packs, found.blobs) == (1, 0)
    assert found.record.packs == {pack: frozenset()}
    assert found.record.condemns(pack, b"any blob")
    assert condemn(objects, set(), [found.record]).record is None  # pending: once


# -- sweep -------------------------------------------------------------------------------


def test_sweeping_no_record_does_nothing(objects: ObjectStore) -> None:
    pack_of(objects, 100)
    before = keys(objects)
    assert sweep(objects, set(), []) == SweepResult()
    assert keys(objects) == before


def test_a_pack_whose_blobs_are_all_dead_is_deleted(objects: ObjectStore) -> None:
    live = pack_of(objects, 100, seed=1)
    dead = pack_of(objects, 200, 300, seed=2)
    found = condemn(objects, raws(live), [])
    assert found.record is not None
    packs_before = keys(objects, pack_prefix(objects.domain))
    result = sweep(objects, raws(live), [found.record])
    assert (result.packs_deleted, result.packs_repacked, result.blobs_deleted) == (1, 0, 2)
    assert result.dropped == raws(dead)
    assert result.bytes_freed == found.bytes
    assert len(keys(objects, pack_prefix(objects.domain))) == len(packs_before) - 1
    assert condemnations(objects.backend, objects.domain) == []  # the record is done
    assert readable(objects, live[0])
    assert not readable(objects, dead[0])
    assert read_layout(objects).orphans == set()


@pytest.mark.parametrize(("threshold", "repacked"), [(0.9, False), (0.3, True), (0.0, True)])
def test_a_partly_live_pack_is_repacked_past_the_threshold(
        objects: ObjectStore, threshold: float, repacked: bool) -> None:
    keep, drop = pack_of(objects, 3000, 2000)  # 40% of the pack's bytes are dead
    found = condemn(objects, {keep.raw}, [])
    assert found.record is not None
    layout = read_layout(objects)
    copied: list[int] = []
    result = sweep(objects, {keep.raw}, [found.record], repack_threshold=threshold,
                   progress=copied.append)
    assert readable(objects, keep)
    assert condemnations(objects.backend, objects.domain) == []
    if not repacked:  # not worth rewriting yet: nothing moves, a later gc condemns again
        assert result == SweepResult()
        assert read_layout(objects).packs == layout.packs
        assert readable(objects, drop)
        assert condemn(objects, {keep.raw}, []).blobs == 1
        return
    assert (result.packs_repacked, result.packs_deleted, result.blobs_deleted) == (1, 1, 1)
    assert result.index_objects_rewritten == 0  # its index object listed that pack alone
    assert sum(copied) >= 3000  # the live blob was copied
    assert not readable(objects, drop)
    after = read_layout(objects)
    assert set(after.packs).isdisjoint(layout.packs)  # a new pack, a new index object
    assert set(after.indexes).isdisjoint(layout.indexes)


def test_a_purge_record_rewrites_any_pack_holding_its_blobs(objects: ObjectStore) -> None:
    keep, drop = pack_of(objects, 9000, 100)  # ~1% dead: far under any threshold
    found = condemn(objects, {keep.raw}, [], only=frozenset({drop.raw}), purge=True)
    assert found.record is not None
    result = sweep(objects, {keep.raw}, [found.record], repack_threshold=1.0)
    assert (result.packs_repacked, result.blobs_deleted) == (1, 1)
    assert readable(objects, keep)
    assert not readable(objects, drop)


def test_a_condemned_blob_live_again_is_kept(objects: ObjectStore) -> None:
    """A concurrent commit named the blob after it was condemned: the sweep's fresh
    mark has it, so it stays (the rest of its pack goes)."""
    revived, dead = pack_of(objects, 1000, 1000)
    found = condemn(objects, set(), [])
    assert found.record is not None
    assert found.blobs == 2
    result = sweep(objects, {revived.raw}, [found.record], repack_threshold=0.0)
    assert result.dropped == {dead.raw}
    assert readable(objects, revived)
    assert not readable(objects, dead)
    both = sweep(objects, raws([revived, dead]), [found.record])  # all live: nothing to do
    assert (both.blobs_deleted, both.packs_deleted) == (0, 0)


def test_an_orphan_is_deleted_unless_a_commit_names_it_by_then(objects: ObjectStore) -> None:
    """An orphan's condemnation covers its whole pack: a slow writer that indexes it and
    commits a version naming its blob before the sweep keeps it; the other goes."""
    pack_of(objects, 100, seed=1)
    (late_blob,) = pack_of(objects, 100, seed=2)
    layout = read_layout(objects)
    (_, second_index) = layout.indexes
    saved = objects.backend.get(index_key(objects.domain, second_index))
    for index_id in layout.indexes:
        objects.backend.delete(index_key(objects.domain, index_id))
    found = condemn(objects, set(), [])
    assert found.record is not None
    assert found.orphan_packs == 2
    objects.backend.put(index_key(objects.domain, second_index), saved)
    indexed = layout.indexes[second_index][0][0]
    result = sweep(objects, {late_blob.raw}, [found.record])
    assert result.packs_deleted == 1
    assert keys(objects, pack_prefix(objects.domain)) == {pack_key(objects.domain, indexed)}
    assert readable(objects, late_blob)


def test_an_indexed_pack_missing_from_the_backend_is_left_to_verify(
        objects: ObjectStore) -> None:
    (blob,) = pack_of(objects, 100)
    (pack,) = read_layout(objects).packs
    objects.backend.delete(pack_key(objects.domain, pack))
    found = condemn(objects, set(), [])
    assert found.record is not None
    indexes = keys(objects, index_prefix(objects.domain))
    result = sweep(objects, set(), [found.record])
    assert (result.packs_deleted, result.blobs_deleted) == (0, 0)
    assert keys(objects, index_prefix(objects.domain)) == indexes  # untouched
    assert blob.raw not in result.dropped


def test_sweep_takes_the_records_it_is_given_only(objects: ObjectStore) -> None:
    pack_of(objects, 100, seed=1)
    first = condemn(objects, set(), []).record
    pack_of(objects, 100, seed=2)
    assert first is not None
    second = condemn(objects, set(), [first]).record
    assert isinstance(second, Condemnation)
    result = sweep(objects, set(), [first])
    assert result.packs_deleted == 1
    assert condemnations(objects.backend, objects.domain) == [second]
