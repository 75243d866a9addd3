"""Manifests as trees: build, read, look up, diff, split large directories, refuse hostile nodes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactstore.backends import open_backend
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.encoding import pack, unpack
from artifactstore.core.errors import IntegrityError, InvalidInputError, NotFoundError
from artifactstore.model import entries as entries_mod
from artifactstore.model import tree as tree_mod
from artifactstore.model.entries import INLINE_CHUNKS_MAX
from artifactstore.model.tree import (
    Change,
    Entry,
    FileEntry,
    Folder,
    ReferenceEntry,
    TreeSummary,
    build_tree,
    diff_trees,
    iter_entries,
    list_dir,
    lookup,
    path_key,
)
from artifactstore.objects.blobrefs import ChunkRef
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Kind
from artifactstore.objects.store import ObjectStore
from artifactstore.testing import BackendSpec, strategies


@pytest.fixture
def store(tmp_path: Path, memory_spec: BackendSpec) -> Iterator[ObjectStore]:
    backend = open_backend(memory_spec.url)
    with ObjectStore.open(backend, create=StoreConfig.new(), cache_dir=tmp_path / "cache") as s:
        yield s


class Blobs:
    """A dict of blobs with put/get counters: fast enough for Hypothesis and big trees."""

    def __init__(self) -> None:
        self.data: dict[Digest, bytes] = {}
        self.kinds: dict[Digest, Kind] = {}
        self.new = 0
        self.reads = 0

    def put(self, kind: Kind, data: bytes) -> Digest:
        blob_id = hash_bytes(data)
        if blob_id not in self.data:
            self.new += 1
            self.data[blob_id], self.kinds[blob_id] = data, kind
        return blob_id

    def get(self, blob_id: Digest) -> bytes:
        self.reads += 1
        return self.data[blob_id]


def fake_file(path: str, seed: int, size: int = 100, mode: int = 0o644) -> FileEntry:
    """An entry with a made-up digest and chunk (entries, not file data)."""
    digest = hash_bytes(seed.to_bytes(8, "little", signed=True))
    chunks = (ChunkRef(digest, size),) if size else ()
    return FileEntry(path, size, digest, chunks, mode)


def by_path(entries: Sequence[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: path_key(e.path))


def node(blobs: Blobs | ObjectStore, node_id: Digest) -> Any:
    data = blobs.get(node_id) if isinstance(blobs, Blobs) else blobs.read_blob(node_id)
    return unpack(data)


# -- round trips ------------------------------------------------------------------------


def test_round_trip_with_real_files(store: ObjectStore) -> None:
    contents = {
        "README.md": b"# hello\n",
        "empty.txt": b"",
        "bin/run.sh": b"#!/bin/sh\necho hi\n",
        "données/日本.txt": "こんにちは".encode(),
        "data/train/a.json": b'{"x": 1}',
        "data/train/b.json": b'{"x": 2}',
        "data/test/a.json": b'{"x": 1}',  # same bytes as train/a.json
        "data/big.bin": bytes(range(256)) * 4000,
    }
    entries: list[Entry] = [
        FileEntry.from_ref(
            path, store.write_bytes(data), mode=0o755 if path.endswith(".sh") else 0o644
        )
        for path, data in contents.items()
    ]
    entries.append(
        ReferenceEntry(
            "refs/raw.parquet",
            "s3://bucket/raw.parquet",
            1234,
            etag='"abc"',
            version_id="v7",
            digest=hash_bytes(b"raw"),
        )
    )
    entries.append(ReferenceEntry("refs/unknown", "https://example.com/x", None))
    summary = build_tree(entries, store.put_blob)
    store.flush()

    assert summary.files == len(entries)
    assert summary.size == sum(len(d) for d in contents.values()) + 1234
    read = list(iter_entries(summary.id, store.read_blob))
    assert read == by_path(entries)
    for entry in entries:
        assert lookup(summary.id, entry.path, store.read_blob) == entry
    for path, data in contents.items():
        found = lookup(summary.id, path, store.read_blob)
        assert isinstance(found, FileEntry)
        assert found.digest == hash_bytes(data)  # what b3sum prints
        assert store.read_file(found.file_ref()) == data
    script = lookup(summary.id, "bin/run.sh", store.read_blob)
    assert isinstance(script, FileEntry)
    assert script.mode == 0o755
    assert lookup(summary.id, "data/train/a.json", store.read_blob).media_type == (
        "application/json"
    )


def test_empty_artifact_is_a_valid_empty_root(store: ObjectStore) -> None:
    summary = build_tree([], store.put_blob)
    assert summary.size == summary.files == 0
    assert node(store, summary.id) == {"version": 1, "entries": []}
    assert list(iter_entries(summary.id, store.read_blob)) == []
    assert list(diff_trees(summary.id, summary.id, store.read_blob)) == []
    with pytest.raises(NotFoundError):
        lookup(summary.id, "a", store.read_blob)


def test_identical_subtrees_share_ids_and_a_rebuild_writes_nothing(store: ObjectStore) -> None:
    files = [fake_file(f"{top}/sub/f{i}", i) for top in ("x", "y") for i in range(5)]
    summary = build_tree(files, store.put_blob)
    root = node(store, summary.id)["entries"]
    assert root[0]["id"] == root[1]["id"]  # x/ and y/ hold the same entries
    before = store.stats.blobs_new
    assert build_tree(reversed(files), store.put_blob) == summary
    assert store.stats.blobs_new == before


def test_node_format(store: ObjectStore) -> None:
    digest = hash_bytes(b"x")
    summary = build_tree(
        [
            FileEntry("d/f.txt", 1, digest, (ChunkRef(digest, 1),), 0o100755, "text/plain"),
            ReferenceEntry("r", "gs://b/o", None),
        ],
        store.put_blob,
    )
    root = node(store, summary.id)
    assert root["version"] == 1
    directory, reference = root["entries"]
    assert reference == {
        "n": "r",
        "t": "r",
        "uri": "gs://b/o",
        "size": None,
        "mt": "application/octet-stream",
    }
    assert directory == {"n": "d", "t": "d", "id": directory["id"], "size": 1, "files": 1}
    assert node(store, Digest(directory["id"])) == {"version": 1, "entries": [
        {"n": "f.txt", "t": "f", "size": 1, "digest": digest.raw,
         "chunks": [[digest.raw, 1]], "mode": 0o755, "mt": "text/plain"},
    ]}  # fmt: skip


def test_entries_keep_permission_bits_and_guess_media_types() -> None:
    digest = hash_bytes(b"")
    assert FileEntry("a", 0, digest, (), mode=0o100755).mode == 0o755
    assert FileEntry("a", 0, digest, (), mode=0o600).mode == 0o600
    ref = fake_file("x", 1).file_ref()
    assert FileEntry.from_ref("cfg/model.json", ref).media_type == "application/json"
    assert FileEntry.from_ref("w.safetensors", ref).media_type == "application/octet-stream"
    assert FileEntry.from_ref("a.png", ref, media_type="x/y").media_type == "x/y"
    assert FileEntry.from_ref("a.png", ref, mode=0o755).file_ref() == ref
    with pytest.raises(InvalidInputError, match="do not add up"):
        FileEntry("a", 5, digest, (ChunkRef(digest, 4),))


def test_path_order_is_segment_by_segment() -> None:
    blobs = Blobs()
    files = [fake_file(p, i) for i, p in enumerate(["a-c", "a/b", "a.b", "Z", "é", "e", "a0"])]
    summary = build_tree(files, blobs.put)
    assert [e.path for e in iter_entries(summary.id, blobs.get)] == [
        "Z", "a/b", "a-c", "a.b", "a0", "e", "é",
    ]  # fmt: skip


def test_iter_entries_under_a_prefix() -> None:
    blobs = Blobs()
    files = [fake_file(p, i) for i, p in enumerate(["a/x", "a/y/z", "ab", "b"])]
    root = build_tree(files, blobs.put).id
    assert [e.path for e in iter_entries(root, blobs.get, "a")] == ["a/x", "a/y/z"]
    assert [e.path for e in iter_entries(root, blobs.get, "a/")] == ["a/x", "a/y/z"]
    assert [e.path for e in iter_entries(root, blobs.get, "a/y")] == ["a/y/z"]
    assert [e.path for e in iter_entries(root, blobs.get, "ab")] == ["ab"]
    with pytest.raises(NotFoundError):
        list(iter_entries(root, blobs.get, "c"))
    with pytest.raises(InvalidInputError):
        list(iter_entries(root, blobs.get, "../a"))


def test_list_dir_reads_one_folder_only() -> None:
    blobs = Blobs()
    files = [fake_file(p, i, size=10) for i, p in enumerate(["a/x", "a/y/z", "a/y/w", "ab", "b"])]
    files += [fake_file(f"big/f{i:04d}", i, size=1) for i in range(50)]
    root = build_tree(files, blobs.put, split_threshold=8).id  # big/ is a split directory
    blobs.reads = 0
    top = list(list_dir(root, "", blobs.get))
    assert blobs.reads == 1  # the root node: not a/ nor the fragments of big/
    assert top[0] == Folder("a", 30, 3)
    assert [i.path for i in top] == ["a", "ab", "b", "big"]
    assert top[3] == Folder("big", 50, 50)
    assert isinstance(top[1], FileEntry)
    assert list(list_dir(root, "a", blobs.get))[1:] == [Folder("a/y", 20, 2)]
    assert [e.path for e in list_dir(root, "a/y/", blobs.get)] == ["a/y/w", "a/y/z"]
    assert [e.path for e in list_dir(root, "big", blobs.get)] == \
        [f"big/f{i:04d}" for i in range(50)]
    for missing in ("c", "ab", "a/x"):  # absent, or a file
        with pytest.raises(NotFoundError, match="not a folder"):
            list(list_dir(root, missing, blobs.get))
    with pytest.raises(InvalidInputError):
        list(list_dir(root, "a/../b", blobs.get))


def test_lookup_misses() -> None:
    blobs = Blobs()
    root = build_tree([fake_file("a/b", 1)], blobs.put).id
    for missing in ("b", "a/c", "a/b/c", "0"):
        with pytest.raises(NotFoundError):
            lookup(root, missing, blobs.get)
    with pytest.raises(NotFoundError, match="directory"):
        lookup(root, "a", blobs.get)
    with pytest.raises(InvalidInputError):
        lookup(root, "a/../a/b", blobs.get)


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["a", "a"], "twice"),
        (["x/a", "x/a"], "twice"),
        (["a", "a/b"], "as a file and as a directory"),
        (["a/b/c", "a/b"], "as a file and as a directory"),
        (["ok", "../escape"], "'..'"),
        (["/abs"], "absolute"),
        (["a//b"], "empty segments"),
    ],
)
def test_build_refuses_bad_paths_duplicates_and_conflicts(paths: list[str], message: str) -> None:
    blobs = Blobs()
    with pytest.raises(InvalidInputError, match=message):
        build_tree([fake_file(p, i) for i, p in enumerate(paths)], blobs.put)


def test_build_refuses_non_entries() -> None:
    with pytest.raises(InvalidInputError, match="not str"):
        build_tree(["a.txt"], Blobs().put)  # type: ignore[list-item]


# Names from a small alphabet so that siblings, prefixes and conflicts are common.
_paths = strategies.paths()


def _without_conflicts(paths: list[str]) -> list[str]:
    keys = sorted(set(paths), key=path_key)
    kept: list[str] = []
    for path in keys:
        if not any(path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


@settings(max_examples=150, deadline=None)
@given(paths=st.lists(_paths, max_size=60), threshold=st.sampled_from([2, 3, 8, 2048]))
def test_random_paths_round_trip_in_sorted_order(paths: list[str], threshold: int) -> None:
    blobs = Blobs()
    files = [fake_file(p, i, size=i % 3) for i, p in enumerate(_without_conflicts(paths))]
    summary = build_tree(files[::-1], blobs.put, split_threshold=threshold)
    read = list(iter_entries(summary.id, blobs.get))
    assert read == by_path(files)
    assert [e.path for e in read] == sorted((e.path for e in read), key=lambda p: [
        s.encode() for s in p.split("/")
    ])  # fmt: skip
    assert (summary.files, summary.size) == (len(files), sum(f.size for f in files))
    for entry in files[:5]:
        assert lookup(summary.id, entry.path, blobs.get) == entry


# -- large directories and large files ---------------------------------------------------


def test_large_directory_is_split_and_nested() -> None:
    blobs = Blobs()
    files = [fake_file(f"big/f{i:05}", i) for i in range(3000)] + [fake_file("z", 1)]
    summary = build_tree(files, blobs.put, split_threshold=16)
    big = node(blobs, Digest(node(blobs, summary.id)["entries"][0]["id"]))
    assert "split" in big
    assert len(big["split"]) <= 16
    child = node(blobs, Digest(big["split"][0][1]))
    assert "split" in child  # 3,000 entries at 16 a node need more than one split level
    assert all(
        len(n.get("entries", n.get("split"))) <= 16 for n in map(unpack, blobs.data.values())
    )
    assert list(iter_entries(summary.id, blobs.get)) == by_path(files)
    for entry in files[::97]:
        assert lookup(summary.id, entry.path, blobs.get) == entry
    with pytest.raises(NotFoundError):
        lookup(summary.id, "big/f00000x", blobs.get)
    with pytest.raises(NotFoundError):
        lookup(summary.id, "big/a", blobs.get)  # sorts before the first fragment


def test_split_root_directory() -> None:
    blobs = Blobs()
    files = [fake_file(f"{i:04}", i) for i in range(500)]
    summary = build_tree(files, blobs.put, split_threshold=32)
    assert "split" in node(blobs, summary.id)
    assert list(iter_entries(summary.id, blobs.get)) == files
    assert lookup(summary.id, "0250", blobs.get) == files[250]


def test_module_threshold_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_mod, "SPLIT_THRESHOLD", 4)
    blobs = Blobs()
    summary = build_tree([fake_file(f"f{i}", i) for i in range(10)], blobs.put)
    assert "split" in node(blobs, summary.id)


def test_insert_or_delete_in_a_split_directory_rewrites_few_nodes() -> None:
    blobs = Blobs()
    files = [fake_file(f"flat/f{i:06}", i) for i in range(0, 40_000, 2)]
    summary = build_tree(files, blobs.put, split_threshold=64)
    top = node(blobs, Digest(node(blobs, summary.id)["entries"][0]["id"]))
    child = node(blobs, Digest(top["split"][0][1]))
    assert "split" in node(blobs, Digest(child["split"][0][1]))  # fragments + 3 split levels
    counts = []
    for i in range(1, 40_000, 8000):  # insert one name at five places, one at a time
        blobs.new = 0
        build_tree([*files, fake_file(f"flat/f{i:06}", i)], blobs.put, split_threshold=64)
        counts.append(blobs.new)
    for k in range(7, 20_000, 4000):  # and delete one
        blobs.new = 0
        build_tree(files[:k] + files[k + 1 :], blobs.put, split_threshold=64)
        counts.append(blobs.new)
    # On the path: fragment, 2 split nodes, top split node, root = 5 nodes. A new name
    # that is a boundary splits its fragment in two, and the new fragment's first name
    # may be a boundary one level up, so: 2 per level below the top, + top + root = 8.
    assert max(counts) <= 8
    assert sorted(counts)[len(counts) // 2] == 5  # typically just the path
    assert sum(counts) < 0.01 * len(blobs.data) * len(counts)


def test_huge_chunk_list_is_stored_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entries_mod, "CHUNKLIST_MODULUS", 64)
    blobs = Blobs()
    chunks = tuple(ChunkRef(hash_bytes(i.to_bytes(4, "little")), 1000 + i) for i in range(5000))
    digest = hash_bytes(b"whole file")
    big = FileEntry("model.bin", sum(c.length for c in chunks), digest, chunks)
    small = FileEntry(
        "small.bin", 1000 * INLINE_CHUNKS_MAX, digest, (ChunkRef(digest, 1000),) * INLINE_CHUNKS_MAX
    )
    summary = build_tree([big, small], blobs.put)
    record, small_record = node(blobs, summary.id)["entries"]
    assert "chunks" not in record
    parts = record["chunklist"]
    assert len(parts) > 10
    assert sum(p[1] for p in parts) == 5000
    assert {blobs.kinds[Digest(p[0])] for p in parts} == {Kind.CHUNKLIST}
    assert len(small_record["chunks"]) == INLINE_CHUNKS_MAX
    assert lookup(summary.id, "model.bin", blobs.get) == big
    assert list(iter_entries(summary.id, blobs.get)) == [big, small]
    # An edit early in the file leaves later parts as they were (content-defined).
    edited = FileEntry(
        "model.bin", big.size + 1, digest, (ChunkRef(digest, chunks[0].length + 1), *chunks[1:])
    )
    blobs.new = 0
    build_tree([edited, small], blobs.put)
    assert blobs.new == 2  # the first part and the root


@pytest.mark.slow
def test_100k_files_with_10_changed_write_few_nodes(store: ObjectStore) -> None:
    files = [
        fake_file(f"dirs/d{d:03}/f{i:04}.bin", d * 1000 + i)
        for d in range(100)
        for i in range(1000)
    ]
    files += [fake_file(f"flat/f{i:06}.bin", 10**6 + i) for i in range(100_000)]
    first = build_tree(files, store.put_blob)
    assert first.files == 200_000
    changed = list(files)
    picks = [i * 20_011 % 100_000 for i in range(5)] + [100_000 + i * 19_997 for i in range(5)]
    for n, i in enumerate(picks):
        changed[i] = fake_file(files[i].path, -1 - n)
    before = store.stats.blobs_new
    second = build_tree(changed, store.put_blob)
    new_nodes = store.stats.blobs_new - before
    # Modifications move no fragment boundary (they depend on names only), so each
    # changed file rewrites exactly the nodes on its path: root, dirs/, dNNN/ or
    # root, flat/ (split node), its fragment. Depth 3: at most 10 * 3.
    assert new_nodes <= 10 * 3
    assert new_nodes == 13  # measured: root, dirs/, 5 dNNN/, flat/, 5 fragments
    store.flush()
    reads = 0

    def counting_read(blob_id: Digest) -> bytes:
        nonlocal reads
        reads += 1
        return store.read_blob(blob_id)

    changes = list(diff_trees(first.id, second.id, counting_read))
    assert [c.path for c in changes] == sorted(files[i].path for i in picks)
    assert {c.kind for c in changes} == {"modified"}
    assert reads == 2 * new_nodes  # only the changed nodes, on both sides


# -- diff ---------------------------------------------------------------------------------


def _diff(
    blobs: Blobs, old: Sequence[Entry], new: Sequence[Entry], threshold: int = 2048
) -> list[Change]:
    a = build_tree(old, blobs.put, split_threshold=threshold).id
    b = build_tree(new, blobs.put, split_threshold=threshold).id
    blobs.reads = 0
    return list(diff_trees(a, b, blobs.get))


def test_diff_added_removed_modified_across_nested_dirs() -> None:
    blobs = Blobs()
    same = [fake_file(f"keep/{i}/f", i) for i in range(20)]
    old = [
        *same,
        fake_file("a/b/c", 1),
        fake_file("a/b/d", 2),
        fake_file("gone/x", 3),
        fake_file("m", 4),
        fake_file("exe", 5),
    ]
    new = [
        *same,
        fake_file("a/b/c", 1),
        fake_file("a/b/d", 22),
        fake_file("a/new/y", 6),
        fake_file("m", 4, size=7),
        fake_file("exe", 5, mode=0o755),
        fake_file("z", 9),
    ]
    changes = _diff(blobs, old, new)
    assert [(c.path, c.kind) for c in changes] == [
        ("a/b/d", "modified"), ("a/new/y", "added"), ("exe", "modified"),
        ("gone/x", "removed"), ("m", "modified"), ("z", "added"),
    ]  # fmt: skip
    removed = changes[3]
    assert removed.old == fake_file("gone/x", 3)
    assert removed.new is None
    added = changes[1]
    assert added.old is None
    assert added.new == fake_file("a/new/y", 6)
    # Read: both roots, both a/, both a/b/, new a/new/, old gone/. Never keep/.
    assert blobs.reads == 8


def test_diff_skips_identical_subtrees_unread() -> None:
    blobs = Blobs()
    same = [fake_file(f"keep/{i}/{j}", i * 10 + j) for i in range(30) for j in range(10)]
    changes = _diff(blobs, [*same, fake_file("x", 1)], [*same, fake_file("x", 2)])
    assert [c.path for c in changes] == ["x"]
    assert blobs.reads == 2  # the two roots only
    assert _diff(blobs, same, same) == []
    assert blobs.reads == 0


def test_diff_file_becomes_directory_and_back() -> None:
    blobs = Blobs()
    old = [fake_file("a", 1), fake_file("b/x", 2), fake_file("b/y", 3)]
    new = [fake_file("a/inner", 4), fake_file("b", 5)]
    assert [(c.path, c.kind) for c in _diff(blobs, old, new)] == [
        ("a", "removed"), ("a/inner", "added"), ("b", "added"), ("b/x", "removed"),
        ("b/y", "removed"),
    ]  # fmt: skip


def test_diff_same_bytes_chunked_differently_is_no_change() -> None:
    blobs = Blobs()
    digest = hash_bytes(b"content")
    one = FileEntry("f", 10, digest, (ChunkRef(hash_bytes(b"1"), 10),))
    two = FileEntry("f", 10, digest, (ChunkRef(hash_bytes(b"2"), 4), ChunkRef(digest, 6)))
    assert _diff(blobs, [one], [two]) == []
    ref_old = ReferenceEntry("r", "s3://b/k", 5, etag="1")
    ref_new = ReferenceEntry("r", "s3://b/k", 5, etag="2")
    assert [c.kind for c in _diff(blobs, [ref_old], [ref_new])] == ["modified"]


def test_diff_of_split_directories_reads_only_changed_fragments() -> None:
    blobs = Blobs()
    old = [fake_file(f"big/f{i:05}", i) for i in range(0, 20_000, 2)]
    new = list(old)
    new[1234] = fake_file(new[1234].path, -1)
    new.append(fake_file("big/f07777", 7777))
    del new[4000]
    changes = _diff(blobs, old, new, threshold=64)
    assert [(c.path, c.kind) for c in changes] == [
        ("big/f02468", "modified"),
        ("big/f07777", "added"),
        ("big/f08000", "removed"),
    ]
    # Two roots, and on each side one path of split nodes down to at most a few
    # fragments: far fewer than the ~1,250 nodes of a full walk.
    assert blobs.reads <= 30


@settings(max_examples=60, deadline=None)
@given(
    old=st.lists(_paths, max_size=40),
    new=st.lists(_paths, max_size=40),
    threshold=st.sampled_from([2, 4, 2048]),
)
def test_diff_matches_a_dict_model(old: list[str], new: list[str], threshold: int) -> None:
    old_files = [fake_file(p, len(p) % 3) for p in _without_conflicts(old)]
    new_files = [fake_file(p, len(p) % 2) for p in _without_conflicts(new)]
    before = {e.path: e for e in old_files}
    after = {e.path: e for e in new_files}
    expected = []
    for path in sorted(before.keys() | after.keys(), key=path_key):
        if path not in after:
            expected.append((path, "removed"))
        elif path not in before:
            expected.append((path, "added"))
        elif before[path] != after[path]:
            expected.append((path, "modified"))
    got = _diff(Blobs(), list(old_files), list(new_files), threshold)
    assert [(c.path, c.kind) for c in got] == expected


# -- hostile and damaged nodes -------------------------------------------------------------


def _file_record(name: str, size: int = 1) -> dict[str, Any]:
    digest = hash_bytes(name.encode()).raw
    return {
        "n": name,
        "t": "f",
        "size": size,
        "digest": digest,
        "chunks": [[digest, size]] if size else [],
        "mode": 0o644,
        "mt": "text/plain",
    }


def _tree_with(records: list[Any], key: str = "entries") -> tuple[Blobs, Digest, Digest]:
    """A root with a valid file, then a directory 'd' whose node holds ``records``."""
    blobs = Blobs()
    inner = blobs.put(Kind.TREE, pack({"version": 1, key: records}))
    size = sum(r.get("size", 0) or 0 for r in records if isinstance(r, dict))
    root = blobs.put(Kind.TREE, pack({"version": 1, "entries": [
        _file_record("a"),
        {"n": "d", "t": "d", "id": inner.raw, "size": size, "files": max(1, len(records))},
    ]}))  # fmt: skip
    return blobs, root, inner


HOSTILE = [
    ([_file_record("..")], "'..'"),
    ([_file_record(".")], "'.'"),
    ([_file_record("etc/passwd")], "'/'"),
    ([_file_record("/")], "'/'"),
    ([_file_record("")], "empty"),
    ([_file_record("a\\b")], "backslash"),
    ([_file_record("a\x00")], "NUL"),
    ([_file_record("x" * 300)], "255-byte"),
    ([_file_record("b"), _file_record("a")], "strictly sorted"),
    ([_file_record("a"), _file_record("a")], "strictly sorted"),
    ([{**_file_record("a"), "t": "x"}], "unknown type"),
    ([{**_file_record("a"), "n": 7}], "must be a str"),
    ([{**_file_record("a"), "size": 2}], "do not add up"),
    ([{**_file_record("a"), "mode": 0o4755}], "mode"),
    ([{**_file_record("a"), "digest": b"short"}], "32 bytes"),
    ([{**_file_record("a"), "chunks": [[b"x" * 32, 0]]}], "length > 0"),
    ([{k: v for k, v in _file_record("a").items() if k != "chunks"}], "'chunks' or"),
    ([{"n": "s", "t": "d", "id": b"x" * 32, "size": 0, "files": 0}], "holds no files"),
    (["not a map"], "must be a map"),
]


@pytest.mark.parametrize(("records", "message"), HOSTILE)
def test_hostile_node_is_refused_naming_it(records: list[Any], message: str) -> None:
    blobs, root, inner = _tree_with(records)
    with pytest.raises(IntegrityError, match=message) as info:
        list(iter_entries(root, blobs.get))
    assert inner.hex in str(info.value)


def test_hostile_name_is_refused_by_lookup_and_diff() -> None:
    blobs, root, inner = _tree_with([_file_record("..")])
    with pytest.raises(IntegrityError, match=inner.hex):
        lookup(root, "d/x", blobs.get)
    other = build_tree([fake_file("a", 1)], blobs.put).id
    with pytest.raises(IntegrityError, match=inner.hex):
        list(diff_trees(other, root, blobs.get))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": 2, "entries": []}, "version-1"),
        ({"version": True, "entries": []}, "version-1"),
        ({"entries": []}, "version-1"),
        ({"version": 1}, "exactly one"),
        ({"version": 1, "entries": [], "split": []}, "exactly one"),
        ({"version": 1, "entries": {}}, "array"),
        ({"version": 1, "split": []}, "without children"),
        ([1, 2], "version-1"),
    ],
)
def test_malformed_node_is_refused(body: Any, message: str) -> None:
    blobs = Blobs()
    root = blobs.put(Kind.TREE, pack(body))
    with pytest.raises(IntegrityError, match=message):
        list(iter_entries(root, blobs.get))


def test_totals_must_match_what_the_parent_declares() -> None:
    blobs = Blobs()
    inner = blobs.put(Kind.TREE, pack({"version": 1, "entries": [_file_record("f", 5)]}))
    root = blobs.put(Kind.TREE, pack({"version": 1, "entries": [
        {"n": "d", "t": "d", "id": inner.raw, "size": 4, "files": 1},
    ]}))  # fmt: skip
    with pytest.raises(IntegrityError, match="its parent says"):
        list(iter_entries(root, blobs.get))


def test_split_child_must_hold_the_names_its_parent_says() -> None:
    blobs = Blobs()
    one = blobs.put(Kind.TREE, pack({"version": 1, "entries": [_file_record("a")]}))
    two = blobs.put(Kind.TREE, pack({"version": 1, "entries": [_file_record("m")]}))
    three = blobs.put(Kind.TREE, pack({"version": 1, "entries": [
        _file_record("a"), _file_record("n"),
    ]}))  # fmt: skip
    for split in (
        [["b", one.raw, 1, 1], ["m", two.raw, 1, 1]],  # first name disagrees
        [["a", one.raw, 1, 1], ["a0", two.raw, 1, 1]],  # 'm' is in the wrong fragment
        [["a", two.raw, 1, 1], ["b", one.raw, 1, 1]],  # fragments out of order
        [["a", one.raw, 1, 1], ["a", two.raw, 1, 1]],  # duplicate first names
        [["..", one.raw, 1, 1]],
        [["a", three.raw, 2, 2], ["m", two.raw, 1, 1]],  # 'n' overlaps the next fragment
    ):
        root = blobs.put(Kind.TREE, pack({"version": 1, "split": split}))
        with pytest.raises(IntegrityError):
            list(iter_entries(root, blobs.get))
    good = blobs.put(Kind.TREE, pack({"version": 1, "split": [
        ["a", one.raw, 1, 1], ["m", two.raw, 1, 1],
    ]}))  # fmt: skip
    assert [e.path for e in iter_entries(good, blobs.get)] == ["a", "m"]


def test_deep_paths_need_no_recursion() -> None:
    blobs = Blobs()
    deep = "/".join(["d"] * 1500) + "/f"  # 3,001 bytes: valid, deeper than Python's stack
    summary = build_tree([fake_file(deep, 1), fake_file("g", 2)], blobs.put)
    assert [e.path for e in iter_entries(summary.id, blobs.get)] == [deep, "g"]
    assert lookup(summary.id, deep, blobs.get) == fake_file(deep, 1)
    other = build_tree([fake_file(deep, 3)], blobs.put)
    assert [(c.path, c.kind) for c in diff_trees(summary.id, other.id, blobs.get)] == [
        (deep, "modified"),
        ("g", "removed"),
    ]


def test_summary_is_a_value() -> None:
    summary = build_tree([], Blobs().put)
    assert isinstance(summary, TreeSummary)
    with pytest.raises(AttributeError):
        summary.size = 3  # type: ignore[misc]


# -- the one-pass decoding of a plain file record (entries.decode_plain_file) ------------

_FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 1 << 40), st.sampled_from([0o644, 0o777, 0o1000]),
    st.binary(min_size=0, max_size=33), st.sampled_from(["f", "r", "d", "text/plain", ""]),
    st.lists(st.one_of(
        st.tuples(st.binary(min_size=31, max_size=33), st.integers(-1, 300)).map(list),
        st.integers(), st.binary(max_size=4),
    ), max_size=3),
)


@st.composite
def _file_records(draw: st.DrawFn) -> dict[str, Any]:
    """Valid file records, and records with one field changed, dropped or added."""
    size = draw(st.integers(0, 300))
    record: dict[str, Any] = {"n": "x", "t": "f", "mt": "text/plain", "mode": 0o640,
                              "size": size, "digest": b"d" * 32,
                              "chunks": [[b"c" * 32, size]] if size else []}
    change = draw(st.sampled_from(["none", "set", "drop", "chunklist"]))
    key = draw(st.sampled_from(sorted(record)))
    if change == "set":
        record[key] = draw(_FIELD_VALUES)
    elif change == "drop":
        del record[key]
    elif change == "chunklist":
        record["chunklist"] = [[b"p" * 32, 1, size]]
    return record


@settings(max_examples=400, deadline=None)
@given(_file_records())
def test_the_one_pass_file_decoder_agrees_with_decode_entry(record: dict[str, Any]) -> None:
    """It decodes what decode_entry decodes to a file listing its chunks, the same, and
    gives up (None) on anything else, so that decode_entry reports every fault."""
    fast = entries_mod.decode_plain_file("a/x", record)
    try:
        slow: Entry | None = entries_mod.decode_entry("a/x", record, lambda _: b"", "node n")
    except IntegrityError:
        slow = None
    if fast is not None:
        assert fast == slow
        assert isinstance(slow, FileEntry)
        assert type(fast.chunks) is tuple
        assert fast.file_ref() == slow.file_ref()
    elif slow is not None:
        assert not isinstance(slow, FileEntry) or "chunklist" in record
