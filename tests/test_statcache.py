"""Re-logging unchanged files without reading them, and reading them when they changed
or when gc reclaimed their chunks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import artifactstore
from artifactstore.core.digest import hash_bytes
from artifactstore.local.statcache import StatCache
from artifactstore.objects.blobrefs import ChunkRef, FileRef
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.stores import init_quick_store


def _folder(tmp_path: Path, files: int = 5) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    past = time.time() - 60  # not "racily clean": cached
    for i in range(files):
        p = folder / f"f{i}.bin"
        p.write_bytes(os.urandom(20_000 + i))
        os.utime(p, (past, past))
    return folder


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files the object store read (a spy: the real methods still run); small
    files are read whole and stored with ``write_bytes``, others streamed."""
    count: list[int] = []
    for name in ("write_file", "write_bytes"):
        real = getattr(ObjectStore, name)

        def spy(self: ObjectStore, *args, _real=real, **options):  # type: ignore[no-untyped-def]
            count.append(1)
            return _real(self, *args, **options)

        monkeypatch.setattr(ObjectStore, name, spy)
    return count


def test_unchanged_files_are_not_read_again(tmp_path: Path, reads: list[int]) -> None:
    url = str(tmp_path / "store")
    folder = _folder(tmp_path)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        first = store.log_artifact(folder, name="d", type="dataset")
    assert len(reads) == 5
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        again = store.log_artifact(folder, name="d", type="dataset")
        assert not again.created
        assert again.digest == first.digest
        (folder / "f1.bin").write_bytes(os.urandom(20_001))  # same size, new mtime
        changed = store.log_artifact(folder, name="d", type="dataset")
        assert changed.created
        changed.verify()
    assert len(reads) == 6  # only the changed file was read


def test_a_file_changed_just_now_is_not_trusted(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat.sqlite")
    fresh, old = tmp_path / "fresh.bin", tmp_path / "old.bin"
    for p in (fresh, old):
        p.write_bytes(os.urandom(100))
    past = time.time() - 60
    os.utime(old, (past, past))
    for p in (fresh, old):
        cache.remember(p, os.stat(p), _ref(p))
    cache.save()
    assert cache.lookup(fresh, os.stat(fresh)) is None  # a write in the same tick: unsafe
    assert cache.lookup(old, os.stat(old)) == _ref(old)
    os.utime(old, (past + 1, past + 1))
    assert cache.lookup(old, os.stat(old)) is None  # its stat changed
    cache.close()


def _ref(p: Path) -> FileRef:
    data = p.read_bytes()
    return FileRef(hash_bytes(data), len(data), (ChunkRef(hash_bytes(data), len(data)),))


def test_cached_chunks_reclaimed_by_gc_are_stored_again(tmp_path: Path, reads: list[int]) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url)
    folder = _folder(tmp_path, files=2)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        store.log_artifact(folder, name="d", type="dataset")
        store.delete_artifact("d")
        store.gc(grace=0)
        back = store.log_artifact(folder, name="d", type="dataset")
        back.verify()
    assert len(reads) == 4  # read again: the cache named chunks gc had removed


def _cache_with(tmp_path: Path, folders: dict[str, int]) -> tuple[Path, dict[str, Path]]:
    """A stat cache file knowing ``count`` files in each named folder."""
    db, files = tmp_path / "stat.sqlite", {}
    cache = StatCache(db)
    past = time.time() - 60
    for name, count in folders.items():
        (tmp_path / name).mkdir()
        for i in range(count):
            p = tmp_path / name / f"f{i}"
            p.write_bytes(b"x" * (i + 1))
            os.utime(p, (past, past))
            digest = hash_bytes(p.read_bytes())
            cache.remember(str(p), p.stat(), FileRef(digest, i + 1, (ChunkRef(digest, i + 1),)))
            files[f"{name}/f{i}"] = p
    cache.save()
    cache.close()
    return db, files


def test_a_preloaded_folder_answers_from_one_query(tmp_path: Path) -> None:
    import sqlite3

    db, files = _cache_with(tmp_path, {"a": 3, "b": 1})
    cache = StatCache(db)
    cache.preload(tmp_path / "a")
    with sqlite3.connect(db) as other:  # rows gone from the file: only memory can answer
        other.execute("DELETE FROM files")
    for i in range(3):
        p = files[f"a/f{i}"]
        hit = cache.lookup(str(p), p.stat())
        assert hit is not None
        assert hit.digest == hash_bytes(p.read_bytes())
    assert cache.lookup(str(files["b/f0"]), files["b/f0"].stat()) is None  # not preloaded
    changed = files["a/f1"]
    changed.write_bytes(b"yy")  # a changed stat is a miss, preloaded or not
    assert cache.lookup(str(changed), changed.stat()) is None
    cache.save()  # the log is done: preloaded rows are forgotten
    assert cache.lookup(str(files["a/f0"]), files["a/f0"].stat()) is None
    cache.close()


def test_a_folder_with_too_many_entries_is_not_preloaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from artifactstore.local import statcache
    db, files = _cache_with(tmp_path, {"a": 3})
    monkeypatch.setattr(statcache, "PRELOAD_MAX", 2)
    cache = StatCache(db)
    cache.preload(tmp_path / "a")
    with sqlite3.connect(db) as other:
        other.execute("DELETE FROM files")
    assert cache.lookup(str(files["a/f0"]), files["a/f0"].stat()) is None  # asked the file
    cache.close()


def test_a_folder_too_big_to_preload_is_scanned_in_path_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from artifactstore.local import statcache
    db, files = _cache_with(tmp_path, {"a": 5, "b": 1})
    monkeypatch.setattr(statcache, "PRELOAD_MAX", 2)
    cache = StatCache(db)
    cache.preload(tmp_path / "a")
    order = ["a/f0", "a/f2", "a/f3", "a/f1", "a/f4", "a/f4", "b/f0", "a/f0"]  # goes back too
    for name in order:
        p = files[name]
        hit = cache.lookup(str(p), p.stat())
        assert hit is not None, name
        assert hit.digest == hash_bytes(p.read_bytes())
    assert cache.lookup(str(tmp_path / "a" / "f00"), files["a/f0"].stat()) is None  # no row
    changed = files["a/f3"]
    changed.write_bytes(b"yy")
    assert cache.lookup(str(changed), changed.stat()) is None
    cache.save()
    cache.close()


def test_a_failed_log_remembers_nothing(tmp_path: Path) -> None:
    # f0 and f1 are stored before f2 turns out missing: no version names them, so the
    # cache must not keep them for the next successful log to save.
    folder = _folder(tmp_path, files=3)
    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c") as store:
        art = artifactstore.Artifact("d", type="dataset")
        art.add_dir(folder)
        (folder / "f2.bin").unlink()
        with pytest.raises(artifactstore.core.errors.NotFoundError):
            store.log_artifact(art)
        store.log_artifact(other, name="o", type="dataset")  # saves what is queued
    [db] = (tmp_path / "c" / "stat").rglob("*.sqlite")
    cache = StatCache(db)
    for name in ("f0.bin", "f1.bin"):
        p = folder / name
        assert cache.lookup(str(p), p.stat()) is None
    cache.close()
