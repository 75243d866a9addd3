"""Delta chunks (design §4, objects/deltas.py): the codec, links in trailers and index
objects, reads of deltas and their failures, and a frozen store with deltas
(golden-v1-deltas)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactstore.backends import open_backend
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import FormatError, IntegrityError
from artifactstore.core.synthetic import csv_rows
from artifactstore.maintenance.consolidate import consolidate_index
from artifactstore.maintenance.repair import rebuild_index
from artifactstore.maintenance.verify import verify_objects
from artifactstore.objects.bigchunks import BigChunks
from artifactstore.objects.blobrefs import ChunkRef, FileRef
from artifactstore.objects.config import StoreConfig, load
from artifactstore.objects.deltas import DELTA_FEATURE, DeltaSource, delta_frame
from artifactstore.objects.envelope import Compression, Kind, open_envelope, seal_compressed
from artifactstore.objects.gcrecords import write_condemnation
from artifactstore.objects.index import MergedIndex, decode_index, encode_indexes
from artifactstore.objects.layout import index_key, index_prefix, parse_id_key
from artifactstore.objects.packs import BlobEntry, PendingPack, pack_parts, read_trailer
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.golden import read_file_refs

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden-v1-deltas"
SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
#: a profile small enough for unit tests: files of 64 KiB and more, 32 KiB chunks
BIG = BigChunks(chunker=ChunkerParams(min_size=8192, avg_size=32768, max_size=131072),
                min_file=65536, probe=4096)


def _store(tmp_path: Path, name: str = "s", **options: object) -> ObjectStore:
    config = StoreConfig.new(chunker=SMALL, pack_target=1 << 20, big_chunks=BIG,
                             **options)  # type: ignore[arg-type]
    return ObjectStore.open(open_backend(str(tmp_path / name)), create=config,
                            cache_dir=tmp_path / f"cache-{name}")


def edited(data: bytes, every: int = 50) -> bytes:
    """``data`` with every ``every``-th line changed (a column edit, as the table's)."""
    lines = data.split(b"\n")
    return b"\n".join(line[:-1] + b"#" if i % every == 0 and line else line
                      for i, line in enumerate(lines))


def _two_versions(store: ObjectStore) -> tuple[FileRef, FileRef, bytes]:
    first_data = csv_rows(400_000, seed=11)
    first = store.write_bytes(first_data)
    store.flush()  # a base is an indexed plain chunk
    second_data = edited(first_data)
    second = store.write_bytes(second_data, previous=lambda: first)
    store.flush()
    return first, second, second_data


def _deltas(store: ObjectStore, ref: FileRef) -> list[Digest]:
    return [c.id for c in ref.chunks
            if (loc := store.index.lookup(c.id)) is not None and loc.kind is Kind.CHUNK_DELTA]


def test_the_codec_round_trips_and_needs_its_bases() -> None:
    base = csv_rows(100_000, seed=1)
    new = edited(base)
    frame = delta_frame(new, [base])
    assert len(frame) < len(new) // 16
    header, payload = seal_compressed(Kind.CHUNK_DELTA, frame)
    data = header + payload
    _, plain = open_envelope(data, expected_kind=Kind.CHUNK_DELTA, raw_length=len(new),
                             what="d", dictionary=base)
    assert plain == new
    with pytest.raises(IntegrityError, match="base chunks"):
        open_envelope(data, expected_kind=Kind.CHUNK_DELTA, raw_length=len(new), what="d")
    # Another dictionary: zstd fails or rebuilds other bytes (the id check catches it).
    try:
        _, wrong = open_envelope(data, expected_kind=Kind.CHUNK_DELTA, raw_length=len(new),
                                 what="d", dictionary=csv_rows(100_000, seed=2))
    except IntegrityError:
        return
    assert wrong != new


def test_bases_are_the_overlapping_chunks_at_most_three() -> None:
    ids = [hash_bytes(bytes([i])) for i in range(6)]
    ref = FileRef(hash_bytes(b"f"), 600, tuple(ChunkRef(i, 100) for i in ids))
    source = DeltaSource.of(ref)
    assert source.bases(0, 100) == (ids[0],)
    assert source.bases(50, 100) == (ids[0], ids[1])
    assert source.bases(150, 10) == (ids[1],)
    assert source.bases(10, 580) == tuple(ids[1:4])  # the three overlapping most
    assert source.bases(600, 50) == ()


def test_a_new_store_requires_the_feature_and_an_old_client_refuses_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.close()
    assert DELTA_FEATURE in store.config.mandatory_features
    assert store.config.delta_chunks
    assert not StoreConfig.new(big_chunks=None).delta_chunks
    import artifactstore.objects.config as config_mod

    known = config_mod.KNOWN_FEATURES
    config_mod.KNOWN_FEATURES = frozenset()  # a client older than deltas
    try:
        with pytest.raises(FormatError, match=DELTA_FEATURE):
            load(open_backend(str(tmp_path / "s")))
    finally:
        config_mod.KNOWN_FEATURES = known


def test_an_edited_version_is_stored_as_deltas_and_reads_back(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        first, second, second_data = _two_versions(store)
        deltas = _deltas(store, second)
        assert deltas
        assert len(deltas) == len({c.id for c in second.chunks} -
                                             {c.id for c in first.chunks})
        assert store.read_file(second) == second_data
        assert b"".join(store.iter_file(second)) == second_data
        assert [b"".join(f) for f in store.iter_files([second], check=True)] == [second_data]
        out = tmp_path / "placed"
        with out.open("wb") as f:
            store.read_file_into(second, f.fileno())
        assert out.read_bytes() == second_data
    assert verify_objects(_store(tmp_path)).ok
    # A fresh client (empty cache) and one reading the cache both know the links.
    for cache in ("cold", "cache-s"):
        store = ObjectStore.open(open_backend(str(tmp_path / "s")), cache_dir=tmp_path / cache)
        with store:
            assert _deltas(store, second) == deltas
            assert store.read_file(second) == second_data


def test_no_delta_without_the_feature_or_a_previous_file(tmp_path: Path) -> None:
    with _store(tmp_path, "off", delta_chunks=False) as store:
        _, second, _ = _two_versions(store)
        assert _deltas(store, second) == []
    with _store(tmp_path, "none") as store:
        data = csv_rows(400_000, seed=11)
        store.write_bytes(data)
        store.flush()
        ref = store.write_bytes(edited(data))
        store.flush()
        assert _deltas(store, ref) == []


def _rewrite_index(tmp_path: Path, change: object) -> None:
    """Replace the store's index objects by ``change``(entries) of each pack."""
    backend = open_backend(str(tmp_path / "s"))
    keys = list(backend.list(index_prefix("plain")))
    packs = []
    for key in keys:
        index_id = parse_id_key(key)
        assert index_id is not None
        for pack_id, entries in decode_index(index_id, backend.get(key)):
            packs.append((pack_id, tuple(change(entries))))  # type: ignore[operator]
    for key in keys:
        backend.delete(key)
    config = load(backend)
    for index_id, data in encode_indexes(packs, config.compression):
        backend.put(index_key("plain", index_id), data)


def _swapped(others: list[Digest]) -> object:
    """Each delta's bases replaced by another chunk of ``others``."""
    def change(entries: list[BlobEntry]) -> list[BlobEntry]:
        return [BlobEntry(e.id, e.kind, e.offset, e.length, e.raw_length,
                          (next(o for o in others if o not in e.bases),)) if e.bases else e
                for e in entries]
    return change


def test_a_swapped_link_or_a_missing_base_is_integrity_error(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        first, second, _ = _two_versions(store)
        delta = _deltas(store, second)[0]
    _rewrite_index(tmp_path, _swapped([c.id for c in first.chunks]))
    store = ObjectStore.open(open_backend(str(tmp_path / "s")), cache_dir=tmp_path / "c1")
    with store, pytest.raises(IntegrityError, match=f"blob {delta.hex} in pack"):
        store.read_blob(delta)
    # The trailer still names the right bases: verify's scan of the pack finds them, but
    # the index objects contradict it.
    bases = {b.raw for c in first.chunks for b in [c.id]}
    _rewrite_index(tmp_path, lambda entries: [e for e in entries if e.id.raw not in bases])
    store = ObjectStore.open(open_backend(str(tmp_path / "s")), cache_dir=tmp_path / "c2")
    with store, pytest.raises(IntegrityError, match="base is missing"):
        store.read_blob(delta)


def test_a_delta_naming_no_bases_is_refused_on_decoding(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _two_versions(store)
    _rewrite_index(tmp_path, lambda entries: [
        BlobEntry(e.id, e.kind, e.offset, e.length, e.raw_length) for e in entries])
    store = ObjectStore.open(open_backend(str(tmp_path / "s")), cache_dir=tmp_path / "c")
    with store, pytest.raises(IntegrityError, match="without its bases"):
        store.refresh_index()


_ids = st.binary(min_size=32, max_size=32).map(Digest)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_ids, st.lists(_ids, min_size=0, max_size=3, unique=True)),
                min_size=1, max_size=20, unique_by=lambda t: t[0]))
def test_links_round_trip_through_trailers_and_index_objects(
        blobs: list[tuple[Digest, list[Digest]]]) -> None:
    entries, offset = [], 0
    for blob_id, bases in blobs:
        bases = [b for b in bases if b != blob_id]
        kind = Kind.CHUNK_DELTA if bases else Kind.CHUNK
        entries.append(BlobEntry(blob_id, kind, offset, 10, 20, tuple(bases)))
        offset += 10
    pending = PendingPack(tuple(b"x" * 10 for _ in entries), tuple(entries))
    pack_id, parts = pack_parts(pending)
    assert read_trailer(b"".join(parts), what="p") == tuple(entries)
    [(index_id, data)] = encode_indexes([(pack_id, tuple(entries))], Compression())
    assert decode_index(index_id, data) == [(pack_id, entries)]
    index = MergedIndex(None)
    index.add_pack(pack_id, entries, index_id=index_id)
    for e in entries:
        loc = index.lookup(e.id)
        assert loc is not None
        assert index.bases(e.id, loc) == e.bases


def test_a_full_copy_is_read_before_a_delta_copy(tmp_path: Path) -> None:
    blob, base = hash_bytes(b"blob"), hash_bytes(b"base")
    delta = BlobEntry(blob, Kind.CHUNK_DELTA, 0, 10, 20, (base,))
    full = BlobEntry(blob, Kind.CHUNK, 0, 30, 20)
    p1, p2, i1, i2 = (hash_bytes(bytes([n])) for n in range(4))
    for order in ([(p1, [delta], i1), (p2, [full], i2)], [(p2, [full], i2), (p1, [delta], i1)]):
        index = MergedIndex(tmp_path / "cache.idx")
        for pack_id, entries, index_id in order:
            index.add_pack(pack_id, entries, index_id=index_id, prefer=True)
            index.note_written(index_id)
        loc = index.lookup(blob)
        assert loc is not None
        assert loc.kind is Kind.CHUNK
        assert loc.pack == p2
        assert index.is_delta(blob.raw)
        assert index.all_bases(blob.raw) == {base.raw}
        index.save()
        again = MergedIndex(tmp_path / "cache.idx")
        loc = again.lookup(blob)
        assert loc is not None
        assert loc.kind is Kind.CHUNK
        assert again.is_delta(blob.raw)
        (tmp_path / "cache.idx").unlink()


@pytest.fixture
def golden(tmp_path: Path) -> ObjectStore:
    # Read-only: a test must never rewrite the frozen store.
    backend = ReadOnlyBackend(open_backend(str(GOLDEN)))
    return ObjectStore.open(backend, cache_dir=tmp_path / "cache")


def test_golden_deltas_read_back_and_verify(golden: ObjectStore) -> None:
    refs = read_file_refs(DATA / "golden-v1-deltas.json")
    first = csv_rows(200_000, seed=3)
    lines = first.split(b"\n")
    second = b"\n".join(line.replace(b"1", b"7", 1) if i % 50 == 0 else line
                        for i, line in enumerate(lines))
    with golden:
        assert DELTA_FEATURE in golden.config.mandatory_features
        assert golden.read_file(refs["v1.csv"]) == first
        assert golden.read_file(refs["v2.csv"]) == second
        assert _deltas(golden, refs["v2.csv"])
    report = verify_objects(golden)
    assert report.ok
    assert report.packs_checked == 6


def test_the_golden_deltas_store_read_from_a_copy(tmp_path: Path) -> None:
    # The frozen bytes, under a fresh client cache and a writable copy (a repack reads
    # the same): every pack's trailer lists the links the index object lists.
    shutil.copytree(GOLDEN, tmp_path / "copy")
    backend = open_backend(str(tmp_path / "copy"))
    store = ObjectStore.open(backend, cache_dir=tmp_path / "c")
    with store:
        for pack_id in store.index.packs:
            for e in store.verify_pack(pack_id):
                loc = store.index.lookup(e.id)
                assert loc is not None
                if loc.pack == pack_id:
                    assert store.index.bases(e.id, loc) == e.bases


def test_a_commit_naming_a_delta_checks_and_rescues_its_bases(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _first, second, second_data = _two_versions(store)
        delta = _deltas(store, second)[0]
        location = store.index.lookup(delta)
        assert location is not None
        bases = store.index.bases(delta, location)
        base_location = store.index.lookup(bases[0])
        assert base_location is not None
        # gc condemned a base (not the delta): a version naming the delta rescues it
        write_condemnation(store.backend, store.domain,
                           {base_location.pack: frozenset({bases[0].raw})})
        store.begin_session()
        assert store.write_bytes(second_data).chunks == second.chunks  # all deduplicated
        assert store.prepare_commit() >= 1
        store.end_session()
        rescued = store.index.lookup(bases[0])
        assert rescued is not None
        assert rescued.pack != base_location.pack
        assert store.read_file(second) == second_data


def test_consolidation_and_an_index_rebuilt_from_packs_keep_the_links(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _, second, second_data = _two_versions(store)
        deltas = _deltas(store, second)
        assert deltas
        assert consolidate_index(store, at_least=2).written == 1
    for cache in ("after-consolidation", "after-repair"):
        if cache == "after-repair":  # the index objects lost: rebuilt from the trailers
            backend = open_backend(str(tmp_path / "s"))
            for key in list(backend.list(index_prefix("plain"))):
                backend.delete(key)
            with ObjectStore.open(backend, cache_dir=tmp_path / "r") as damaged:
                rebuild_index(damaged)
        store = ObjectStore.open(open_backend(str(tmp_path / "s")), cache_dir=tmp_path / cache)
        with store:
            assert _deltas(store, second) == deltas
            assert store.read_file(second) == second_data


def test_frames_and_payloads_kept_for_a_pack_hold_only_their_own_bytes() -> None:
    """python-zstandard's ``compress`` keeps the worst case's allocation (about the
    input's length) behind however small a frame: a public store's edited 256 MiB
    table once peaked at 370 MiB holding such delta frames until their pack was
    written. What the writer keeps must be right-sized (``envelope.exact_size``)."""
    import tracemalloc

    from artifactstore.objects.envelope import seal_parts

    base = csv_rows(512 << 10, seed=7)
    edited = [base[:1000 * i] + b"x" + base[1000 * i + 1:] for i in range(1, 21)]
    compression = Compression(level=1)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        frames = [delta_frame(chunk, [base]) for chunk in edited]
        payloads = [seal_parts(Kind.CHUNK, chunk, compression)[1] for chunk in edited]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept = sum(len(f) for f in frames) + sum(len(p) for p in payloads)
    assert all(len(f) < 4096 for f in frames)  # they are deltas: the test means something
    # without the copy: 40 allocations of ~512 KiB (20 MiB) for ~3 MiB of bytes
    assert held - before < kept + (1 << 20)
