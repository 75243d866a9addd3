"""Reading trees: entries, one folder's listing, one path's entry (docs/design.md, "Trees").

The read side of :mod:`artifactstore.model.tree` (which re-exports every name here):
walking a tree in path order, listing one folder from its nodes alone, finding one
path, and the bounded read-ahead of nodes a restore walks with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from artifactstore.core.digest import Digest
from artifactstore.core.errors import ArtifactStoreError, IntegrityError, NotFoundError
from artifactstore.model._nodes import (
    Child,
    DirCursor,
    DirItem,
    RecordItem,
    decode_node,
    find,
    join,
    walk_dir,
    walk_records,
)
from artifactstore.model.entries import (
    Entry,
    GetBlob,
    digest_field,
    uint_field,
)
from artifactstore.model.paths import path_key, validate_path

__all__ = [
    "PREFETCH_BUDGET", "REFILL_BUDGET", "Folder", "Listed", "iter_entries", "iter_listed",
    "list_dir", "list_dir_listed", "lookup", "prefetching_reader",
]  # fmt: skip


# -- reading -----------------------------------------------------------------------------


def iter_entries(root: Digest, get_blob: GetBlob, prefix: str = "") -> Iterator[Entry]:
    """Every entry under ``root`` (or under directory ``prefix``) in path order, streamed.

    Paths are full paths from the root. A ``prefix`` naming a file yields that
    entry; one naming nothing raises NotFoundError. Nodes are checked as they
    are read (IntegrityError naming the node on damaged or hostile content).
    """
    if not prefix:
        yield from walk_dir("", root, None, get_blob)
        return
    directory = prefix[:-1] if prefix.endswith("/") else prefix
    item = find(root, path_key(validate_path(directory)), get_blob)
    if item is None:
        raise NotFoundError(f"{directory!r} is not in the artifact (tree {root.hex})")
    if isinstance(item, DirItem):
        yield from walk_dir(directory, item.id, (item.size, item.files), get_blob)
    else:
        yield item.entry(directory, get_blob)


@dataclass(frozen=True, slots=True)
class Folder:
    """A subdirectory as :func:`list_dir` lists it: its full path and its totals."""

    path: str
    size: int
    files: int


def list_dir(root: Digest, directory: str, get_blob: GetBlob) -> Iterator[Entry | Folder]:
    """The items right inside ``directory`` ("" is the root) in name order, streamed:
    files and references as entries, subdirectories as :class:`Folder` (not walked), so
    one folder of a million-file tree is listed by reading that folder's nodes only.
    NotFoundError if ``directory`` (a trailing ``/`` allowed) is absent or a file."""
    for path, found in _dir_items(root, directory, get_blob):
        if isinstance(found, DirItem):
            yield Folder(path, found.size, found.files)
        else:
            yield found.entry(path, get_blob)


def _dir_items(
    root: Digest, directory: str, get_blob: GetBlob
) -> Iterator[tuple[str, DirItem | RecordItem]]:
    node_id, expected = root, None
    directory = directory[:-1] if directory.endswith("/") else directory
    if directory:
        item = find(root, path_key(validate_path(directory)), get_blob)
        if not isinstance(item, DirItem):
            raise NotFoundError(f"{directory!r} is not a folder of the artifact (tree {root.hex})")
        node_id, expected = item.id, (item.size, item.files)
    cursor = DirCursor(get_blob, node_id, expected)
    while (found := cursor.next_entry()) is not None:
        yield join(directory, found.name, node_id), found


@dataclass(frozen=True, slots=True)
class Listed:
    """A file (``kind`` "file") or reference ("reference") as a listing shows it, read
    from its tree record alone: a huge file's chunk list (its CHUNKLIST parts, about 16
    per GiB) is not read, so listing a 20 GiB file costs what listing a small one does.
    ``size`` is None for a reference of unknown size; ``digest`` None when not known."""

    path: str
    kind: str
    size: int | None
    digest: Digest | None
    media_type: str


def _listed(path: str, item: RecordItem) -> Listed:
    record, what = item.record, f"tree node {item.node.hex}"
    media_type = record.get("mt")
    if type(media_type) is not str:
        raise IntegrityError(f"{what}: field 'mt' must be a str")
    size = record.get("size")
    digest = record.get("digest")
    if record.get("t") == "f":
        return Listed(path, "file", uint_field(size, "size", what),
                      digest_field(digest, "digest", what), media_type)
    return Listed(path, "reference", None if size is None else uint_field(size, "size", what),
                  None if digest is None else digest_field(digest, "digest", what), media_type)


def iter_listed(root: Digest, get_blob: GetBlob) -> Iterator[Listed]:
    """Every file and reference of the tree in path order, as :class:`Listed` rows."""
    for path, item in walk_records("", root, None, get_blob):
        yield _listed(path, item)


def list_dir_listed(root: Digest, directory: str, get_blob: GetBlob) -> Iterator[Listed | Folder]:
    """:func:`list_dir` with files and references as :class:`Listed` rows."""
    for path, found in _dir_items(root, directory, get_blob):
        yield Folder(path, found.size, found.files) if isinstance(found, DirItem) else \
            _listed(path, found)


#: bytes of tree nodes :func:`prefetching_reader` reads ahead when it starts
PREFETCH_BUDGET: Final = 16 << 20
#: bytes it reads ahead from a node the walk reached before it was read
REFILL_BUDGET: Final = 4 << 20


def prefetching_reader(
    root: Digest,
    get_many: Callable[[list[Digest]], Iterable[tuple[Digest, bytes]]],
    get_one: GetBlob,
    budget: int = PREFETCH_BUDGET,
) -> GetBlob:
    """A ``get_blob`` for walking the tree under ``root`` once, in path order, that reads
    its nodes level by level with ``get_many`` (one batched read per level instead of
    one per node).

    It reads up to ``budget`` bytes of nodes under ``root`` at once, and hands each
    node out once, then lets it go: a walk reads a node once (a second read goes to
    ``get_one``), so what it holds shrinks as the walk goes. A node the walk reaches
    before it was read is read with the nodes under it the same way, up to
    :data:`REFILL_BUDGET` (``budget`` if smaller). Memory stays within about
    ``budget`` plus a refill per directory level, however big the tree (a million
    files: ~110 MB of nodes). Every node is still checked by the walk itself; chunk
    lists are read with ``get_one``.
    """
    held: dict[bytes, bytes] = {}

    def read_ahead(start: Digest, limit: int) -> None:
        used = 0
        level = [start]
        try:
            while level and used < limit:
                following: dict[bytes, Digest] = {}
                for node_id, data in get_many(level):
                    held[node_id.raw] = data
                    used += len(data)
                    for item in decode_node(node_id, data, None):
                        if isinstance(item, DirItem | Child) and item.id.raw not in held:
                            following[item.id.raw] = item.id
                    if used >= limit:
                        break  # the rest of this level is read when the walk gets there
                level = list(following.values())
        except ArtifactStoreError:
            pass  # damage: the walk reads that node itself and reports it with its path

    read_ahead(root, budget)
    refill = min(budget, REFILL_BUDGET)
    given: set[bytes] = set()  # nodes handed out (a few thousand ids at a million files)

    def get_blob(blob_id: Digest) -> bytes:
        data = held.pop(blob_id.raw, None)
        if data is None and blob_id.raw not in given:
            read_ahead(blob_id, refill)  # a chunk list is read alone: it names no nodes
            data = held.pop(blob_id.raw, None)
        if data is None:
            return get_one(blob_id)
        given.add(blob_id.raw)
        return data

    return get_blob


def lookup(root: Digest, path: str, get_blob: GetBlob) -> Entry:
    """The entry at ``path``: NotFoundError if absent or a directory."""
    item = find(root, path_key(validate_path(path)), get_blob)
    if item is None:
        raise NotFoundError(f"{path!r} is not in the artifact (tree {root.hex})")
    if isinstance(item, DirItem):
        raise NotFoundError(f"{path!r} is a directory in the artifact, not a file")
    return item.entry(path, get_blob)
