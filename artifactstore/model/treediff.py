"""Differences between two trees, skipping what they share.

Vocabulary: a :class:`Change` is one path that was *added*, *removed* or
*modified* between an old and a new tree. Two directories (or two fragments of
split directories) with the same id hold the same entries, so the walk never
reads them: diffing two versions of a 1M-file dataset that differ in 10 files
reads the nodes on the paths to those 10 files, not the other nodes.

A file is *modified* when its size, digest, mode or media type changed (a
different chunking of the same bytes is not a change); a reference when any
of its fields changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from artifactstore.core.digest import Digest
from artifactstore.model._nodes import (
    Child,
    DirCursor,
    DirItem,
    Item,
    RecordItem,
    Totals,
    find,
    join,
    walk_dir,
)
from artifactstore.model.entries import Entry, FileEntry, GetBlob
from artifactstore.model.paths import validate_path

__all__ = ["Change", "diff_trees"]

ChangeKind = Literal["added", "removed", "modified"]


@dataclass(frozen=True, slots=True)
class Change:
    """One path that differs: ``old`` is None when added, ``new`` when removed."""

    path: str
    kind: ChangeKind
    old: Entry | None
    new: Entry | None


def _key(item: Item) -> str:
    return item.first if isinstance(item, Child) else item.name


def _same(old: Entry, new: Entry) -> bool:
    if isinstance(old, FileEntry) and isinstance(new, FileEntry):
        return (old.size, old.digest, old.mode, old.media_type) == (
            new.size, new.digest, new.mode, new.media_type
        )  # fmt: skip
    return old == new


def diff_trees(old: Digest, new: Digest, get_blob: GetBlob, folder: str = "") -> Iterator[Change]:
    """The changes from tree ``old`` to tree ``new``, in path order; only those under
    ``folder`` when given (its nodes, and the nodes on the path to it, are all it reads).

    Iterative (a stack of directory pairs), so deep trees need no recursion.
    """
    folder = folder[:-1] if folder.endswith("/") else folder
    if folder:
        a, b = _folder(old, folder, get_blob), _folder(new, folder, get_blob)
        if a is None or b is None:
            if a is not None:
                yield from _all(folder, a, "removed", get_blob)
            if b is not None:
                yield from _all(folder, b, "added", get_blob)
            return
        yield from _diff_dirs(folder, (a.id, (a.size, a.files)), (b.id, (b.size, b.files)),
                              get_blob)
        return
    yield from _diff_dirs("", (old, None), (new, None), get_blob)


def _folder(root: Digest, folder: str, get_blob: GetBlob) -> DirItem | None:
    item = find(root, validate_path(folder).split("/"), get_blob)
    return item if isinstance(item, DirItem) else None


def _diff_dirs(
    base: str,
    old_dir: tuple[Digest, Totals | None],
    new_dir: tuple[Digest, Totals | None],
    get_blob: GetBlob,
) -> Iterator[Change]:
    (old, old_totals), (new, new_totals) = old_dir, new_dir
    if old == new:
        return
    # (path of the directory, its id in old, its cursor in old, id in new, cursor in new)
    stack = [
        (base, old, DirCursor(get_blob, old, old_totals), new,
         DirCursor(get_blob, new, new_totals)),
    ]  # fmt: skip
    while stack:
        base, old_id, a_cur, new_id, b_cur = stack[-1]
        a, b = a_cur.peek(), b_cur.peek()
        if a is None and b is None:
            stack.pop()
            continue
        if a is not None and b is not None and _key(a) == _key(b):
            if isinstance(a, Child) or isinstance(b, Child):
                if isinstance(a, Child) and isinstance(b, Child) and a.id == b.id:
                    a_cur.pop()  # the same fragment on both sides: skip it unread
                    b_cur.pop()
                    continue
                # Expand the larger side first: its first part may equal the other.
                a_big = isinstance(a, Child) and (not isinstance(b, Child) or a.files >= b.files)
                b_big = isinstance(b, Child) and (not isinstance(a, Child) or b.files >= a.files)
                if a_big:
                    a_cur.expand()
                if b_big:
                    b_cur.expand()
                continue
            a_cur.pop()
            b_cur.pop()
            path = join(base, a.name, old_id)
            if isinstance(a, DirItem) and isinstance(b, DirItem):
                if a.id != b.id:
                    stack.append(
                        (
                            path,
                            a.id,
                            DirCursor(get_blob, a.id, (a.size, a.files)),
                            b.id,
                            DirCursor(get_blob, b.id, (b.size, b.files)),
                        )
                    )
                continue
            if isinstance(a, RecordItem) and isinstance(b, RecordItem):
                if a.record != b.record:
                    old_entry, new_entry = a.entry(path, get_blob), b.entry(path, get_blob)
                    if not _same(old_entry, new_entry):
                        yield Change(path, "modified", old_entry, new_entry)
                continue
            # A file became a directory or back: 'a' sorts before 'a/...'.
            if isinstance(a, RecordItem):
                yield Change(path, "removed", a.entry(path, get_blob), None)
                yield from _all(path, b, "added", get_blob)
            else:
                yield from _all(path, b, "added", get_blob)
                yield from _all(path, a, "removed", get_blob)
            continue
        # Only one side has the smallest name (or one side is exhausted).
        take_old = b is None or (a is not None and _key(a) < _key(b))
        cursor, item, node = (a_cur, a, old_id) if take_old else (b_cur, b, new_id)
        kind: ChangeKind = "removed" if take_old else "added"
        assert item is not None
        if isinstance(item, Child):
            cursor.expand()  # it may hold names the other side has
            continue
        cursor.pop()
        yield from _all(join(base, item.name, node), item, kind, get_blob)


def _all(path: str, item: Item, kind: ChangeKind, get_blob: GetBlob) -> Iterator[Change]:
    """Every entry of one side's item (a file, or a whole subdirectory) as added/removed."""
    assert not isinstance(item, Child)
    if isinstance(item, DirItem):
        entries: Iterator[Entry] = walk_dir(path, item.id, (item.size, item.files), get_blob)
    else:
        entries = iter([item.entry(path, get_blob)])
    for entry in entries:
        yield Change(
            entry.path, kind, None if kind == "added" else entry, entry if kind == "added" else None
        )
