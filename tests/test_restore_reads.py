"""The restore path's reads (issue 20): files checked from the bytes read, bounded reads
from a local store, modes without a second syscall, the file cache filled from memory,
small files written (and, of several chunks, hashed) on a writer thread."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.backends.base import Backend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import BackendError, IntegrityError
from artifactstore.local.filecache import FileCache
from artifactstore.model.tree import FileEntry
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.layout import pack_key
from artifactstore.objects.store import ObjectStore
from artifactstore.repository.download import _PLACED_MIN, CACHE_MIN, materialize
from artifactstore.testing.data import random_bytes
from artifactstore.testing.stores import init_quick_store

SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
KEYS = DomainKeys.from_epoch_key(bytes(range(32)))
OpenStore = Callable[[Backend], ObjectStore]


@pytest.fixture(params=["memory", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """memory: blobs opened as consumed; local: opened (and hashed) in the I/O threads."""
    if request.param == "memory":
        return open_backend(f"memory://restore-{request.node.name}")
    return open_backend(str(tmp_path / "store"))


@pytest.fixture(params=["plain", "encrypted"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    keys = KEYS if request.param == "encrypted" else None

    def _open(backend: Backend) -> ObjectStore:
        config = StoreConfig.new(chunker=SMALL, pack_target=64 << 10)
        return ObjectStore.open(backend, create=config, keys=keys,
                                cache_dir=tmp_path / f"cache-{request.param}")

    return _open


def _files(store: ObjectStore) -> tuple[list[bytes], list[FileRef]]:
    # one-chunk files (below the chunker's minimum) and files of many chunks, mixed
    files = [random_bytes(n, seed=2000 + i) for i, n in enumerate([700, 90_000, 3, 1000,
                                                                    50_000, 0, 900])]
    return files, [store.write_bytes(f) for f in files]


def test_checked_files_read_back(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend) as store:
        files, refs = _files(store)
    with open_store(backend) as store:
        got = [b"".join(blocks) for blocks in store.iter_files(refs, check=True)]
    assert got == files
    assert any(len(r.chunks) > 1 for r in refs)
    assert any(len(r.chunks) == 1 for r in refs)


@pytest.mark.parametrize("which", [0, 1], ids=["one-chunk", "many-chunks"])
def test_a_file_whose_digest_does_not_match_its_chunks_fails(
    backend: Backend, open_store: OpenStore, which: int
) -> None:
    """A manifest whose digest and chunk list disagree (a damaged or forged tree): the
    chunks verify, the file does not, and its reader raises before it ends; a one-chunk
    file's reader before yielding any byte."""
    with open_store(backend) as store:
        files, refs = _files(store)
    bad = refs[which]
    forged = FileRef(hash_bytes(b"something else"), bad.size, bad.chunks)
    with open_store(backend) as store:
        readers = store.iter_files([refs[2], forged, refs[3]], check=True)
        assert b"".join(next(readers)) == files[2]
        yielded: list[bytes] = []
        with pytest.raises(IntegrityError, match="does not match its digest"):
            yielded.extend(next(readers))
        if which == 0:
            assert yielded == []
        # unchecked reads trust the chunk ids alone
        assert b"".join(next(iter(store.iter_files([forged])))) == files[which]


class _CountingBackend:
    """Passes calls through, recording the length of every range read."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.ranges: list[int] = []

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self.ranges.append(length)
        return self._inner.get_range(key, start, length)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


@pytest.mark.parametrize("which", [0, 1], ids=["one-chunk", "many-chunks"])
def test_a_damaged_chunk_fails_its_checked_file(
    backend: Backend, open_store: OpenStore, which: int
) -> None:
    """Checked reads do not hash each chunk to its id as well: a flipped byte in a
    stored chunk (random bytes are stored uncompressed; the plain domain has no
    authentication; an encrypted one refuses it when opening it) is still refused, by
    the file's digest, before its iterator ends; the files before it read back."""
    with open_store(backend) as store:
        files, refs = _files(store)
        location = store.locate(refs[which].chunks[-1].id)
    key = pack_key(store.domain, location.pack)
    data = bytearray(backend.get(key))
    data[location.offset + location.length - 20] ^= 0x40
    backend.put(key, bytes(data))
    with open_store(backend) as store:
        for i, blocks in enumerate(store.iter_files(refs, check=True)):
            if i == which:
                with pytest.raises(IntegrityError):
                    b"".join(blocks)
                break
            assert b"".join(blocks) == files[i]


def test_a_local_store_reads_a_few_mib_at_a_time(tmp_path: Path) -> None:
    """Peak memory of a restore from a local store does not follow the pack size: each
    read holds at most ~4 MiB of stored and opened bytes (compressible data opens to
    more than it reads), while neighbouring blobs still share reads."""
    inner = open_backend(str(tmp_path / "store"))
    text = b"".join(b"row %d, value %d\n" % (i, i * 7) for i in range(600_000))  # ~11 MiB
    # 64 KiB chunks (no big chunks for text), so that coalescing shows
    config = StoreConfig.new(big_chunks=None)
    with ObjectStore.open(inner, create=config, cache_dir=tmp_path / "c") as store:
        ref = store.write_bytes(text)
    counting = _CountingBackend(inner)
    with ObjectStore.open(counting, cache_dir=tmp_path / "c") as store:  # type: ignore[arg-type]
        assert b"".join(store.iter_file(ref)) == text
    assert sum(counting.ranges) < len(text) / 2  # it compressed: one whole-pack read
    # would hold all 11 MiB opened; ~4 MiB of stored plus opened bytes a read instead
    assert len(counting.ranges) >= len(text) // (4 << 20) + 1
    assert len(counting.ranges) < len(ref.chunks) / 4  # still coalesced


def _version(tmp_path: Path, url: str, cache_dir: Path) -> None:
    data = tmp_path / "data"
    (data / "bin").mkdir(parents=True)
    (data / "small.txt").write_bytes(random_bytes(3000, seed=1))
    (data / "bin" / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (data / "bin" / "run.sh").chmod(0o755)
    (data / "big.bin").write_bytes(random_bytes(3 << 20, seed=2))  # cached from the file
    with artifactstore.open(url, cache_dir=cache_dir) as store:
        store.log_artifact(data, name="ds", type="dataset")


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o000])
def test_downloaded_modes_do_not_depend_on_the_umask(
    tmp_path: Path, umask: Callable[[int], int], mask: int
) -> None:
    url = str(tmp_path / "store")
    _version(tmp_path, url, tmp_path / "cache")
    umask(mask)
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as store:
        out = store.artifact("ds:v0").download(tmp_path / "out")
    modes = {p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in out.rglob("*") if p.is_file()}
    assert modes == {"small.txt": 0o644, "bin/run.sh": 0o755, "big.bin": 0o644}


def test_a_download_fills_the_file_cache_with_its_files_of_64_kib_and_more(
        tmp_path: Path) -> None:
    """Through a cache (a remote store's default), every downloaded file of at least
    CACHE_MIN bytes becomes an entry holding its bytes by the time the download returns
    (those up to 1 MiB written from the bytes in hand on the cache's own thread), and a
    second download of them into another folder is served from the cache alone;
    smaller files are not cached (the download is their copy: design §8)."""
    url = "memory://restore-cache-fill"
    many = tmp_path / "data" / "many"  # more files than wait for the cache at once
    many.mkdir(parents=True)
    for i in range(20):
        (many / f"{i}.bin").write_bytes(random_bytes(CACHE_MIN + i, seed=300 + i))
    _version(tmp_path, url, tmp_path / "cache")
    cache = FileCache(tmp_path / "cache" / "files")
    with artifactstore.open(url, cache_dir=tmp_path / "cache", file_cache=True) as store:
        version = store.artifact("ds:v0")
        first = version.download(tmp_path / "one")
        files = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
        for data in files.values():
            entry = cache.lookup(hash_bytes(data), len(data))
            if len(data) < CACHE_MIN:
                assert entry is None
                continue
            assert entry is not None
            assert entry.read_bytes() == data
            assert stat.S_IMODE(entry.stat().st_mode) == 0o400
        assert sum(len(d) >= CACHE_MIN for d in files.values()) == 21
        entries = [e for e in version.files() if (e.size or 0) >= CACHE_MIN]
    reads: list[object] = []

    class _NoReads:  # a store that must not be read: everything is in the cache
        def iter_files(self, refs: object, **_: object) -> object:
            reads.append(refs)
            raise AssertionError("read from the store")

    target = tmp_path / "two"
    materialize(_NoReads(), entries, target, cache=cache, whole_tree=True)  # type: ignore[arg-type]
    assert reads == []
    assert {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()} \
        == {p.relative_to(first): data for p, data in files.items() if len(data) >= CACHE_MIN}


def test_a_small_file_read_alone_is_cached(tmp_path: Path) -> None:
    """Only a download leaves small files out of the cache: one read alone is kept."""
    url = "memory://restore-cache-small"
    _version(tmp_path, url, tmp_path / "cache")
    cache = FileCache(tmp_path / "cache" / "files")
    with artifactstore.open(url, cache_dir=tmp_path / "cache", file_cache=True) as store:
        data = store.artifact("ds:v0").read_bytes("small.txt")
    assert cache.lookup(hash_bytes(data), len(data)) is not None


@pytest.mark.parametrize("in_place", [False, True], ids=["new-folder", "folder-with-files"])
def test_a_small_file_of_many_chunks_is_checked_before_it_is_created(
        tmp_path: Path, open_store: OpenStore, in_place: bool) -> None:
    """A download hashes a small file of several chunks on its writer thread (the store
    leaves it to the caller: ``caller_hashes``): a forged digest fails naming the file,
    before the file exists under any name; the files before it are written."""
    backend = open_backend(str(tmp_path / "store"))
    with open_store(backend) as store:
        files, refs = _files(store)
    assert len(refs[4].chunks) > 1
    assert refs[4].size < 1 << 20
    entries = [FileEntry(f"f{i}", ref.size, ref.digest, ref.chunks)
               for i, ref in enumerate(refs[:4])]
    forged = FileEntry("forged.bin", refs[4].size, hash_bytes(b"other"), refs[4].chunks)
    target = tmp_path / "out"
    if in_place:
        target.mkdir()
        (target / "keep.txt").write_bytes(b"the user's")
    with open_store(backend) as store:
        assert b"".join(next(iter(store.iter_files([forged.file_ref()], check=True,
                                                   caller_hashes=1 << 20)))) == files[4]
        with pytest.raises(IntegrityError, match=r"forged\.bin"):
            materialize(store, [*entries, forged], target, whole_tree=True)
    written = {p.name for p in tmp_path.rglob("*") if p.is_file() and "out" in str(p)}
    assert not any("forged" in name for name in written)
    if in_place:
        assert {p.name for p in target.iterdir()} == {"keep.txt", "f0", "f1", "f2", "f3"}


def test_a_big_file_is_checked_beside_the_reader(tmp_path: Path, open_store: OpenStore) -> None:
    """Past a few MiB the digest is taken on the store's digest thread: the same bytes
    and the same verdict."""
    backend = open_backend(str(tmp_path / "big-store"))
    data = random_bytes(9 << 20, seed=77)
    with open_store(backend) as store:
        ref = store.write_bytes(data)
    forged = FileRef(hash_bytes(data[:-1] + b"x"), ref.size, ref.chunks)
    with open_store(backend) as store:
        assert b"".join(next(iter(store.iter_files([ref], check=True)))) == data
        with pytest.raises(IntegrityError, match="does not match its digest"):
            b"".join(next(iter(store.iter_files([forged], check=True))))


def _big_file(store: ObjectStore) -> tuple[bytes, FileRef]:
    """~13 MiB: compressible text (big chunks), random bytes, the text again (its chunks
    are read twice)."""
    text = b"".join(b"%d,label %d,%d.25\n" % (i, i % 13, i * 7) for i in range(250_000))
    data = text + random_bytes(3 << 20, seed=91) + text
    return data, store.write_bytes(data)


def test_a_big_file_from_a_local_store_is_written_at_its_offsets(
        tmp_path: Path, open_store: OpenStore) -> None:
    """A local store's big file is opened into reused buffers by the I/O threads and
    written at its offsets (``read_file_into``): the same bytes, and a download through
    it publishes them under the file's mode."""
    backend = open_backend(str(tmp_path / "store"))
    with open_store(backend) as store:
        data, ref = _big_file(store)
    assert len(data) >= _PLACED_MIN
    assert len({c.id for c in ref.chunks}) < len(ref.chunks)  # a chunk read twice
    with open_store(backend) as store:
        assert store.supports_placed_writes
        fd = os.open(tmp_path / "direct", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        seen: list[int] = []
        try:
            store.read_file_into(ref, fd, seen.append)
        finally:
            os.close(fd)
        assert (tmp_path / "direct").read_bytes() == data
        assert sum(seen) == len(data)
        assert len(seen) > 2  # several reads
        entry = FileEntry("sub/big.csv", ref.size, ref.digest, ref.chunks, mode=0o755)
        materialize(store, [entry], tmp_path / "out", whole_tree=True)
    assert (tmp_path / "out" / "sub" / "big.csv").read_bytes() == data
    assert stat.S_IMODE((tmp_path / "out" / "sub" / "big.csv").stat().st_mode) == 0o755


def test_a_forged_big_file_is_never_published(tmp_path: Path, open_store: OpenStore) -> None:
    """A manifest whose digest does not match the big file's chunks: the download fails
    naming the file, no file of that name is left anywhere, the target is not made."""
    backend = open_backend(str(tmp_path / "store"))
    with open_store(backend) as store:
        data, ref = _big_file(store)
    forged = FileEntry("big.csv", ref.size, hash_bytes(data[:-1] + b"!"), ref.chunks)
    with open_store(backend) as store, pytest.raises(IntegrityError, match=r"big\.csv"):
        materialize(store, [forged], tmp_path / "out", whole_tree=True)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.rglob("big.csv")]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep").write_bytes(b"x")  # in place: a temp name, then renamed
    with open_store(backend) as store, pytest.raises(IntegrityError, match=r"big\.csv"):
        materialize(store, [forged], tmp_path / "mine", whole_tree=True)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep"]


@pytest.mark.parametrize("where", [0.2, 0.45], ids=["text", "random"])
def test_a_damaged_chunk_of_a_big_file_fails_it(
        tmp_path: Path, open_store: OpenStore, where: float) -> None:
    """A flipped byte in one stored chunk (compressed text, or random bytes stored as
    they are): refused when opened (encrypted) or by the file's digest (plain), before
    ``read_file_into`` returns."""
    backend = open_backend(str(tmp_path / "store"))
    with open_store(backend) as store:
        _, ref = _big_file(store)
        chunk = ref.chunks[int(len(ref.chunks) * where)]
        location = store.locate(chunk.id)
    key = pack_key(store.domain, location.pack)
    packed = bytearray(backend.get(key))
    packed[location.offset + location.length - 30] ^= 0x04
    backend.put(key, bytes(packed))
    with open_store(backend) as store:
        fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with pytest.raises(IntegrityError):
                store.read_file_into(ref, fd)
        finally:
            os.close(fd)


def test_a_placed_big_file_follows_a_repack(tmp_path: Path) -> None:
    """A reader whose index still names a pack that gc repacked since: the placed write
    of a big file meets the missing pack, refreshes the index and writes the file again
    from the new pack, the same bytes."""
    url = str(tmp_path / "store")
    init_quick_store(url)
    text = b"".join(b"%d,label %d,%d.25\n" % (i, i % 13, i * 7) for i in range(450_000))
    assert len(text) >= _PLACED_MIN
    first, second = tmp_path / "v0", tmp_path / "v1"
    for folder in (first, second):
        folder.mkdir()
        (folder / "big.csv").write_bytes(text)
    (first / "gone.bin").write_bytes(random_bytes(1 << 20, seed=5))  # same pack, dies
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as store:
        store.log_artifact(first, name="d", type="dataset")
        store.log_artifact(second, name="d", type="dataset")
    with artifactstore.open(url, cache_dir=tmp_path / "reader-cache") as reader:
        v1 = reader.artifact("d:v1")
        v1.files()  # the reader's index now names today's packs
        with artifactstore.open(url, cache_dir=tmp_path / "cache") as store:
            store.delete("d:v0")
            assert store.gc(grace=0, repack_threshold=0.0).bytes_freed > 0
        seen: list[int] = []
        v1.download(tmp_path / "out", progress=seen.append)
    assert (tmp_path / "out" / "big.csv").read_bytes() == text
    assert sum(seen) == len(text)  # the second attempt reports only what is new


class _FailingBackend(_CountingBackend):
    """Fails the ``fail_at``-th range read (counting from 1) with a backend error."""

    def __init__(self, inner: Backend, fail_at: int) -> None:
        super().__init__(inner)
        self._fail_at = fail_at

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if len(self.ranges) + 1 == self._fail_at:
            self.ranges.append(length)
            raise BackendError(f"injected failure reading {key}")
        return super().get_range(key, start, length)


@pytest.mark.parametrize("fail_at", [1, 2, 5])
def test_a_failed_read_of_a_placed_file_stops_it(tmp_path: Path, fail_at: int) -> None:
    """A run that fails (here its pack read) fails the whole file with that error, after
    the runs around it stopped (those waiting for their turn to hash included: no
    hang); the store reads the file again afterwards."""
    inner = open_backend(str(tmp_path / "store"))
    with ObjectStore.open(inner, create=StoreConfig.new(), cache_dir=tmp_path / "c") as store:
        data, ref = _big_file(store)
    failing = _FailingBackend(inner, fail_at)
    with ObjectStore.open(failing, cache_dir=tmp_path / "c") as store:  # type: ignore[arg-type]
        fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with pytest.raises(BackendError, match="injected"):
                store.read_file_into(ref, fd)
            os.ftruncate(fd, 0)
            store.read_file_into(ref, fd)  # the next reads do not fail
        finally:
            os.close(fd)
    assert (tmp_path / "f").read_bytes() == data
    assert len(failing.ranges) > fail_at
