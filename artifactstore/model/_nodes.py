"""Reading tree nodes: decoding, checking and walking them (docs/design.md, "Trees").

Vocabulary: a *node* is a ``TREE`` blob. An *entries node* lists a directory's
entries (or one *fragment* of a large directory's entries); a *split node*
lists *children* (fragments or further split nodes), each with the first name
it holds. A *directory* is the node its parent's ``"d"`` entry (or the root id)
names; a *cursor* walks one directory's items in name order, reading the
fragments of a split directory only when it reaches them.

Every node read is untrusted: names are checked again (no ``..``, no ``/``),
entries must be strictly sorted, and the sizes and file counts a parent
declares must match the node. Violations raise IntegrityError naming the node.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from artifactstore.core.digest import Digest
from artifactstore.core.encoding import unpack
from artifactstore.core.errors import IntegrityError
from artifactstore.model.entries import (
    Entry,
    GetBlob,
    decode_entry,
    decode_plain_file,
    digest_field,
    uint_field,
)
from artifactstore.model.paths import MAX_PATH_BYTES, name_problem

__all__ = [
    "Child", "DirCursor", "DirItem", "Item", "RecordItem", "Totals", "decode_node", "find", "join",
    "node_name", "walk_dir", "walk_records",
]  # fmt: skip

Totals = tuple[int, int]
"""(bytes, files) of a subtree, as a parent declares it."""


@dataclass(frozen=True, slots=True)
class DirItem:
    """A subdirectory entry: ``id`` is its node."""

    name: str
    id: Digest
    size: int
    files: int


@dataclass(frozen=True, slots=True)
class RecordItem:
    """A file or reference record, decoded to an Entry only when needed."""

    name: str
    record: dict[str, Any]
    node: Digest  # the node holding it, for error messages

    def entry(self, path: str, get_blob: GetBlob) -> Entry:
        return decode_plain_file(path, self.record) or decode_entry(
            path, self.record, get_blob, node_name(self.node))


@dataclass(frozen=True, slots=True)
class Child:
    """One child of a split node: a fragment or a further split node."""

    first: str
    id: Digest
    size: int
    files: int


Item = DirItem | RecordItem | Child


def node_name(node_id: Digest) -> str:
    return f"tree node {node_id.hex}"


def _key(item: Item) -> str:
    return item.first if isinstance(item, Child) else item.name


def _checked_name(value: object, what: str) -> str:
    if type(value) is not str:
        raise IntegrityError(f"{what}: a name must be a str")
    problem = name_problem(value)
    if problem is not None:
        raise IntegrityError(f"{what} holds the name {value[:100]!r}: {problem}")
    return value


def decode_node(node_id: Digest, data: bytes, expected: Totals | None) -> list[Item]:
    """The checked items of one node; ``expected`` is what its parent declared."""
    what = node_name(node_id)
    body = unpack(data, what=what)
    if type(body) is not dict or type(body.get("version")) is not int or body["version"] != 1:
        raise IntegrityError(f"{what} is not a version-1 tree node")
    if ("entries" in body) == ("split" in body):
        raise IntegrityError(f"{what} needs exactly one of 'entries' or 'split'")
    raw = body.get("entries", body.get("split"))
    if type(raw) is not list:
        raise IntegrityError(f"{what}: its entries must be an array")
    items = (
        [_entry_item(r, node_id, what) for r in raw]
        if "entries" in body
        else [_child_item(r, what) for r in raw]
    )
    if "split" in body and not items:
        raise IntegrityError(f"{what} is a split node without children")
    size = files = 0
    previous: str | None = None
    for item in items:
        key = _key(item)
        # str order is code point order, which is the UTF-8 byte order of the spec.
        if previous is not None and key <= previous:
            raise IntegrityError(
                f"{what} lists {key[:100]!r} after {previous[:100]!r}: entries must be "
                "strictly sorted by name (unsorted or duplicate)"
            )
        previous = key
        size += _size_of(item)
        files += 1 if isinstance(item, RecordItem) else item.files
    if expected is not None and (size, files) != expected:
        raise IntegrityError(
            f"{what} holds {files} files and {size} bytes, its parent says "
            f"{expected[1]} files and {expected[0]} bytes"
        )
    return items


def _size_of(item: Item) -> int:
    if isinstance(item, RecordItem):
        size = item.record.get("size")
        if size is None and item.record.get("t") == "r":
            return 0  # a reference of unknown size
        return uint_field(size, "size", node_name(item.node))
    return item.size


def _entry_item(record: object, node_id: Digest, what: str) -> Item:
    if type(record) is not dict:
        raise IntegrityError(f"{what}: an entry must be a map")
    name = _checked_name(record.get("n"), what)
    kind = record.get("t")
    if kind == "d":
        files = uint_field(record.get("files"), "files", what)
        if files == 0:
            raise IntegrityError(f"{what}: directory {name!r} holds no files")
        return DirItem(
            name,
            digest_field(record.get("id"), "id", what),
            uint_field(record.get("size"), "size", what),
            files,
        )
    if kind not in ("f", "r"):
        raise IntegrityError(f"{what}: entry {name!r} has unknown type {kind!r}")
    return RecordItem(name, record, node_id)


def _child_item(value: object, what: str) -> Item:
    if type(value) is not list or len(value) != 4:
        raise IntegrityError(f"{what}: a split child must be [first_name, id, size, files]")
    return Child(
        _checked_name(value[0], what),
        digest_field(value[1], "id", what),
        uint_field(value[2], "size", what),
        uint_field(value[3], "files", what),
    )


class DirCursor:
    """One directory's items in name order; split children stay unread until expanded."""

    __slots__ = ("_get_blob", "_stack")

    def __init__(self, get_blob: GetBlob, node_id: Digest, expected: Totals | None) -> None:
        self._get_blob = get_blob
        items = decode_node(node_id, get_blob(node_id), expected)
        self._stack: list[Item] = items[::-1]  # next item last

    def peek(self) -> Item | None:
        return self._stack[-1] if self._stack else None

    def pop(self) -> Item:
        return self._stack.pop()

    def expand(self) -> None:
        """Replace the next item, a split child, by its items (reading its node)."""
        child = self._stack.pop()
        assert isinstance(child, Child)
        items = decode_node(child.id, self._get_blob(child.id), (child.size, child.files))
        bound = _key(self._stack[-1]) if self._stack else None
        # The parent's boundaries must agree with the child, or a merge walk of two
        # directories could list one name twice or out of order.
        if (
            not items
            or _key(items[0]) != child.first
            or (bound is not None and _key(items[-1]) >= bound)
        ):
            raise IntegrityError(
                f"{node_name(child.id)} does not hold the names its split parent says "
                f"(from {child.first[:100]!r})"
            )
        self._stack += items[::-1]

    def next_entry(self) -> DirItem | RecordItem | None:
        """The next file, reference or subdirectory, expanding split children on the way."""
        while self._stack:
            item = self._stack.pop()
            if not isinstance(item, Child):
                return item
            self._stack.append(item)
            self.expand()
        return None


def join(base: str, name: str, node: Digest) -> str:
    path = f"{base}/{name}" if base else name
    if len(path) > MAX_PATH_BYTES // 4 and len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise IntegrityError(f"{node_name(node)}: path {path[:100]!r}... is over the limit")
    return path


def walk_dir(
    base: str, node_id: Digest, expected: Totals | None, get_blob: GetBlob
) -> Iterator[Entry]:
    """Every entry under a directory in path order, with paths under ``base``.

    Iterative (an explicit stack, one cursor per open directory), so deep trees
    need no recursion and memory holds only the current path of nodes.
    """
    for path, item in walk_records(base, node_id, expected, get_blob):
        yield item.entry(path, get_blob)


def walk_records(
    base: str, node_id: Digest, expected: Totals | None, get_blob: GetBlob
) -> Iterator[tuple[str, RecordItem]]:
    """:func:`walk_dir`'s records with their paths, not decoded to entries."""
    stack = [(base, node_id, DirCursor(get_blob, node_id, expected))]
    while stack:
        prefix, current, cursor = stack[-1]
        item = cursor.next_entry()
        if item is None:
            stack.pop()
            continue
        path = join(prefix, item.name, current)
        if isinstance(item, DirItem):
            stack.append((path, item.id, DirCursor(get_blob, item.id, (item.size, item.files))))
        else:
            yield path, item


def find(root: Digest, names: list[str], get_blob: GetBlob) -> DirItem | RecordItem | None:
    """The item at a path (given as its names) under ``root``, or None."""
    node_id, expected = root, None
    found: DirItem | RecordItem | None = None
    for depth, name in enumerate(names):
        item = _find_in_dir(node_id, expected, name, get_blob)
        if item is None or (depth + 1 < len(names) and not isinstance(item, DirItem)):
            return None
        found = item
        if isinstance(item, DirItem):
            node_id, expected = item.id, (item.size, item.files)
    return found


def _find_in_dir(
    node_id: Digest, expected: Totals | None, name: str, get_blob: GetBlob
) -> DirItem | RecordItem | None:
    while True:
        items = decode_node(node_id, get_blob(node_id), expected)
        keys = [_key(item) for item in items]
        index = bisect_right(keys, name) - 1
        if index < 0:
            return None
        item = items[index]
        if not isinstance(item, Child):
            return item if item.name == name else None
        node_id, expected = item.id, (item.size, item.files)
