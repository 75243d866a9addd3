"""The object store: dedup, packs, index, verified reads, fault handling."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from artifactstore.backends import open_backend
from artifactstore.backends.base import Backend
from artifactstore.backends.faults import FaultInjectingBackend
from artifactstore.backends.retry import RetryingBackend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import (
    ArtifactStoreError,
    BackendError,
    IntegrityError,
    NotFoundError,
)
from artifactstore.objects.blobreads import _REMOTE_STREAMS
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Kind
from artifactstore.objects.index import decode_index
from artifactstore.objects.layout import index_prefix, pack_prefix, parse_id_key
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.data import RandomStream, random_bytes

SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)

OpenStore = Callable[..., ObjectStore]


@pytest.fixture(params=["memory", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        return open_backend(f"memory://objects-{request.node.name}")
    return open_backend(str(tmp_path / "store"))


@pytest.fixture
def open_store(tmp_path: Path) -> OpenStore:
    def _open(backend: Backend, **kwargs: object) -> ObjectStore:
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        config = StoreConfig.new(chunker=SMALL, pack_target=64 << 10)
        return ObjectStore.open(backend, create=config, **kwargs)  # type: ignore[arg-type]

    return _open


def _keys(backend: Backend, prefix: str) -> list[str]:
    return list(backend.list(prefix))


def _id(key: str) -> Digest:
    """The id of a pack or index key this store wrote (never a foreign key)."""
    found = parse_id_key(key)
    assert found is not None, key
    return found


def test_file_round_trip_and_digest_is_b3sum(backend: Backend, open_store: OpenStore) -> None:
    data = random_bytes(300_000, seed=1)
    with open_store(backend) as store:
        ref = store.write_bytes(data)
    assert ref.digest == hash_bytes(data)
    assert ref.size == len(data)
    assert len(ref.chunks) > 10
    with open_store(backend) as store:
        assert store.read_file(ref) == data
        assert b"".join(store.iter_file(ref)) == data


def test_empty_and_tiny_files(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend) as store:
        empty = store.write_bytes(b"")
        tiny = store.write_bytes(b"x")
    assert empty.chunks == ()
    assert empty.size == 0
    assert empty.digest == hash_bytes(b"")
    assert len(tiny.chunks) == 1
    with open_store(backend) as store:
        assert store.read_file(empty) == b""
        assert store.read_file(tiny) == b"x"


def test_identical_content_is_stored_once(backend: Backend, open_store: OpenStore) -> None:
    data = random_bytes(200_000, seed=2)
    with open_store(backend) as store:
        store.write_bytes(data)
    packs_before = _keys(backend, pack_prefix("plain"))
    index_before = _keys(backend, index_prefix("plain"))
    with open_store(backend) as store:
        store.write_bytes(data)
        store.write_bytes(data)
        assert store.stats.blobs_new == 0
        assert store.stats.blobs_deduplicated > 0
    assert _keys(backend, pack_prefix("plain")) == packs_before
    assert _keys(backend, index_prefix("plain")) == index_before


def test_dedup_within_one_session_before_flush(backend: Backend, open_store: OpenStore) -> None:
    data = random_bytes(50_000, seed=3)
    with open_store(backend) as store:
        a = store.write_bytes(data)
        b = store.write_bytes(data)
        assert a == b
        assert store.stats.blobs_new == len(a.chunks)


def test_second_client_sees_new_index_objects(backend: Backend, tmp_path: Path,
                                              open_store: OpenStore) -> None:
    reader = open_store(backend, cache_dir=tmp_path / "reader-cache")
    assert len(reader.index) == 0
    with open_store(backend, cache_dir=tmp_path / "writer-cache") as writer:
        ref = writer.write_bytes(random_bytes(100_000, seed=4))
    # The reader's index is stale; a read refreshes it once before giving up.
    assert reader.read_file(ref) == random_bytes(100_000, seed=4)
    reader.close()


def test_index_cache_avoids_refetching(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend) as store:
        store.write_bytes(random_bytes(100_000, seed=5))
    with open_store(backend) as store:
        assert store.refresh_index() == 0
        assert len(store.index) > 0


def test_damaged_index_cache_is_rebuilt(backend: Backend, tmp_path: Path,
                                        open_store: OpenStore) -> None:
    with open_store(backend) as store:
        ref = store.write_bytes(random_bytes(100_000, seed=6))
    for cache_file in (tmp_path / "cache").rglob("*.idx"):
        cache_file.write_bytes(b"garbage")
    with open_store(backend) as store:
        assert store.read_file(ref) == random_bytes(100_000, seed=6)


def test_structured_blobs(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend) as store:
        tree_id = store.put_blob(Kind.TREE, b"tree node bytes")
    with open_store(backend) as store:
        assert store.read_blob(tree_id) == b"tree node bytes"
        assert store.has_blob(tree_id)


def test_unknown_blob_is_not_found(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend) as store, pytest.raises(NotFoundError, match="never written"):
        store.read_blob(hash_bytes(b"nope"))


def test_read_after_write_in_one_session_flushes(backend: Backend,
                                                 open_store: OpenStore) -> None:
    with open_store(backend) as store:
        ref = store.write_bytes(b"fresh" * 1000)
        assert store.read_file(ref) == b"fresh" * 1000


def test_small_files_share_packs(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend) as store:
        for i in range(300):
            store.write_bytes(random_bytes(2000, seed=100 + i))
    packs = _keys(backend, pack_prefix("plain"))
    # 300 x 2 KB = 600 KB in 64 KiB packs: about 10 packs, not 300 objects.
    assert 5 <= len(packs) <= 12
    assert len(_keys(backend, index_prefix("plain"))) == 1


def test_many_blobs_split_index_objects(backend: Backend, open_store: OpenStore,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import artifactstore.objects.index as index_mod

    monkeypatch.setattr(index_mod, "MAX_ENTRIES_PER_INDEX", 50)
    with open_store(backend) as store:
        for i in range(120):
            store.write_bytes(random_bytes(100, seed=1000 + i))
    keys = _keys(backend, index_prefix("plain"))
    assert len(keys) == 3
    counts = sorted(
        sum(len(e) for _, e in decode_index(_id(k), backend.get(k)))
        for k in keys
    )
    assert counts == [20, 50, 50]


def _one_pack(backend: Backend) -> str:
    (key,) = _keys(backend, pack_prefix("plain"))
    return key


@pytest.mark.parametrize("where", [0.0, 0.1, 0.37, 0.5, 0.81, 0.99])
def test_flipped_byte_in_pack_is_detected_naming_the_object(
    backend: Backend, open_store: OpenStore, where: float
) -> None:
    data = random_bytes(40_000, seed=7)
    with open_store(backend, concurrency=1) as store:
        ref = store.write_bytes(data)
    key = _one_pack(backend)
    raw = bytearray(backend.get(key))
    raw[int(len(raw) * where)] ^= 0x01
    backend.put(key, bytes(raw))
    with open_store(backend) as store:
        pack_id = parse_id_key(key)
        assert pack_id is not None
        with pytest.raises(IntegrityError, match=key):
            store.verify_pack(pack_id)
        location = store.locate(ref.chunks[0].id)
        flipped = int(len(raw) * where)
        in_blobs = any(
            (loc := store.locate(c.id)).offset <= flipped < loc.offset + loc.length
            for c in ref.chunks
        )
        assert location.pack == pack_id
        if in_blobs:
            with pytest.raises(IntegrityError, match=key):
                store.read_file(ref)
        else:  # the flip sits in the trailer, which only verify_pack reads
            assert store.read_file(ref) == data


def test_every_blob_byte_flip_fails_the_read(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend, concurrency=1) as store:
        blob_id = store.put_blob(Kind.TREE, b"n" * 200)
        location = store.locate(blob_id)
    key = _one_pack(backend)
    original = backend.get(key)
    for pos in range(location.offset, location.offset + location.length, 7):
        raw = bytearray(original)
        raw[pos] ^= 0x80
        backend.put(key, bytes(raw))
        with open_store(backend) as store, pytest.raises(IntegrityError, match=blob_id.hex):
            store.read_blob(blob_id)


def test_truncated_pack_read_is_an_integrity_error(backend: Backend,
                                                   open_store: OpenStore) -> None:
    with open_store(backend, concurrency=1) as store:
        ref = store.write_bytes(random_bytes(30_000, seed=8))
    key = _one_pack(backend)
    backend.put(key, backend.get(key)[:1000])
    with open_store(backend) as store, pytest.raises(IntegrityError, match="truncated"):
        store.read_file(ref)


def test_transient_faults_are_retried_and_everything_reads_back(
    tmp_path: Path, open_store: OpenStore
) -> None:
    inner = open_backend(str(tmp_path / "flaky"))
    flaky = RetryingBackend(FaultInjectingBackend(inner, transient_rate=0.1, seed=42),
                            attempts=8, base_delay=0.0)
    files = {i: random_bytes(500 + 97 * i, seed=2000 + i) for i in range(200)}
    with open_store(flaky) as store:
        refs = {i: store.write_bytes(data) for i, data in files.items()}
    with open_store(flaky, cache_dir=tmp_path / "fresh-cache") as store:
        for i, ref in refs.items():
            assert store.read_file(ref) == files[i]
    faults = flaky.inner
    assert isinstance(faults, FaultInjectingBackend)
    assert sum(faults.faults.values()) > 20  # the run really met faults


def test_permanent_failure_mid_write_leaves_no_dangling_index(
    tmp_path: Path, open_store: OpenStore
) -> None:
    inner = open_backend(str(tmp_path / "dying"))
    open_store(inner).close()  # config exists
    dying = FaultInjectingBackend(inner, fail_permanently_after=6)
    store = open_store(dying, concurrency=2)
    def write_all() -> None:
        for i in range(100):
            store.write_bytes(random_bytes(5000, seed=3000 + i))
        store.flush()

    with pytest.raises(BackendError) as info:
        write_all()
    message = str(info.value)
    assert "\n" not in message
    assert "put" in message
    store._shutdown()
    # Every index entry points at a complete pack that verifies.
    check = open_store(inner, cache_dir=tmp_path / "check-cache")
    packs_listed = {parse_id_key(k) for k in _keys(inner, pack_prefix("plain"))}
    assert packs_listed, "the failure should come after some packs landed"
    assert check.index.packs == ()  # the flush failed, so no index lists them
    pack_id: Digest  # declared: after the assert above, mypy sees an empty tuple
    for pack_id in check.index.packs:
        assert pack_id in packs_listed
        check.verify_pack(pack_id)
    check.close()


def test_truncated_upload_is_never_indexed(tmp_path: Path, open_store: OpenStore) -> None:
    inner = open_backend(str(tmp_path / "trunc"))
    open_store(inner).close()
    truncating = FaultInjectingBackend(inner, truncate_writes={3})
    store = open_store(truncating, concurrency=1)
    def write_all() -> None:
        for i in range(60):
            store.write_bytes(random_bytes(5000, seed=4000 + i))
        store.flush()

    with pytest.raises(ArtifactStoreError, match="connection lost"):
        write_all()
    store._shutdown()
    check = open_store(inner, cache_dir=tmp_path / "check-cache")
    for pack_id in check.index.packs:
        check.verify_pack(pack_id)
    check.close()


def test_closed_store_refuses_writes(backend: Backend, open_store: OpenStore) -> None:
    store = open_store(backend)
    store.close()
    with pytest.raises(ArtifactStoreError, match="closed"):
        store.write_bytes(b"late")


def test_exception_in_with_block_commits_nothing(backend: Backend,
                                                 open_store: OpenStore) -> None:
    def user_code() -> None:
        with open_store(backend) as store:
            store.write_bytes(random_bytes(100_000, seed=9))
            raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError):
        user_code()
    assert _keys(backend, index_prefix("plain")) == []


def test_streaming_write_of_unknown_length(backend: Backend, open_store: OpenStore) -> None:
    stream = io.BufferedReader(RandomStream(1_000_000, seed=10), buffer_size=1000)
    with open_store(backend) as store:
        ref = store.write_file(stream)
    assert ref.size == 1_000_000
    assert ref.digest == hash_bytes(random_bytes(1_000_000, seed=10))


class _RendezvousBackend:
    """Delegates to ``inner``; the first ``parties`` calls of ``op`` wait for each other.

    The barrier only opens when ``parties`` calls are in flight at once, so a
    passing test proves the store really runs that many requests concurrently.
    """

    def __init__(self, inner: Backend, op: str, parties: int) -> None:
        import threading

        self._inner = inner
        self._op = op
        self._barrier = threading.Barrier(parties, timeout=10)
        self._lock = threading.Lock()
        self._waiting = parties

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._inner, name)
        if name != self._op:
            return attr

        def rendezvous(*args: object) -> object:
            with self._lock:
                wait = self._waiting > 0
                self._waiting -= 1
            if wait:
                self._barrier.wait()
            return attr(*args)

        return rendezvous


def test_pack_uploads_run_concurrently(open_store: OpenStore, tmp_path: Path) -> None:
    # A local store seals and writes two packs at once beside the chunking (a
    # backend that joins packs, one); the barrier only opens for two in flight.
    inner = open_backend(str(tmp_path / "concurrent-uploads"))
    assert getattr(inner, "supports_vectored_put", False)  # as ObjectStore reads it
    open_store(inner).close()
    with open_store(_RendezvousBackend(inner, "put_parts", 2), concurrency=4) as store:
        for i in range(8):
            store.write_bytes(random_bytes(70_000, seed=5000 + i))
    assert len(_keys(inner, pack_prefix("plain"))) >= 4


def test_packs_close_on_plaintext_locally_and_on_sealed_bytes_remotely(
    backend: Backend, open_store: OpenStore
) -> None:
    # A local store seals a pack in the I/O pool, after it is closed: the target
    # counts what went in, so compressible packs come out well under it. A backend
    # that joins packs (memory, S3, GCS) seals blobs as they are added and closes a
    # pack on its sealed size (PackBatch): fewer, fuller packs, one copy less held.
    import random

    rng = random.Random(7)
    text = b"".join(b"row %08d,label,%d\n" % (i, rng.randrange(1000)) for i in range(40_000))
    with open_store(backend) as writer:
        ref = writer.write_bytes(text)
        target = writer.config.pack_target
        chunk_max = writer.config.chunker.max_size
    # counted once the packs are sealed and flushed
    assert 0 < writer.stats.bytes_stored < len(text) // 2
    with open_store(backend) as store:
        assert store.read_file(ref) == text
        stored = sorted(backend.stat(k).size for k in _keys(backend, pack_prefix("plain")))
        raw_per_pack: dict[bytes, int] = {}
        for chunk in ref.chunks:
            loc = store.locate(chunk.id)
            raw_per_pack[loc.pack.raw] = raw_per_pack.get(loc.pack.raw, 0) + loc.raw_length
    if getattr(backend, "supports_vectored_put", False):
        assert len(stored) >= len(text) // (target + chunk_max)
        assert max(raw_per_pack.values()) <= target + chunk_max
        assert max(stored) < target // 2
    else:
        assert stored[-2] >= target  # all but the last pack reached the target sealed
        assert max(stored) <= target + chunk_max + 4096


def test_reads_of_several_packs_run_concurrently(open_store: OpenStore) -> None:
    inner = open_backend("memory://concurrent-reads")
    files = [random_bytes(70_000, seed=6000 + i) for i in range(4)]
    with open_store(inner) as store:
        refs = [store.write_bytes(f) for f in files]
    chunk_ids = [c.id for ref in refs for c in ref.chunks]
    # a remote store streams at most _REMOTE_STREAMS packs at once (each holds a queue
    # of pieces); the rendezvous opens only if that many reads are in flight together
    parties = min(3, _REMOTE_STREAMS)
    assert parties >= 2
    with open_store(_RendezvousBackend(inner, "get_range", parties), concurrency=3) as store:
        blobs = dict(store.read_blobs(chunk_ids))
    assert b"".join(blobs[c] for c in chunk_ids) == b"".join(files)


@pytest.mark.s3
def test_a_streamed_store_uploads_each_pack_from_a_spooled_file(
    s3_spec: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On S3 a pack goes up from a temporary file (objects/spool.py), one PUT each; the
    file is reused by the next pack (one upload at a time: one file) and closed with the
    store; a failed upload leaves nothing indexed."""
    import tempfile

    spooled = _spool_files(monkeypatch, tempfile.TemporaryFile)
    url, options = s3_spec.url, s3_spec.options  # type: ignore[attr-defined]
    backend = open_backend(url, **options)
    config = StoreConfig.new(chunker=SMALL, pack_target=384 << 10)
    files = {i: random_bytes(40_000 + 997 * i, seed=5000 + i) for i in range(40)}
    put_parts: list[str] = []
    real_put_parts = backend.put_parts

    def recording_put_parts(key: str, parts: list[bytes]) -> None:
        put_parts.append(key)
        real_put_parts(key, parts)

    monkeypatch.setattr(backend, "put_parts", recording_put_parts)
    with ObjectStore.open(backend, create=config, cache_dir=tmp_path / "c1") as store:
        refs = {i: store.write_bytes(data) for i, data in files.items()}
    packs = _keys(backend, pack_prefix("plain"))
    assert len(packs) >= 4
    assert len(spooled) == 1
    assert not [key for key in put_parts if key.startswith(pack_prefix("plain"))]
    assert all(f.closed for f in spooled)
    with ObjectStore.open(backend, cache_dir=tmp_path / "c2") as store:
        for i, ref in refs.items():
            assert store.read_file(ref) == files[i]
        for key in packs:
            store.verify_pack(_id(key))
    dying = FaultInjectingBackend(backend, fail_permanently_after=7)
    store = ObjectStore.open(dying, cache_dir=tmp_path / "c3", concurrency=2)

    def write_all() -> None:
        for i in range(40):
            store.write_bytes(random_bytes(40_000, seed=6000 + i))
        store.flush()

    with pytest.raises(BackendError, match="put"):
        write_all()
    store._shutdown()
    assert all(f.closed for f in spooled)
    with ObjectStore.open(backend, cache_dir=tmp_path / "c4") as check:
        assert len(check.index.packs) == len(packs)  # none of the failed session's
    backend.close()


def _spool_files(monkeypatch: pytest.MonkeyPatch, make: Any) -> list[Any]:
    """The spool's temporary files come from ``make``; returns the list of those made."""
    made: list[Any] = []

    def recording(**kwargs: object) -> object:
        file = make(**kwargs)
        made.append(file)
        return file

    monkeypatch.setattr(tempfile, "TemporaryFile", recording)  # the module the spool calls
    return made


@pytest.mark.s3
def test_a_pack_that_cannot_be_spooled_goes_up_from_memory(
    s3_spec: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$TMPDIR full (the spool file is /dev/full: every write fails with ENOSPC): the
    pack is sent from memory instead, the push succeeds and reads back whole."""
    def disk_full(**kwargs: object) -> object:
        del kwargs
        return open("/dev/full", "r+b")  # the spool keeps it open

    full = _spool_files(monkeypatch, disk_full)
    url, options = s3_spec.url, s3_spec.options  # type: ignore[attr-defined]
    backend = open_backend(url, **options)
    config = StoreConfig.new(chunker=SMALL, pack_target=384 << 10)
    files = {i: random_bytes(40_000 + 991 * i, seed=7000 + i) for i in range(30)}
    with ObjectStore.open(backend, create=config, cache_dir=tmp_path / "c1") as store:
        refs = {i: store.write_bytes(data) for i, data in files.items()}
    assert len(full) >= 3  # every pack tried its spool, and none was kept
    assert all(f.closed for f in full)
    with ObjectStore.open(backend, cache_dir=tmp_path / "c2") as store:
        for i, ref in refs.items():
            assert store.read_file(ref) == files[i]
    backend.close()
