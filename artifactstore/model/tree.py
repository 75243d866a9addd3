"""Manifests as trees: a set of entries as content-addressed directory nodes, and back.

Implements docs/design.md, "Trees". Vocabulary (see also ``_nodes``): a tree
is built bottom-up from entries, one ``TREE`` blob per directory, so identical
subtrees get identical ids and an unchanged directory of a new version writes
nothing new. A directory with more than :data:`SPLIT_THRESHOLD` entries is
*split*: its entries are cut into *fragments* at content-defined boundaries (a
name ends a fragment when the first 8 bytes of BLAKE3(u32le(level) || name),
little endian, are 0 modulo ``threshold // 8``, or when the fragment is full),
under a *split node* listing each fragment's first name, id, size and file
count; split nodes with too many children are split again the same way, one
level up. A boundary depends on its name only, so changing a file rewrites one
node per level on its path, and adding or removing one name in a 100,000-entry
directory rewrites one or two fragments and one or two nodes per split level
above them, not every fragment.

*Path order* is the order of paths compared segment by segment as UTF-8 bytes
(``a/b`` before ``a-c``): the order of a depth-first walk of sorted nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.encoding import pack
from artifactstore.core.errors import (
    InvalidInputError,
)
from artifactstore.model.entries import (
    DEFAULT_MEDIA_TYPE,
    Entry,
    FileEntry,
    PutBlob,
    ReferenceEntry,
    encode_entry,
)
from artifactstore.model.paths import path_key, validate_path
from artifactstore.model.treediff import Change, diff_trees
from artifactstore.model.treeread import (  # the read side, re-exported
    PREFETCH_BUDGET,
    REFILL_BUDGET,
    Folder,
    Listed,
    iter_entries,
    iter_listed,
    list_dir,
    list_dir_listed,
    lookup,
    prefetching_reader,
)
from artifactstore.objects.envelope import Kind

__all__ = [
    "DEFAULT_MEDIA_TYPE",
    "PREFETCH_BUDGET",
    "REFILL_BUDGET",
    "SPLIT_THRESHOLD",
    "Change",
    "Entry",
    "FileEntry",
    "Folder",
    "Listed",
    "ReferenceEntry",
    "TreeSummary",
    "TreeWriter",
    "build_tree",
    "diff_trees",
    "iter_entries",
    "iter_listed",
    "list_dir",
    "list_dir_listed",
    "lookup",
    "pack_node",
    "path_key",
    "prefetching_reader",
]  # fmt: skip

SPLIT_THRESHOLD: Final = 2048
"""Directories with more entries than this are split; no node lists more."""


@dataclass(frozen=True, slots=True)
class TreeSummary:
    """What building a tree returns: the root node's id and totals."""

    id: Digest
    size: int  # bytes of all files, and of references whose size is known
    files: int  # entries: files and references


# -- building ---------------------------------------------------------------------------

# (name or first name, record or child row, size, files) of one item of a node.
_Row = tuple[str, Any, int, int]


def build_tree(
    entries: Iterable[Entry],
    put_blob: PutBlob,
    *,
    split_threshold: int | None = None,
) -> TreeSummary:
    """Store ``entries`` as a tree with ``put_blob(Kind.TREE, bytes)``; returns the root.

    Paths are validated; duplicates and file/directory conflicts (``a`` and
    ``a/b``) are InvalidInputError. No entries give a valid, empty root node.
    ``split_threshold`` defaults to :data:`SPLIT_THRESHOLD` (read at call time).
    """
    threshold = SPLIT_THRESHOLD if split_threshold is None else split_threshold
    if threshold < 2:
        raise InvalidInputError(f"split threshold must be at least 2, got {threshold}")
    keyed = []
    for entry in entries:
        if not isinstance(entry, FileEntry | ReferenceEntry):
            raise InvalidInputError(
                f"a tree holds FileEntry and ReferenceEntry values, not {type(entry).__name__}"
            )
        keyed.append((path_key(validate_path(entry.path)), entry))
    keyed.sort(key=_first)
    writer = _NodeWriter(put_blob, threshold)
    # open directories from the root down: (names so far, rows of each)
    names: list[str] = []
    open_rows: list[list[_Row]] = [[]]
    previous: list[str] | None = None
    for key, entry in keyed:
        if previous is not None and key[: len(previous)] == previous:
            what = "twice" if key == previous else f"as a file and as a directory ({entry.path!r})"
            raise InvalidInputError(f"path {'/'.join(previous)!r} is in the artifact {what}")
        previous = key
        common = 0
        dirs = key[:-1]
        while common < min(len(names), len(dirs)) and names[common] == dirs[common]:
            common += 1
        while len(names) > common:
            writer.close_dir(names.pop(), open_rows)
        for name in dirs[common:]:
            names.append(name)
            open_rows.append([])
        record = encode_entry(key[-1], entry, put_blob)
        size = entry.size if entry.size is not None else 0
        open_rows[-1].append((key[-1], record, size, 1))
    while names:
        writer.close_dir(names.pop(), open_rows)
    root, size, files = writer.write_dir(open_rows[0])
    return TreeSummary(root, size, files)


def _first(pair: tuple[list[str], Entry]) -> list[str]:
    return pair[0]


class TreeWriter:
    """:func:`build_tree` over a stream: entries come one at a time in *byte order* (by
    the UTF-8 bytes of their full paths, the order of the content listing, design §11.1)
    and each directory's node is stored as soon as the stream leaves it, so memory holds
    the rows of the open directories only, not one object per entry.

    Why byte order and not path order: the paths below a directory share its prefix
    ``dir/``, so they are contiguous in byte order too, and a depth-first walk that
    sorts a folder's files by name and its subfolders by ``name/`` gives that order;
    the same stream then feeds the content digest (:class:`~artifactstore.model.contentid.
    ContentHasher`) without a sort. A directory's rows are sorted by name when it
    closes (``a/...`` arrives after ``a-b`` in byte order, before it in path order), so
    the nodes are the ones :func:`build_tree` writes: the same bytes and root id.
    Out-of-order or repeated paths and a name that is both a file and a directory are
    InvalidInputError.
    """

    def __init__(
        self, put_blob: PutBlob, *, split_threshold: int | None = None,
        on_close: Callable[[str, Digest, int, int], None] | None = None,
    ) -> None:
        """``on_close(path, node id, size, files)`` is called as each directory below
        the root is stored."""
        threshold = SPLIT_THRESHOLD if split_threshold is None else split_threshold
        if threshold < 2:
            raise InvalidInputError(f"split threshold must be at least 2, got {threshold}")
        self._put = put_blob
        self._writer = _NodeWriter(put_blob, threshold)
        self._names: list[str] = []  # the open directories below the root
        self._rows: list[list[_Row]] = [[]]  # rows of the root and of each open directory
        self._last = b""
        self._done = False
        self._on_close = on_close

    def add(self, entry: Entry) -> None:
        """Add the next entry (its path after the previous one's in byte order)."""
        if not isinstance(entry, FileEntry | ReferenceEntry):
            raise InvalidInputError(
                f"a tree holds FileEntry and ReferenceEntry values, not {type(entry).__name__}"
            )
        path = validate_path(entry.path)
        raw = path.encode("utf-8")
        if raw <= self._last:
            raise InvalidInputError(
                f"path {path!r} comes after {self._last.decode('utf-8', 'replace')!r}: entries "
                "must be unique and in byte order"
            )
        self._last = raw
        name = self._enter(path)
        size = entry.size if entry.size is not None else 0
        self._rows[-1].append((name, encode_entry(name, entry, self._put), size, 1))

    def add_dir(self, path: str, node_id: Digest, size: int, files: int) -> None:
        """Add a whole directory already stored (an unchanged folder of a re-log): its
        node ``node_id`` holding ``files`` entries of ``size`` bytes, under ``path``."""
        raw = (validate_path(path) + "/").encode("utf-8")
        if raw <= self._last:
            raise InvalidInputError(f"folder {path!r} is out of byte order")
        self._last = raw + b"\xff"  # nothing below it may follow
        name = self._enter(path)
        record = {"n": name, "t": "d", "id": node_id.raw, "size": size, "files": files}
        self._rows[-1].append((name, record, size, files))

    def _enter(self, path: str) -> str:
        """Close the open folders ``path`` is not under, open those it is; its last name."""
        *dirs, name = path.split("/")
        names = self._names
        common = 0
        while common < min(len(names), len(dirs)) and names[common] == dirs[common]:
            common += 1
        while len(names) > common:
            self._close()
        for folder in dirs[common:]:
            names.append(folder)
            self._rows.append([])
        return name

    def finish(self) -> TreeSummary:
        """Close every directory and store the root; returns it."""
        if self._done:
            raise InvalidInputError("this tree was already finished")
        self._done = True
        while self._names:
            self._close()
        root, size, files = self._writer.write_dir(_in_name_order(self._rows[0]))
        return TreeSummary(root, size, files)

    def _close(self) -> None:
        rows = self._rows
        rows[-1] = _in_name_order(rows[-1])
        path = "/".join(self._names)
        self._writer.close_dir(self._names.pop(), rows)
        if self._on_close is not None:
            _, record, size, files = rows[-1][-1]
            self._on_close(path, Digest(record["id"]), size, files)


def _name(row: _Row) -> str:
    return row[0]


def _in_name_order(rows: list[_Row]) -> list[_Row]:
    rows.sort(key=_name)
    for i in range(1, len(rows)):
        if rows[i - 1][0] == rows[i][0]:
            raise InvalidInputError(
                f"{rows[i][0]!r} is in the artifact twice, or as a file and as a directory"
            )
    return rows


def pack_node(body_key: str, rows: list[Any]) -> bytes:
    """The canonical encoding of a node, ``pack({"version": 1, body_key: rows})``, made
    by msgpack in one call.

    Why: the generic encoder rebuilds every map in canonical key order in Python, about
    12 s for the nodes of a 1,000,000-file version. The records built here (by
    ``encode_entry``, ``close_dir`` and ``_store``) already hold their keys in canonical
    order and only exact str, bytes, int and list values, so msgpack's own encoding of
    them is the canonical one (tests/test_tree_pack.py checks both agree). Anything
    msgpack refuses (a str subclass, a lone surrogate, an int out of range) goes to the
    generic encoder, which gives the same bytes or the same error.
    """
    try:
        packed: bytes = msgpack.packb(
            {body_key: rows, "version": 1},  # "entries" and "split" sort before "version"
            use_bin_type=True, strict_types=True, use_single_float=False, datetime=False,
        )  # fmt: skip
    except (TypeError, ValueError, OverflowError, UnicodeError):
        return pack({"version": 1, body_key: rows})
    return packed


class _NodeWriter:
    """Encodes and stores directory nodes, splitting large ones."""

    def __init__(self, put_blob: PutBlob, threshold: int) -> None:
        self._put = put_blob
        self._threshold = threshold
        self._modulus = max(2, threshold // 8)

    def close_dir(self, name: str, open_rows: list[list[_Row]]) -> None:
        node_id, size, files = self.write_dir(open_rows.pop())
        record = {"n": name, "t": "d", "id": node_id.raw, "size": size, "files": files}
        open_rows[-1].append((name, record, size, files))

    def write_dir(self, rows: list[_Row]) -> tuple[Digest, int, int]:
        """Store one directory; returns (node id, size, files)."""
        level = 0
        body_key = "entries"
        while len(rows) > self._threshold:
            groups = list(self._groups(rows, level))
            if len(groups) == len(rows):  # every row a boundary: rare, but progress is a must
                t = self._threshold
                groups = [rows[i : i + t] for i in range(0, len(rows), t)]
            rows = [self._store(body_key, group)[1] for group in groups]
            level += 1
            body_key = "split"
        node_id, _ = self._store(body_key, rows)
        return node_id, sum(r[2] for r in rows), sum(r[3] for r in rows)

    def _store(self, body_key: str, rows: Sequence[_Row]) -> tuple[Digest, _Row]:
        """Store one node; returns its id and its row in a split parent."""
        node_id = self._put(Kind.TREE, pack_node(body_key, [r[1] for r in rows]))
        size = sum(r[2] for r in rows)
        files = sum(r[3] for r in rows)
        first = rows[0][0] if rows else ""
        return node_id, (first, [first, node_id.raw, size, files], size, files)

    def _groups(self, rows: list[_Row], level: int) -> Iterator[list[_Row]]:
        # A row ends its group when a hash of its name (salted by level) says so, or
        # when the group is full: boundaries move only where names change.
        salt = level.to_bytes(4, "little")
        start = 0
        for i, row in enumerate(rows):
            h = int.from_bytes(hash_bytes(salt + row[0].encode()).raw[:8], "little")
            if h % self._modulus == 0 or i + 1 - start >= self._threshold:
                yield rows[start : i + 1]
                start = i + 1
        if start < len(rows):
            yield rows[start:]
