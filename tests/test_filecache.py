"""The local file cache: round trips, private copies, LRU cap, damage, processes, degrading."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import ConfigurationError, InvalidInputError
from artifactstore.core.synthetic import random_bytes
from artifactstore.local import cachewrite
from artifactstore.local.filecache import DEFAULT_MAX_BYTES, FileCache, parse_size

TIMEOUT = 60.0


def _source(tmp_path: Path, name: str, data: bytes) -> tuple[Path, Digest]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, hash_bytes(data)


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".artifactstore-tmp-")]


def test_shards_name_the_folders_an_entry_can_be_in(tmp_path: Path) -> None:
    """What a download asks once instead of a failed open per file of a cold cache."""
    cache = FileCache(tmp_path / "cache")
    assert cache.shards() == frozenset()  # no cache folder yet
    digests = [hash_bytes(bytes([i])) for i in range(3)]
    for i, digest in enumerate(digests):
        assert cache.insert_bytes(bytes([i]), digest) is not None
    (tmp_path / "cache" / "zz").mkdir()  # not an entry folder
    (tmp_path / "cache" / "AB").mkdir()  # entry folders are lowercase
    assert cache.shards() == {d.raw[0] for d in digests}


@pytest.mark.parametrize("reflink", [True, False], ids=["reflink-or-copy", "copy"])
def test_insert_lookup_materialize_round_trip(tmp_path: Path, reflink: bool) -> None:
    data = random_bytes(300_000, seed=1)
    source, digest = _source(tmp_path, "src.bin", data)
    cache = FileCache(tmp_path / "cache", max_bytes=1 << 20, reflink=reflink)

    entry = cache.insert(source, digest)
    assert entry == tmp_path / "cache" / digest.hex[:2] / digest.hex
    assert stat.S_IMODE(entry.stat().st_mode) == 0o400  # read-only and private (privatefiles.py)
    assert cache.lookup(digest, len(data)) == entry
    assert cache.info().entries == 1
    assert cache.info().bytes == len(data)

    out = tmp_path / "out"
    out.mkdir()
    target = out / "model.bin"
    assert cache.materialize(digest, len(data), target, 0o640)
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert not _leftovers(out)

    # A private copy: its own inode, so editing it never reaches the cache.
    assert os.stat(target).st_ino != os.stat(entry).st_ino
    assert os.stat(target).st_nlink == 1
    assert not target.is_symlink()
    with open(target, "r+b") as f:
        f.write(b"edited by the user")
    assert hash_bytes(entry.read_bytes()) == digest
    assert cache.materialize(digest, len(data), target, 0o600)
    assert target.read_bytes() == data


@pytest.mark.parametrize("reflink", [True, False], ids=["reflink-or-copy", "copy"])
def test_copy_paths(tmp_path: Path, reflink: bool) -> None:
    data = random_bytes(3 << 20, seed=2)
    (tmp_path / "a").write_bytes(data)
    with open(tmp_path / "a", "rb") as src, open(tmp_path / "b", "w+b") as dst:
        cloned = cachewrite.copy_file(src.fileno(), dst.fileno(), reflink=reflink)
    # ext4 and tmpfs cannot clone, so "reflink-or-copy" falls back there; btrfs/XFS clone.
    assert cloned is False or reflink
    assert (tmp_path / "b").read_bytes() == data
    assert os.stat(tmp_path / "a").st_ino != os.stat(tmp_path / "b").st_ino


def test_insert_of_a_cached_digest_keeps_one_entry(tmp_path: Path) -> None:
    source, digest = _source(tmp_path, "src", b"same bytes")
    cache = FileCache(tmp_path / "cache")
    first = cache.insert(source, digest)
    assert cache.insert(source, digest) == first
    assert cache.info().entries == 1
    assert not list((tmp_path / "cache" / "tmp").iterdir())


def test_misses(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache")
    digest = hash_bytes(b"never cached")
    target = tmp_path / "t"
    assert cache.lookup(digest, 12) is None
    assert not cache.materialize(digest, 12, target, 0o644)
    assert not target.exists()
    assert cache.info().entries == 0


def test_size_cap_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache", max_bytes=100)
    digests = {}
    for name in "abc":
        source, digests[name] = _source(tmp_path, name, name.encode() * 30)
        cache.insert(source, digests[name])
    entry = {name: cache.path_for(d) for name, d in digests.items()}
    for age, name in enumerate("abc"):
        os.utime(entry[name], (1_000_000 + age, 1_000_000 + age))
    assert cache.lookup(digests["a"], 30) is not None  # a is now the most recent

    source, digests["d"] = _source(tmp_path, "d", b"d" * 30)
    assert cache.insert(source, digests["d"]) == cache.path_for(digests["d"])
    assert cache.lookup(digests["b"], 30) is None  # least recently used: evicted
    assert all(cache.lookup(digests[n], 30) is not None for n in "acd")
    assert cache.info().bytes == 90


def test_file_over_the_cap_is_not_cached(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache", max_bytes=100)
    kept, kept_digest = _source(tmp_path, "kept", b"k" * 50)
    cache.insert(kept, kept_digest)
    big, digest = _source(tmp_path, "big", b"x" * 101)
    assert cache.insert(big, digest) == big
    assert cache.lookup(digest, 101) is None
    assert cache.lookup(kept_digest, 50) is not None


def test_clean_keeps_most_recent_and_removes_stale_temps(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache")
    digests = []
    for i in range(4):
        source, digest = _source(tmp_path, f"s{i}", bytes([i]) * 10)
        os.utime(cache.insert(source, digest), (2_000_000 + i, 2_000_000 + i))
        digests.append(digest)
    stale = tmp_path / "cache" / "tmp" / ".artifactstore-tmp-crashed"
    stale.write_bytes(b"half")
    os.utime(stale, (1, 1))
    info = cache.clean(keep_bytes=25)
    assert (info.entries, info.bytes) == (2, 20)
    assert [cache.lookup(d, 10) is not None for d in digests] == [False, False, True, True]
    assert not stale.exists()
    assert cache.clean().entries == 0
    with pytest.raises(InvalidInputError):
        cache.clean(keep_bytes=-1)


def test_truncated_entry_is_dropped(tmp_path: Path) -> None:
    data = b"0123456789" * 100
    source, digest = _source(tmp_path, "src", data)
    cache = FileCache(tmp_path / "cache")
    entry = cache.insert(source, digest)
    entry.chmod(0o644)
    with open(entry, "r+b") as f:
        f.truncate(500)
    target = tmp_path / "t"
    assert not cache.materialize(digest, len(data), target, 0o644)
    assert not entry.exists()
    assert not target.exists()

    cache.insert(source, digest).chmod(0o644)
    with open(entry, "r+b") as f:
        f.truncate(10)
    assert cache.lookup(digest, len(data)) is None
    assert not entry.exists()


def test_damaged_entry_of_the_right_size_is_never_served(tmp_path: Path) -> None:
    data = random_bytes(10_000, seed=3)
    source, digest = _source(tmp_path, "src", data)
    cache = FileCache(tmp_path / "cache")
    entry = cache.insert(source, digest)
    entry.chmod(0o644)
    with open(entry, "r+b") as f:
        f.seek(5000)
        f.write(b"\xff\x00")
    target = tmp_path / "t"
    target.write_bytes(b"previous content")
    assert not cache.materialize(digest, len(data), target, 0o644)
    assert target.read_bytes() == b"previous content"
    assert not entry.exists()
    assert not _leftovers(tmp_path)


def _insert_worker(root: str, source: str, digest_hex: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(TIMEOUT)
        path = FileCache(Path(root)).insert(Path(source), Digest.from_hex(digest_hex))
        results.put(str(path))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put(f"error: {exc!r}")


def test_concurrent_inserts_from_four_processes_leave_one_entry(tmp_path: Path) -> None:
    data = random_bytes(2 << 20, seed=4)
    digest = hash_bytes(data)
    root = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = []
    for w in range(4):
        source, _ = _source(tmp_path, f"src{w}", data)
        procs.append(ctx.Process(target=_insert_worker, daemon=True,
                                 args=(str(root), str(source), digest.hex, barrier, results)))
    for proc in procs:
        proc.start()
    paths = {results.get(timeout=TIMEOUT) for _ in procs}
    for proc in procs:
        proc.join(TIMEOUT)
        assert proc.exitcode == 0
    cache = FileCache(root)
    assert paths == {str(cache.path_for(digest))}
    info = cache.info()
    assert (info.entries, info.bytes) == (1, len(data))
    assert hash_bytes(cache.path_for(digest).read_bytes()) == digest
    assert not list((root / "tmp").iterdir())


def _evict_worker(root: str, source: str, digest_hex: str, ready: Any, stop: Any,
                  results: Any) -> None:
    cache, digest, rounds = FileCache(Path(root)), Digest.from_hex(digest_hex), 0
    try:
        while not stop.is_set():
            cache.clean()
            cache.insert(Path(source), digest)
            rounds += 1
            ready.set()
        results.put(rounds)
    except BaseException as exc:
        results.put(f"error: {exc!r}")


@pytest.mark.slow
def test_eviction_under_a_concurrent_reader_never_leaves_a_partial_target(
    tmp_path: Path,
) -> None:
    data = random_bytes(4 << 20, seed=5)
    source, digest = _source(tmp_path, "src", data)
    root = tmp_path / "cache"
    # verify=False: the guarantee must come from the copy protocol, not the re-hash.
    reader = FileCache(root, verify=False)
    reader.insert(source, digest)
    ctx = multiprocessing.get_context("spawn")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_evict_worker, daemon=True,
                       args=(str(root), str(source), digest.hex, ready, stop, results))
    proc.start()
    out = tmp_path / "out"
    out.mkdir()
    target = out / "t"
    outcomes = []
    assert ready.wait(TIMEOUT)
    deadline = time.monotonic() + 1.0
    try:
        while time.monotonic() < deadline:
            ok = reader.materialize(digest, len(data), target, 0o644)
            outcomes.append(ok)
            if ok:
                assert target.read_bytes() == data
                target.unlink()
            else:
                assert not target.exists()
    finally:
        stop.set()
    rounds = results.get(timeout=TIMEOUT)
    proc.join(TIMEOUT)
    assert isinstance(rounds, int), rounds
    assert rounds > 0
    assert any(outcomes)
    print(f"{rounds} evictions; {sum(outcomes)} hits, {outcomes.count(False)} misses")
    assert not list(out.iterdir())


def test_unwritable_cache_degrades_to_no_cache(tmp_path: Path) -> None:
    # chmod 0o555 does not stop root, but nothing can create a folder under a file.
    (tmp_path / "file").write_bytes(b"not a folder")
    cache = FileCache(tmp_path / "file" / "cache")
    source, digest = _source(tmp_path, "src", b"payload")
    assert cache.insert(source, digest) == source
    assert source.read_bytes() == b"payload"
    assert cache.lookup(digest, 7) is None
    target = tmp_path / "t"
    assert not cache.materialize(digest, 7, target, 0o644)
    assert not target.exists()
    assert cache.info().entries == 0
    assert cache.clean().entries == 0


def test_materialize_into_an_unwritable_folder_is_a_miss(tmp_path: Path) -> None:
    source, digest = _source(tmp_path, "src", b"payload")
    cache = FileCache(tmp_path / "cache")
    cache.insert(source, digest)
    (tmp_path / "file").write_bytes(b"x")
    assert not cache.materialize(digest, 7, tmp_path / "file" / "t", 0o644)
    (tmp_path / "dir").mkdir()
    assert not cache.materialize(digest, 7, tmp_path / "dir", 0o644)  # a folder in the way
    assert not _leftovers(tmp_path)


def test_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("ARTIFACTSTORE_CACHE_MAX_BYTES", raising=False)
    cache = FileCache()
    assert cache.root == tmp_path / "files"
    assert cache.max_bytes == DEFAULT_MAX_BYTES
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_MAX_BYTES", "10G")
    assert FileCache().max_bytes == 10 << 30
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_MAX_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="ARTIFACTSTORE_CACHE_MAX_BYTES"):
        FileCache()
    assert FileCache(max_bytes=7).max_bytes == 7
    with pytest.raises(InvalidInputError):
        FileCache(max_bytes=-1)


@pytest.mark.parametrize(("text", "size"), [
    ("0", 0), ("1234", 1234), ("4k", 4096), ("5G", 5 << 30), ("2GiB", 2 << 30),
    (" 3 MB ", 3 << 20), ("1T", 1 << 40),
])  # fmt: skip
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "1.5G", "5X", "G"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_size(text)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077, 0o477], ids=oct)
def test_entries_are_read_only_and_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """Entries made 0400 by ``os.open`` when the umask keeps that, else changed after
    writing (a umask that strips the owner's read bit): 0400 either way, same bytes."""
    old = os.umask(umask)
    try:
        cache = FileCache(tmp_path / "cache", max_bytes=1 << 20)
        small, big = random_bytes(1000, seed=7), random_bytes(5000, seed=8)
        from_bytes = cache.insert_bytes(small, hash_bytes(small))
        source, digest = _source(tmp_path, "big.bin", big)
        from_file = cache.insert(source, digest)
    finally:
        os.umask(old)
    assert from_bytes is not None
    for entry, data in ((from_bytes, small), (from_file, big)):
        assert stat.S_IMODE(entry.stat().st_mode) == 0o400
        assert entry.read_bytes() == data
    assert _leftovers(tmp_path / "cache" / "tmp") == []


def test_a_cache_slow_to_scan_is_rescanned_less_often(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inserts keep a running estimate between scans; a scan that took T seconds is not
    repeated (below the cap) for 20 T, at least 5 s (a fake clock, no timing)."""
    import time

    clock = [1000.0]
    scans: list[float] = []
    cache = FileCache(tmp_path / "cache", max_bytes=1 << 30)
    real_scan = cache._scan_total

    def slow_scan() -> int:
        scans.append(clock[0])
        clock[0] += 2.0  # this scan "takes" 2 s
        return real_scan()

    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(cache, "_scan_total", slow_scan)
    for i in range(30):
        data = i.to_bytes(4, "little") * 10
        assert cache.insert_bytes(data, hash_bytes(data)) is not None
        clock[0] += 1.0
    # first insert scans (no estimate yet); the next scan waits 40 s, not 5 s
    assert scans == [1000.0]
    assert cache.info().entries == 30
