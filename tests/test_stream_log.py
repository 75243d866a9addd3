"""A folder logged as a stream (``log PATH``, ``store.log_artifact(path)``): the same
version as staging every file first, in bounded memory (tree.TreeWriter,
contentid.ContentHasher, localtree.iter_folder, the stat cache's spilled rows)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import artifactstore
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.local import statcache
from artifactstore.local.localtree import iter_folder, walk_folder
from artifactstore.local.statcache import StatCache
from artifactstore.model.contentid import ContentHasher, content_digest
from artifactstore.model.entries import FileEntry, ReferenceEntry
from artifactstore.model.tree import TreeWriter, build_tree
from artifactstore.objects.blobrefs import ChunkRef
from artifactstore.objects.envelope import Kind
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.stores import init_quick_store

# Names that sort differently by bytes of the full path and by path segments: '-', '.',
# ' ' and '!' sort before '/', and '0' after it.
_names = st.sampled_from(["a", "a-b", "a.b", "a b", "a!", "a0", "b", "é", "z", "ab"])
_paths = st.lists(_names, min_size=1, max_size=4).map("/".join)


def _files_only(entries: list[FileEntry | ReferenceEntry]) -> list[FileEntry]:
    """The entries of a version logged from files: all of them files, no references."""
    files = [e for e in entries if isinstance(e, FileEntry)]
    assert len(files) == len(entries), entries
    return files


def _entry(path: str, seed: int) -> FileEntry | ReferenceEntry:
    if seed % 5 == 4:
        return ReferenceEntry(path, f"s3://b/{path}", seed, None, None, None)
    digest = hash_bytes(f"{path}{seed}".encode())
    return FileEntry(path, seed + 1, digest, (ChunkRef(digest, seed + 1),), mode=0o600 + seed % 8)


def _valid(paths: list[str]) -> list[str]:
    """Unique paths, none both a file and a folder."""
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path.startswith(k + "/") or k.startswith(path + "/") for k in kept):
            kept.append(path)
    return kept


class _Blobs(dict[bytes, bytes]):
    def put(self, kind: Kind, data: bytes) -> Digest:
        blob_id = hash_bytes(kind.name.encode() + data)
        self[blob_id.raw] = data
        return blob_id


@settings(max_examples=150, deadline=None)
@given(st.lists(_paths, max_size=40), st.integers(2, 6))
def test_a_streamed_tree_is_the_built_tree_and_its_content_digest(
        paths: list[str], threshold: int) -> None:
    entries = [_entry(p, i) for i, p in enumerate(_valid(paths))]
    built, streamed = _Blobs(), _Blobs()
    summary = build_tree(entries, built.put, split_threshold=threshold)
    writer, hasher = TreeWriter(streamed.put, split_threshold=threshold), ContentHasher()
    for entry in sorted(entries, key=lambda e: e.path.encode()):
        writer.add(entry)
        hasher.add(entry)
    assert writer.finish() == summary
    assert streamed == built  # every node, byte for byte
    assert hasher.digest() == content_digest(entries)


def test_a_stream_out_of_byte_order_or_with_conflicts_is_refused() -> None:
    blobs = _Blobs()
    writer = TreeWriter(blobs.put)
    writer.add(_entry("a/x", 1))
    with pytest.raises(InvalidInputError, match="byte order"):
        writer.add(_entry("a-b", 2))  # path order, not byte order
    writer = TreeWriter(blobs.put)
    writer.add(_entry("a", 1))
    writer.add(_entry("a/x", 2))  # a file and a folder of one name
    with pytest.raises(InvalidInputError, match="twice, or as a file and as a directory"):
        writer.finish()
    hasher = ContentHasher()
    hasher.add(_entry("b", 1))
    with pytest.raises(InvalidInputError, match="out of order"):
        hasher.add(_entry("b", 1))


def _tree(root: Path) -> Path:
    past = time.time() - 60  # not "racily clean": cached
    for rel in ["a/x.bin", "a/y/z.bin", "a-b.bin", "a.b/c.bin", "a b.bin", "a0/d.bin",
                "é/f.bin", "top.bin", "empty/dir/g.bin"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(100 + len(rel)) + rel.encode())
        os.utime(p, (past, past))
    (root / "a" / "link.bin").symlink_to(root / "top.bin")  # a link inside: the file
    return root


def test_iter_folder_gives_the_walked_files_in_byte_order(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    streamed = list(iter_folder(root))
    rels = [rel for rel, _ in streamed]
    assert rels == sorted(rels, key=str.encode)
    walked = walk_folder(root).files
    assert sorted(streamed) == sorted((rel, str(p.absolute())) for rel, p in walked)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    count: list[str] = []
    for name in ("write_file", "write_bytes"):
        real = getattr(ObjectStore, name)

        def spy(self: ObjectStore, *args, _real=real, _name=name, **options):  # type: ignore[no-untyped-def]
            count.append(_name)
            return _real(self, *args, **options)

        monkeypatch.setattr(ObjectStore, name, spy)
    return count


def test_a_streamed_log_is_the_staged_log(tmp_path: Path, reads: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "PENDING_BATCH", 2)  # rows spill to the temp table
    root = _tree(tmp_path / "data")
    with artifactstore.open(str(tmp_path / "s1"), cache_dir=tmp_path / "c1") as store:
        streamed = store.log_artifact(root, name="d", type="dataset")
        assert streamed.created
        assert len(reads) == 10
        art = artifactstore.Artifact("d", type="dataset")
        art.add_dir(root)
        assert not store.log_artifact(art).created  # the same content: no new version
        again = store.log_artifact(root, name="d", type="dataset")
        assert (again.created, again.digest) == (False, streamed.digest)
        assert len(reads) == 10  # neither re-log read a file: all known to the stat cache
        (root / "a" / "y" / "z.bin").write_bytes(b"changed")
        changed = store.log_artifact(root, name="d", type="dataset")
        assert changed.created
        assert len(reads) == 11
        changed.verify()
        assert changed.open("a/y/z.bin").read() == b"changed"
        listed = [(f.path, f.digest, f.mode) for f in _files_only(changed.files())]
    with artifactstore.open(str(tmp_path / "s2"), cache_dir=tmp_path / "c2") as store:
        art = artifactstore.Artifact("d", type="dataset")
        art.add_dir(root)
        staged = store.log_artifact(art)
        assert [(f.path, f.digest, f.mode) for f in _files_only(staged.files())] == listed
    assert staged.digest == changed.digest
    assert staged.record.content == changed.record.content


def test_a_streamed_artifact_still_lists_its_entries(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    art = artifactstore.Artifact("d", type="dataset")
    art.stream_dir(root)
    assert art.streamed is not None
    paths = [e.path for e in art.entries]  # listed on request: now a staged artifact
    assert art.streamed is None
    assert paths == sorted(rel for rel, _ in iter_folder(root))


def test_a_failed_streamed_log_keeps_no_spilled_rows(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "PENDING_BATCH", 1)
    root = _tree(tmp_path / "data")
    real = os.open

    def failing(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith("top.bin"):  # after the a... and é folders in byte order
            raise FileNotFoundError(path)
        return real(path, *args, **kwargs)

    with artifactstore.open(str(tmp_path / "s"), cache_dir=tmp_path / "c") as store:
        monkeypatch.setattr(os, "open", failing)
        with pytest.raises(NotFoundError):
            store.log_artifact(root, name="d", type="dataset")
        monkeypatch.setattr(os, "open", real)
        assert store.artifacts() == []
        store.log_artifact(tmp_path / "data" / "top.bin", name="o", type="dataset")
    [db] = (tmp_path / "c" / "stat").rglob("*.sqlite")
    cache = StatCache(db)
    p = root / "a" / "x.bin"
    assert cache.lookup(str(p), p.stat()) is None  # stored by the failed log: not trusted
    cache.close()


def _folders(root: Path) -> Path:
    past = time.time() - 60
    for rel in ["d1/a.bin", "d1/b.bin", "d1/c.bin", "d2/a.bin", "d2/b.bin", "top.bin"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(200) + rel.encode())
        os.utime(p, (past, past))
    return root


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the files a streamed log stored one by one (read or from the stat cache)."""
    from artifactstore.repository import ingest

    paths: list[str] = []
    real = ingest._store_one

    def spy(project, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        paths.append(path)
        return real(project, path, *args, **kwargs)

    monkeypatch.setattr(ingest, "_store_one", spy)
    return paths


def test_an_unchanged_folder_of_files_is_taken_whole(tmp_path: Path, stored: list[str],
                                                     reads: list[str]) -> None:
    root = _folders(tmp_path / "data")
    url = str(tmp_path / "store")
    init_quick_store(url)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        first = store.log_artifact(root, name="d", type="dataset")
        assert len(stored) == 6
        stored.clear()
        again = store.log_artifact(root, name="d", type="dataset")
        assert (again.created, again.digest) == (False, first.digest)
        assert stored == ["top.bin"]  # d1 and d2 by their folder rows
        stored.clear()
        past = time.time() - 30
        (root / "d2" / "b.bin").write_bytes(b"new")
        os.utime(root / "d2" / "b.bin", (past, past))
        changed = store.log_artifact(root, name="d", type="dataset")
        assert changed.created
        assert stored == ["d2/a.bin", "d2/b.bin", "top.bin"]
        assert len(reads) == 7  # only the changed file was read
        changed.verify()
        listed = [(f.path, f.digest) for f in changed.files()]
        stored.clear()
        store.delete_artifact("d")
        store.gc(grace=0)  # every blob of the folder rows is gone
        back = store.log_artifact(root, name="d", type="dataset")
        back.verify()
        assert [(f.path, f.digest) for f in back.files()] == listed
        assert back.record.content == changed.record.content
    assert len(reads) == 13  # read again: the rows named blobs gc had removed
    with artifactstore.open(str(tmp_path / "s2"), cache_dir=tmp_path / "c2") as store:
        art = artifactstore.Artifact("d", type="dataset")
        art.add_dir(root)
        staged = store.log_artifact(art)
    assert (staged.digest, staged.record.content) == (back.digest, back.record.content)


def test_only_folders_of_files_not_just_written_are_signed(tmp_path: Path) -> None:
    from artifactstore.local.localtree import check_folder

    root = _folders(tmp_path / "data")
    (root / "d1" / "sub").mkdir()
    (root / "d1" / "sub" / "x.bin").write_bytes(b"x")  # written just now: racily clean
    signed = check_folder(root).signatures
    assert set(signed) == {"d2"}  # d1 holds a folder; d1/sub a file of this second
    assert signed["d2"][1] == 2
    os.utime(root / "d1" / "sub" / "x.bin", (time.time() - 60, time.time() - 60))
    assert set(check_folder(root).signatures) == {"d2", "d1/sub"}
