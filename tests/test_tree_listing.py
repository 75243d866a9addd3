"""Listing a version reads tree records only: a huge file's chunk list stays unread."""

from __future__ import annotations

import pytest

from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import NotFoundError
from artifactstore.model import entries as entries_mod
from artifactstore.model.tree import (
    FileEntry,
    Folder,
    Listed,
    ReferenceEntry,
    build_tree,
    iter_entries,
    iter_listed,
    list_dir_listed,
)
from artifactstore.objects.blobrefs import ChunkRef
from artifactstore.objects.envelope import Kind


class Blobs:
    def __init__(self) -> None:
        self.data: dict[Digest, tuple[Kind, bytes]] = {}
        self.read: list[Kind] = []

    def put(self, kind: Kind, data: bytes) -> Digest:
        blob_id = hash_bytes(kind.name.encode() + data)
        self.data[blob_id] = (kind, data)
        return blob_id

    def get(self, blob_id: Digest) -> bytes:
        kind, data = self.data[blob_id]
        self.read.append(kind)
        return data


def test_huge_file_is_listed_without_its_chunk_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entries_mod, "INLINE_CHUNKS_MAX", 4)
    monkeypatch.setattr(entries_mod, "CHUNKLIST_MODULUS", 2)
    chunks = tuple(ChunkRef(hash_bytes(i.to_bytes(4, "little")), 100) for i in range(50))
    huge = FileEntry("big/huge.bin", 5000, hash_bytes(b"huge"), chunks)
    small = FileEntry("big/small.txt", 3, hash_bytes(b"s"), (ChunkRef(hash_bytes(b"c"), 3),),
                      media_type="text/plain")
    ref = ReferenceEntry("ref.csv", "s3://b/k", None)
    blobs = Blobs()
    root = build_tree([huge, small, ref], blobs.put).id
    assert sum(kind == Kind.CHUNKLIST for kind, _ in blobs.data.values()) > 1

    listed = list(iter_listed(root, blobs.get))
    assert listed == [
        Listed("big/huge.bin", "file", 5000, huge.digest, "application/octet-stream"),
        Listed("big/small.txt", "file", 3, small.digest, "text/plain"),
        Listed("ref.csv", "reference", None, None, "application/octet-stream"),
    ]
    assert list(list_dir_listed(root, "", blobs.get)) == [Folder("big", 5003, 2), listed[2]]
    assert list(list_dir_listed(root, "big/", blobs.get)) == listed[:2]
    assert Kind.CHUNKLIST not in blobs.read
    # the entries still carry every chunk (read when asked for)
    first = next(iter_entries(root, blobs.get))
    assert isinstance(first, FileEntry)
    assert first.chunks == chunks
    assert Kind.CHUNKLIST in blobs.read
    with pytest.raises(NotFoundError):
        list(list_dir_listed(root, "ref.csv", blobs.get))


def _file(path: str, seed: bytes) -> FileEntry:
    return FileEntry(path, 1, hash_bytes(seed), (ChunkRef(hash_bytes(seed), 1),))


def test_diff_of_one_folder_reads_that_folder_only() -> None:
    from artifactstore.model.tree import diff_trees

    blobs = Blobs()
    old = [_file(f"d{d}/f{i}", b"%d-%d" % (d, i)) for d in range(20) for i in range(5)]
    new = [e for e in old if e.path != "d3/f1"] + [_file("d3/f9", b"new"), _file("d4/f0", b"x")]
    new = [e for e in new if e.path != "d4/f0" or e.digest == hash_bytes(b"x")]
    a, b = build_tree(old, blobs.put).id, build_tree(new, blobs.put).id
    blobs.read.clear()
    assert [(c.path, c.kind) for c in diff_trees(a, b, blobs.get, "d3")] == [
        ("d3/f1", "removed"), ("d3/f9", "added")]
    assert len(blobs.read) == 4  # the two roots and the two d3 nodes
    assert [(c.path, c.kind) for c in diff_trees(a, b, blobs.get, "d4/")] == [
        ("d4/f0", "modified")]
    assert list(diff_trees(a, b, blobs.get, "d5")) == []
    gone = build_tree([e for e in new if not e.path.startswith("d3/")], blobs.put).id
    assert [c.kind for c in diff_trees(a, gone, blobs.get, "d3")] == ["removed"] * 5
    assert [c.kind for c in diff_trees(gone, a, blobs.get, "d3")] == ["added"] * 5
