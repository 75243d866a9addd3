"""The files of a local folder to log, under the symbolic link policy (docs/guide.md).

Vocabulary: the **logged folder** is the folder given to ``add_dir``; an entry is
*inside* it when its real path (links resolved) is below the logged folder's real
path. The policy, checked for the whole folder before anything is staged, so that a
refused folder costs nothing and leaves the store unchanged:

- a link to a file inside is stored as the file it points to, under the link's path;
- a link to a folder inside is not followed (its files are logged under their own
  path) and is listed as skipped;
- a link that leaves the logged folder (``/etc/passwd``, ``..``) is refused, unless
  ``follow_outside_links``: then its file, or every file of its folder, is logged
  under the link's path (a folder met twice on one walk is a loop: refused);
- a dangling link, a link loop, an entry that cannot be read (file or folder):
  refused, unless ``skip_unreadable``, which skips and lists them;
- anything that is not a file, folder or link (FIFO, socket, device) holds no
  content: skipped and listed.

Refusals are one :class:`InvalidInputError` naming the first few entries and the count.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sized
from dataclasses import dataclass, field
from pathlib import Path

from artifactstore.core.errors import InvalidInputError

__all__ = ["FolderFiles", "Skipped", "walk_folder"]

#: how many offending entries an error names (then "and N more")
_NAMED = 5


@dataclass(frozen=True, slots=True)
class Skipped:
    """A local entry that was not logged, and why."""

    path: Path
    reason: str


@dataclass(slots=True)
class FolderFiles:
    """What a walk found: (path under the folder, local file) pairs, and what it skipped."""

    files: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def walk_folder(root: Path, *, follow_outside_links: bool = False,
                skip_unreadable: bool = False) -> FolderFiles:
    """The files under ``root`` by their path relative to it ("a/b.txt"), per the policy."""
    walk = _Walk(root, follow_outside_links, skip_unreadable)
    walk.todo.append((root, "", os.stat(root)))
    while walk.todo:  # a stack, not recursion: folders may nest deeper than Python's limit
        walk.folder(*walk.todo.pop())
    walk.check()
    return walk.found


class _Walk:
    def __init__(self, root: Path, follow: bool, skip: bool) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        self.follow = follow
        self.skip = skip
        self.found = FolderFiles()
        self.outside: list[Path] = []
        self.unreadable: list[Skipped] = []
        self.seen: set[tuple[int, int]] = set()
        self.todo: list[tuple[Path, str, os.stat_result]] = []

    def folder(self, folder: Path, under: str, st: os.stat_result) -> None:
        # Why the walk remembers folders: a followed link to an ancestor would
        # otherwise walk forever (and log the same files again and again).
        if (st.st_dev, st.st_ino) in self.seen:
            self.unreadable.append(Skipped(folder, "link loop (a folder met twice)"))
            return
        self.seen.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(folder) as it:
                listed = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.unreadable.append(Skipped(folder, f"cannot list: {exc.strerror or exc}"))
            return
        for entry in listed:
            path = folder / entry.name
            name = under + entry.name
            try:
                if entry.is_symlink():
                    self.link(path, name)
                elif entry.is_dir(follow_symlinks=False):
                    self.todo.append((path, name + "/", entry.stat(follow_symlinks=False)))
                elif entry.is_file(follow_symlinks=False):
                    self.file(path, name)
                else:
                    self.found.skipped.append(Skipped(path, "not a file (FIFO, socket, device)"))
            except OSError as exc:  # it vanished or changed meanwhile
                self.unreadable.append(Skipped(path, f"cannot read: {exc.strerror or exc}"))

    def file(self, path: Path, name: str) -> None:
        # Checked now, not when logging reads it: a refusal must come before any upload.
        if not os.access(path, os.R_OK):
            self.unreadable.append(Skipped(path, "permission denied"))
            return
        self.found.files.append((name, path))

    def link(self, path: Path, name: str) -> None:
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.unreadable.append(Skipped(path, "link loop"))
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.unreadable.append(Skipped(path, f"dangling link to {os.readlink(path)}"))
            else:
                self.unreadable.append(Skipped(path, f"cannot read: {exc.strerror or exc}"))
            return
        real = Path(os.path.realpath(path))
        # Why links that leave are refused: `log data/` must not upload /etc/passwd or
        # a home folder because someone planted a link in data/.
        inside = real == self.real_root or self.real_root in real.parents
        if not inside and not self.follow:
            self.outside.append(path)
        elif stat.S_ISREG(st.st_mode):
            self.file(path, name)
        elif not stat.S_ISDIR(st.st_mode):
            self.found.skipped.append(Skipped(path, "not a file (FIFO, socket, device)"))
        elif inside:
            where = real.relative_to(self.real_root)
            self.found.skipped.append(Skipped(path, f"link to a folder inside ({where})"))
        else:
            self.todo.append((path, name + "/", st))

    def check(self) -> None:
        if self.outside:
            raise InvalidInputError(
                f"{_count(self.outside, 'link')} of {self.root} leave it: "
                f"{_listed([str(p) for p in self.outside])}; remove them, or pass --follow-links "
                "(follow_outside_links=True) to log what they point to"
            )
        if self.unreadable and not self.skip:
            raise InvalidInputError(
                f"cannot log {_count(self.unreadable, 'entry')} of {self.root}: "
                f"{_listed([f'{s.path} ({s.reason})' for s in self.unreadable])}; fix them, "
                "or pass --skip-unreadable (skip_unreadable=True) to leave them out"
            )
        self.found.skipped.extend(self.unreadable)


def _count(items: Sized, noun: str) -> str:
    if len(items) == 1:
        return f"1 {noun}"
    return f"{len(items)} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
    return ", ".join(names[:_NAMED]) + more
