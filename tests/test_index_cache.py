"""The merged index as sorted records (objects/index.py, objects/indexcache.py): the
same answers as a dict of rows through adds, preferred adds, folds, forgets and cache
reloads; a damaged, truncated or older cache file is never trusted, only rebuilt."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactstore.backends import open_backend
from artifactstore.backends.base import Backend
from artifactstore.core import encoding
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.objects import index as index_module
from artifactstore.objects import indexcache
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Kind
from artifactstore.objects.index import MergedIndex
from artifactstore.objects.indexcache import CACHE_VERSION, RECORD, load_cache
from artifactstore.objects.packs import BlobEntry
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.data import random_bytes

# A model of the merged index: blob -> its rows, the first one the blob's location.
Row = tuple[int, int, int, int]  # pack, offset, length, index
Model = dict[bytes, list[Row]]
# The operations OP draws: add (pack, index, prefer, [(blob, offset)]), forget (index), reload.
AddOp = tuple[Literal["add"], int, int, bool, list[tuple[bytes, int]]]
Op = AddOp | tuple[Literal["forget"], int] | tuple[Literal["reload"]]

POOL = [bytes([i % 3, i % 2]) + hash_bytes(bytes([i])).raw[2:] for i in range(24)]
PACKS = [hash_bytes(b"pack %d" % i) for i in range(4)]
INDEXES = [hash_bytes(b"index %d" % i) for i in range(5)]


def model_add(model: Model, rows: list[tuple[bytes, Row]], prefer: bool) -> None:
    for raw, row in rows:
        held = model.get(raw)
        if held is None:
            model[raw] = [row]
        elif held[0] != row:
            if prefer:
                held.append(held[0])
                held[0] = row
            else:
                held.append(row)


def model_forget(model: Model, index_no: int) -> None:
    for raw in list(model):
        kept = [r for r in model[raw] if r[3] != index_no]
        if kept:
            model[raw] = kept
        else:
            del model[raw]


def check(index: MergedIndex, model: Model) -> None:
    assert len(index) == len(model)
    for raw in POOL:
        found = index.lookup(Digest(raw))
        held = model.get(raw)
        assert (Digest(raw) in index) == (held is not None)
        if held is None:
            assert found is None
        else:
            pack, offset, length, _ = held[0]
            assert found is not None
            assert (found.pack, found.offset, found.length) == (PACKS[pack], offset, length)
    assert set(index.packs) == {PACKS[rows[0][0]] for rows in model.values()}
    assert index.missing(POOL) == [raw for raw in POOL if raw not in model]  # one loop


ADD = st.tuples(
    st.just("add"), st.integers(0, 3), st.integers(0, 4), st.booleans(),
    st.lists(st.tuples(st.sampled_from(POOL), st.integers(0, 3)), max_size=12),
)
OP = st.one_of(ADD, st.tuples(st.just("forget"), st.integers(0, 4)), st.just(("reload",)))


@settings(max_examples=80, deadline=None)
@given(st.lists(OP, max_size=25), st.integers(2, 6))
def test_same_answers_as_a_dict_of_rows(tmp_path_factory: pytest.TempPathFactory,
                                        ops: list[Op], fold: int) -> None:
    path = tmp_path_factory.mktemp("idx") / "plain.idx"
    saved_fold = index_module._FOLD
    index_module._FOLD = fold  # fold into a new table every few rows
    try:
        index = MergedIndex(path)
        model: Model = {}
        merged: set[int] = set()
        for op in ops:
            if op[0] == "add":
                _, pack, index_no, prefer, picks = op
                rows = [(raw, (pack, 100 * offset, 10 + offset, index_no))
                        for raw, offset in picks]
                entries = [BlobEntry(Digest(raw), Kind.CHUNK, row[1], row[2], row[2])
                           for raw, row in rows]
                index.add_pack(PACKS[pack], entries,
                               index_id=INDEXES[index_no], prefer=bool(prefer))
                index.note_written(INDEXES[index_no])
                model_add(model, rows, bool(prefer))
                merged.add(index_no)
            elif op[0] == "forget":
                gone = op[1]
                listed = [INDEXES[n] for n in merged if n != gone]
                index.refresh(listed, lambda ids: iter(()))
                if gone in merged:
                    model_forget(model, gone)
                    merged.discard(gone)
            else:
                index.save()
                index = MergedIndex(path)
                assert index.merged_ids == {INDEXES[n] for n in merged}
            check(index, model)
    finally:
        index_module._FOLD = saved_fold


def _store_with_blobs(tmp_path: Path, count: int) -> tuple[Backend, list[Digest]]:
    backend = open_backend(str(tmp_path / "store"))
    with ObjectStore.open(backend, create=StoreConfig.new(),
                          cache_dir=tmp_path / "cache") as store:
        ids = [store.put_blob(Kind.TREE, random_bytes(40, seed=n)) for n in range(count)]
        store.flush()
    return backend, ids


def _cache_file(tmp_path: Path) -> Path:
    (found,) = (tmp_path / "cache").rglob("*.idx")
    return found


def _reopen(backend: Backend, tmp_path: Path) -> ObjectStore:
    return ObjectStore.open(backend, cache_dir=tmp_path / "cache")


def test_cache_file_is_the_sorted_table(tmp_path: Path) -> None:
    _, ids = _store_with_blobs(tmp_path, 3000)
    image = load_cache(_cache_file(tmp_path))
    assert image is not None
    assert image.table.count == 3000
    records = image.table.span(0, 3000)
    keys = [records[i:i + 32] for i in range(0, len(records), RECORD.size)]
    assert keys == sorted(d.raw for d in ids)


@pytest.fixture(params=["read", "mapped"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Cache files read whole (small) or memory-mapped (big, here forced)."""
    if request.param == "mapped":
        monkeypatch.setattr(indexcache, "_MAP_FROM", 0)
    return str(request.param)


def test_opening_fetches_nothing_and_finds_every_blob(tmp_path: Path, reading: str) -> None:
    backend, ids = _store_with_blobs(tmp_path, 3000)
    with _reopen(backend, tmp_path) as store:
        assert store.refresh_index() == 0
        for n, blob_id in enumerate(ids):
            assert store.read_blob(blob_id) == random_bytes(40, seed=n)
        assert hash_bytes(b"absent") not in store.index


@pytest.mark.parametrize("damage", ["truncate", "header", "meta", "records", "old"])
def test_damaged_or_older_cache_is_rebuilt(tmp_path: Path, damage: str, reading: str) -> None:
    backend, ids = _store_with_blobs(tmp_path, 3000)
    path = _cache_file(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "header":
        data[20] ^= 1
    elif damage == "meta":
        data[80] ^= 1
    elif damage == "records":
        data[-RECORD.size * 1500 + 40] ^= 0xFF  # an offset in a block in the middle
    else:  # the previous layout: a msgpack map of version 2
        data = bytearray(encoding.pack({"version": 2, "packs": [], "indexes": [],
                                        "merged": [], "records": b""}))
    path.write_bytes(bytes(data))
    with _reopen(backend, tmp_path) as store:
        for n, blob_id in enumerate(ids):
            assert store.read_blob(blob_id) == random_bytes(40, seed=n)
        assert len(store.index) == 3000
    image = load_cache(path)  # rewritten whole by the rebuild
    assert image is not None
    image.table.verify_all()
    assert image.table.count == 3000


def _lookup_each(store: ObjectStore, ids: list[Digest]) -> None:
    for n, blob_id in enumerate(ids):
        assert store.read_blob(blob_id) == random_bytes(40, seed=n)


def _lookup_batch(store: ObjectStore, ids: list[Digest]) -> None:
    unknown = hash_bytes(b"never stored").raw
    raws = [i.raw for i in ids]
    assert store.index.missing([*raws, unknown]) == [unknown]


@pytest.mark.parametrize("lookup", [_lookup_each, _lookup_batch], ids=["one", "batch"])
def test_damaged_block_found_by_a_lookup_refetches(
        tmp_path: Path, reading: str,
        lookup: Callable[[ObjectStore, list[Digest]], None]) -> None:
    backend, ids = _store_with_blobs(tmp_path, 3000)
    path = _cache_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[-RECORD.size * 10 + 40] ^= 0xFF  # the last block
    path.write_bytes(bytes(data))
    with _reopen(backend, tmp_path) as store:
        store.refresh_index()  # the file opened fine: only its header was checked
        fetched = []
        store.index.on_damage = lambda: fetched.append(store.refresh_index())
        lookup(store, ids)
        assert fetched == [1]  # one rebuild, from the store's one index object
        raws = [i.raw for i in ids]
        assert store.reuse_blobs(raws, 0)
        assert not store.reuse_blobs([*raws[:5], hash_bytes(b"never stored").raw], 0)


def test_cache_version_is_in_the_header(tmp_path: Path) -> None:
    _store_with_blobs(tmp_path, 10)
    magic, version = struct.unpack_from("<8sI", _cache_file(tmp_path).read_bytes())
    assert (magic, version) == (b"asindex\n", CACHE_VERSION)


@pytest.mark.parametrize("bad", ["length 0", "unknown kind"])
def test_an_index_object_with_a_bad_row_merges_nothing(bad: str) -> None:
    """The cold merge reads rows without an object each: a bad row anywhere still
    refuses the whole index object before any of its rows is merged."""
    from artifactstore.core.errors import IntegrityError
    from artifactstore.objects.envelope import Compression

    good = [BlobEntry(hash_bytes(b"%d" % i), Kind.CHUNK, i * 10, 10, 9) for i in range(3)]
    last = (BlobEntry(hash_bytes(b"z"), Kind.CHUNK, 30, 0, 0) if bad == "length 0"
            else BlobEntry(hash_bytes(b"z"), 99, 30, 10, 9))  # type: ignore[arg-type]
    objs = dict(index_module.encode_indexes(
        [(PACKS[0], tuple(good)), (PACKS[1], (last,))], Compression()))
    merged = MergedIndex(None)
    with pytest.raises(IntegrityError, match=bad):
        merged.refresh(list(objs), lambda ids: [(i, objs[i]) for i in ids])
    assert len(merged) == 0
    assert all(merged.lookup(e.id) is None for e in good)
    assert merged.merged_ids == frozenset()
