"""The tree reader of downloads (``model.tree.prefetching_reader``): batched reads of a
tree's nodes with memory bounded by its budget, not by the tree's size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.model.entries import FileEntry
from artifactstore.model.tree import build_tree, iter_entries, prefetching_reader
from artifactstore.objects.blobrefs import ChunkRef
from artifactstore.objects.envelope import Kind


class CountingBlobs:
    """Blobs in a dict; counts the batched and single reads and the bytes read out
    but not yet handed to the walk (what the reader holds)."""

    def __init__(self) -> None:
        self.data: dict[Digest, bytes] = {}
        self.batches = 0
        self.singles = 0
        self.read_ahead = 0
        self.most_held = 0

    def put(self, kind: Kind, data: bytes) -> Digest:
        blob_id = hash_bytes(data)
        self.data[blob_id] = data
        return blob_id

    def get_many(self, ids: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        self.batches += 1
        for blob_id in ids:
            data = self.data[blob_id]
            self.read_ahead += len(data)
            self.most_held = max(self.most_held, self.read_ahead)
            yield blob_id, data

    def get_one(self, blob_id: Digest) -> bytes:
        self.singles += 1
        self.read_ahead += len(self.data[blob_id])  # handed out at once
        return self.data[blob_id]


def files(folders: int, per_folder: int) -> list[FileEntry]:
    out = []
    for i in range(folders * per_folder):
        digest = hash_bytes(i.to_bytes(8, "little"))
        out.append(FileEntry(f"d{i // per_folder:03d}/f{i:06d}.bin", 10, digest,
                             (ChunkRef(digest, 10),), 0o644))
    return out


def walk(blobs: CountingBlobs, root: Digest, budget: int) -> list[str]:
    reader = prefetching_reader(root, blobs.get_many, blobs.get_one, budget)

    def handed(blob_id: Digest) -> bytes:
        data = reader(blob_id)
        blobs.read_ahead -= len(data)
        return data

    return [e.path for e in iter_entries(root, handed)]


def test_a_tree_bigger_than_the_budget_is_walked_whole_with_bounded_reads_ahead() -> None:
    blobs = CountingBlobs()
    entries = files(40, 300)  # 40 folders of 300 files: ~40 nodes of ~30 KB
    root = build_tree(entries, blobs.put, split_threshold=64).id
    total = sum(len(d) for d in blobs.data.values())
    budget = 64 << 10
    assert total > 10 * budget

    assert walk(blobs, root, budget) == [e.path for e in entries]
    # every node came from a batched read, none read twice, and the reader never
    # held more than its budget and one refill (the walk is two levels deep here)
    assert blobs.singles == 0
    assert blobs.read_ahead == 0
    assert blobs.most_held <= 3 * budget
    assert blobs.batches < len(blobs.data)


def test_a_small_tree_is_read_in_one_batch_per_level() -> None:
    blobs = CountingBlobs()
    entries = files(5, 10)
    root = build_tree(entries, blobs.put).id
    assert walk(blobs, root, 1 << 20) == [e.path for e in entries]
    assert (blobs.batches, blobs.singles) == (2, 0)  # the root, then its 5 folders


def test_a_node_read_again_is_read_alone() -> None:
    blobs = CountingBlobs()
    entries = files(3, 4)
    root = build_tree(entries, blobs.put).id
    reader = prefetching_reader(root, blobs.get_many, blobs.get_one)
    assert [e.path for e in iter_entries(root, reader)] == [e.path for e in entries]
    batches = blobs.batches
    assert [e.path for e in iter_entries(root, reader)] == [e.path for e in entries]
    assert blobs.batches == batches  # no second read-ahead of the whole tree
    assert blobs.singles == 4  # the root and the three folders, one read each
