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
import struct
import time
from collections.abc import Callable, Container, Iterator, Sized
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from pathlib import Path

from artifactstore.core.digest import Hasher
from artifactstore.core.errors import InvalidInputError
from artifactstore.local.statcache import RACY_NS
from artifactstore.model.paths import MAX_PATH_BYTES, name_problem, validate_path

__all__ = [
    "FileRun", "FolderCheck", "FolderFiles", "Known", "Skipped", "check_folder",
    "iter_folder", "iter_runs", "signature", "walk_folder",
]

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
    walk = _Walk(root, follow_outside_links, skip_unreadable, keep=True)
    walk.run()
    return walk.found


@dataclass(frozen=True, slots=True)
class FolderCheck:
    """What :func:`check_folder` found: the entries it would skip, and the *signature*
    of each folder of files (no subfolder; none of its files modified within
    :data:`~artifactstore.local.statcache.RACY_NS`) by its path under the folder:
    BLAKE3 of :func:`signature` of its files in name order, and their count."""

    skipped: list[Skipped]
    signatures: dict[str, tuple[bytes, int]]


def signature(name: str, st: os.stat_result) -> bytes:
    """What a folder's signature hashes of one of its files: its name and stat."""
    return name.encode("utf-8", "surrogateescape") + b"\0" + _SIG.pack(
        st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


_SIG = struct.Struct("<QQQqqI")

#: ``known(local folder, path under the logged folder)``: a folder's signature when last
#: logged, or None (:func:`check_folder`)
Known = Callable[[str, str], bytes | None]


def check_folder(root: Path, *, follow_outside_links: bool = False,
                 skip_unreadable: bool = False, known: Known | None = None) -> FolderCheck:
    """The policy of :func:`walk_folder` over the whole folder, without keeping its files
    (a million of them are ~100 MB as paths): raises as it does, or returns what it
    would skip and each folder's signature. :func:`iter_folder` then gives the files.

    Why signatures now: this walk looks at every file anyway (a refusal must come before
    any upload), and a ``stat`` beside the ``access`` lets the log take an unchanged
    folder whole without a second look at its files.

    ``known(local, path)``: the signature a folder of files had when it was last logged
    (the stat cache's folder row, for the local folder ``local``, absolute, logged as
    ``path``), or None. A folder whose signature is that one is not asked ``access``
    file by file: each of its files has the stat (ctime included, which a change of
    permissions moves) it had when a log read it (docs/design.md §8, stat cache)."""
    walk = _Walk(root, follow_outside_links, skip_unreadable, keep=False, known=known)
    walk.run()
    return FolderCheck(walk.found.skipped, walk.signatures)


def iter_folder(root: Path, *, follow_outside_links: bool = False,
                skip_unreadable: bool = False) -> Iterator[tuple[str, str]]:
    """The files of :func:`walk_folder` streamed, after :func:`check_folder` passed:
    (path under the folder, absolute local path), in byte order of the paths (a folder's
    files by name and its subfolders by ``name/``: the order of the content listing and
    of :class:`~artifactstore.model.tree.TreeWriter`), holding one listing per open
    folder. What the check skipped is skipped; a link that leaves the folder met now
    (it was made since the check) is refused."""
    for run in iter_runs(root, follow_outside_links=follow_outside_links,
                         skip_unreadable=skip_unreadable):
        yield from run.listed()


@dataclass(frozen=True, slots=True)
class FileRun:
    """Files of one folder that follow each other in :func:`iter_folder`'s order:
    ``path`` (under the logged folder, "" for itself) and ``local`` (absolute) name the
    folder; ``whole`` when they are all of it and it holds no folder (a *leaf*).
    A leaf the check signed is not listed until :meth:`listed` is called (a re-log
    that takes it whole never lists it)."""

    path: str
    local: str
    files: list[tuple[str, str]]
    whole: bool
    lister: Callable[[], list[tuple[str, str]]] | None = None

    def listed(self) -> list[tuple[str, str]]:
        """The run's files: (path under the logged folder, absolute local path)."""
        return self.files if self.lister is None else self.lister()


def iter_runs(root: Path, *, follow_outside_links: bool = False,
              skip_unreadable: bool = False, signed: Container[str] = ()) -> Iterator[FileRun]:
    """:func:`iter_folder` in runs of one folder's files (a leaf folder in one run);
    the folders ``signed`` (leaves when :func:`check_folder` looked) are listed only on
    request (:meth:`FileRun.listed`); a folder made in one since is not logged, like a
    file made after the check."""
    top = os.path.abspath(root)
    walk = _Stream(top, follow_outside_links, skip_unreadable)
    st = os.stat(top)
    walk.seen.add((st.st_dev, st.st_ino))
    stack = [(top, "", iter(walk.listing(top, "")))]
    while stack:  # depth first, without recursion (folders may nest deep)
        local, under, items = stack.pop()
        run: list[tuple[str, str]] = []
        for _, rel, path, folder in items:
            if folder is None:
                run.append((rel, path))
                continue
            if (folder.st_dev, folder.st_ino) in walk.seen:
                continue
            walk.seen.add((folder.st_dev, folder.st_ino))
            if rel in signed:
                if run:
                    yield FileRun(under[:-1], local, run, False)
                    run = []
                yield FileRun(rel, path, [], True, partial(walk.files, path, rel + "/"))
                continue
            listing = walk.listing(path, rel + "/")
            if any(item[3] is not None for item in listing):
                if run:
                    yield FileRun(under[:-1], local, run, False)
                    run = []
                stack.append((local, under, items))  # the rest of this folder, later
                stack.append((path, rel + "/", iter(listing)))
                break
            if run:
                yield FileRun(under[:-1], local, run, False)
                run = []
            files = [(r, p) for _, r, p, _ in listing]
            if files:
                yield FileRun(rel, path, files, True)
        else:  # the end of this folder
            if run:
                yield FileRun(under[:-1], local, run, False)


# (sort key, path under the folder, local path, stat of a folder or None for a file)
_Item = tuple[bytes, str, str, os.stat_result | None]


class _Stream:
    def __init__(self, top: str, follow: bool, skip: bool) -> None:
        self.real_root = os.path.realpath(top)
        self.follow = follow
        self.skip = skip
        self.seen: set[tuple[int, int]] = set()

    def files(self, folder: str, under: str) -> list[tuple[str, str]]:
        return [(rel, path) for _, rel, path, st in self.listing(folder, under) if st is None]

    def listing(self, folder: str, under: str) -> list[_Item]:
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            return []  # the check skipped it (or it vanished since: nothing to log)
        items: list[_Item] = []
        for entry in entries:
            name = entry.name
            try:
                if entry.is_symlink():
                    item = self._link(entry.path, under + name, name)
                    if item is not None:
                        items.append(item)
                elif entry.is_dir(follow_symlinks=False):
                    items.append(((name + "/").encode("utf-8", "surrogateescape"), under + name,
                                  entry.path, entry.stat(follow_symlinks=False)))
                elif entry.is_file(follow_symlinks=False):
                    if self.skip and not os.access(entry.path, os.R_OK):
                        continue
                    items.append((name.encode("utf-8", "surrogateescape"), under + name,
                                  entry.path, None))
            except OSError:
                continue  # vanished or changed since the check: as the check would skip it
        items.sort()
        return items

    def _link(self, path: str, rel: str, name: str) -> _Item | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        real = Path(os.path.realpath(path))
        real_root = Path(self.real_root)
        inside = real == real_root or real_root in real.parents
        if not inside and not self.follow:
            raise InvalidInputError(
                f"1 link of {self.real_root} leaves it: {path} (made while logging); remove "
                "it, or pass --follow-links (follow_outside_links=True) to log what it points to"
            )
        if stat.S_ISREG(st.st_mode):
            if self.skip and not os.access(path, os.R_OK):
                return None
            return name.encode("utf-8", "surrogateescape"), rel, path, None
        if stat.S_ISDIR(st.st_mode) and not inside:
            return (name + "/").encode("utf-8", "surrogateescape"), rel, path, st
        return None


class _Walk:
    def __init__(self, root: Path, follow: bool, skip: bool, *, keep: bool,
                 known: Known | None = None) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        self.top = os.path.abspath(root)  # what iter_runs names local folders under
        self.follow = follow
        self.skip = skip
        self.keep = keep
        self.known = known
        self.found = FolderFiles()
        self.outside: list[Path] = []
        self.unreadable: list[Skipped] = []
        self.seen: set[tuple[int, int]] = set()
        self.todo: list[tuple[str, str, os.stat_result]] = []
        self.signatures: dict[str, tuple[bytes, int]] = {}
        # the folder being walked: its files (local path, signature bytes), not yet asked
        # ``access`` nor their names checked, and whether it is still a folder of files only
        self._files: list[tuple[str, bytes]] = []
        self._leaf = True
        self._racy = time.time_ns() - RACY_NS

    def run(self) -> None:
        self.todo.append((str(self.root), "", os.stat(self.root)))
        while self.todo:  # a stack, not recursion: folders may nest deeper than Python's limit
            self.folder(*self.todo.pop())
        self.check()

    def folder(self, folder: str, under: str, st: os.stat_result) -> None:
        # Why the walk remembers folders: a followed link to an ancestor would
        # otherwise walk forever (and log the same files again and again).
        if (st.st_dev, st.st_ino) in self.seen:
            self.unreadable.append(Skipped(Path(folder), "link loop (a folder met twice)"))
            return
        self.seen.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(folder) as it:
                listed = sorted(it, key=attrgetter("name"))
        except OSError as exc:
            self.unreadable.append(Skipped(Path(folder), f"cannot list: {exc.strerror or exc}"))
            return
        self._files, self._leaf = [], True
        for entry in listed:
            path = entry.path
            name = under + entry.name
            try:  # a file first: most entries are (not a link: it is told apart)
                if entry.is_file(follow_symlinks=False):
                    self.file(path, name, None if self.keep else entry.stat(follow_symlinks=False))
                elif entry.is_symlink():
                    self.link(path, name)
                elif entry.is_dir(follow_symlinks=False):
                    self._leaf = False
                    self.todo.append((path, name + "/", entry.stat(follow_symlinks=False)))
                else:
                    self.found.skipped.append(Skipped(Path(path),
                                                      "not a file (FIFO, socket, device)"))
            except OSError as exc:  # it vanished or changed meanwhile
                self._leaf = False  # its signature would not be the log's
                self.unreadable.append(Skipped(Path(path), f"cannot read: {exc.strerror or exc}"))
        self.close(under)

    def close(self, under: str) -> None:
        """The end of a folder: its files' names checked and each asked ``access``,
        unless its signature is the one ``known`` gives (then they are as a log read
        them, names included); its signature noted."""
        files, self._files = self._files, []
        if not files:
            return
        signed = self._leaf and bool(under)
        if signed:
            sig = _folder_sig(files)
            if self.known is not None and \
                    self.known(os.path.join(self.top, under[:-1]), under[:-1]) == sig:
                self.signatures[under[:-1]] = (sig, len(files))
                return
        # The names a stream will stage: refused now, not after uploads began (the
        # folder's part of the path once per folder, then each name and the length).
        checked = False
        for path, _ in files:
            base = os.path.basename(path)
            if not checked or name_problem(base) is not None or \
                    len(under + base) * 4 > MAX_PATH_BYTES:  # maybe too long: count the bytes
                validate_path(under + base)
                checked = True
        readable = [f for f in files if self.readable(f[0])]
        if signed and readable:
            if len(readable) != len(files):  # the files a log would store (skip_unreadable)
                sig = _folder_sig(readable)
            self.signatures[under[:-1]] = (sig, len(readable))

    def readable(self, path: str) -> bool:
        # Checked now, not when logging reads it: a refusal must come before any upload.
        if os.access(path, os.R_OK):
            return True
        self.unreadable.append(Skipped(Path(path), "permission denied"))
        return False

    def file(self, path: str, name: str, st: os.stat_result | None) -> None:
        if self.keep:
            if self.readable(path):
                self.found.files.append((name, Path(path)))
            return
        # (its name is checked when the folder closes, unless the folder is as logged)
        base = name.rsplit("/", 1)[-1]
        assert st is not None
        if st.st_mtime_ns > self._racy:
            self._leaf = False  # racily clean: no signature
        self._files.append((path, signature(base, st)))

    def link(self, path: str, name: str) -> None:
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.unreadable.append(Skipped(Path(path), "link loop"))
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.unreadable.append(Skipped(Path(path),
                                               f"dangling link to {os.readlink(path)}"))
            else:
                self.unreadable.append(Skipped(Path(path),
                                               f"cannot read: {exc.strerror or exc}"))
            return
        real = Path(os.path.realpath(path))
        # Why links that leave are refused: `log data/` must not upload /etc/passwd or
        # a home folder because someone planted a link in data/.
        inside = real == self.real_root or self.real_root in real.parents
        if not inside and not self.follow:
            self.outside.append(Path(path))
        elif stat.S_ISREG(st.st_mode):
            self.file(path, name, st)
        elif not stat.S_ISDIR(st.st_mode):
            self.found.skipped.append(Skipped(Path(path), "not a file (FIFO, socket, device)"))
        elif inside:
            where = real.relative_to(self.real_root)
            self.found.skipped.append(Skipped(Path(path), f"link to a folder inside ({where})"))
        else:
            self._leaf = False
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


def _folder_sig(files: list[tuple[str, bytes]]) -> bytes:
    """A folder's signature: BLAKE3 of its files' :func:`signature` in name order."""
    hasher = Hasher(parallel=False)
    hasher.update(b"".join(sig for _, sig in files))
    return hasher.digest().raw


def _count(items: Sized, noun: str) -> str:
    if len(items) == 1:
        return f"1 {noun}"
    return f"{len(items)} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
    return ", ".join(names[:_NAMED]) + more
