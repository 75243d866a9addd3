"""Local filesystem backend: one file per key below a root directory.

Vocabulary: the *root* is an absolute directory; key ``a/b/c`` is the file
``<root>/a/b/c``. A *temp file* is ``.tmp-<random hex>`` in the same directory
as its final name; it is never listed, and keys may not use that prefix.

Atomicity does not rely on fsspec (its local ``mode="create"`` checks, then
writes: racing creators can both win). Instead:

* ``put``: write a temp file, fsync it, ``os.replace`` it over the final name
  (atomic on POSIX and Windows), fsync the directory.
* ``put_if_absent``: write and fsync a temp file, then ``os.link`` it to the
  final name. ``link`` fails with ``EEXIST`` if the name exists, atomically,
  on every local and NFSv3+ file system, so exactly one racer wins and the
  object is complete from the moment it has a name. The temp file is then
  unlinked.

Durability choice (``fsync=True``, the default): the file is fsynced before it
gets its final name, otherwise a crash can leave a durable name pointing at
empty or partial data (ext4/xfs delayed allocation). The directory is fsynced
after the rename/link, and the parent of every directory we create, so that a
``put_if_absent`` that returned True (a version record: the commit point) is
still there after a power loss. ``fsync=False`` skips all of it for scratch
stores and tests; atomicity against concurrent readers holds either way.

Empty directories left by ``delete`` are kept: removing them would race with a
writer that has just created the directory and is about to link into it.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import secrets
import stat as stat_module
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from artifactstore.backends._errors import mapped_errors
from artifactstore.backends._keys import check_prefix, check_range, split_prefix
from artifactstore.backends.base import ObjectInfo, check_key
from artifactstore.backends.temps import TempFile
from artifactstore.core.errors import BackendUnavailableError, InvalidInputError, NotFoundError
from artifactstore.core.vectorio import write_parts

__all__ = ["TEMP_PREFIX", "LocalBackend"]

#: Name prefix of temp files; reserved, never a key segment, never listed.
TEMP_PREFIX = ".tmp-"

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


class LocalBackend:
    """Objects as files under ``root``; atomic ``put`` and ``put_if_absent``."""

    def __init__(
        self, root: str | os.PathLike[str], *, create: bool = True, fsync: bool = True
    ) -> None:
        """Open (and by default create) the store directory ``root``.

        Raises ``BackendUnavailableError`` if ``root`` is missing and
        ``create`` is False, or is not a directory.
        """
        self._root = os.path.abspath(os.fspath(root))
        self._url = Path(self._root).as_uri()
        self._fsync = fsync
        with mapped_errors("open", None, self._url):
            if create:
                os.makedirs(self._root, exist_ok=True)
            if not os.path.isdir(self._root):
                raise BackendUnavailableError(
                    f"open on {self._url}: the store directory does not exist; "
                    "create it or check the path"
                )

    def __repr__(self) -> str:
        return f"LocalBackend({self._root!r})"

    @property
    def url(self) -> str:
        """``file://`` URL of the root directory."""
        return self._url

    @property
    def root(self) -> str:
        """Absolute path of the root directory."""
        return self._root

    @property
    def supports_atomic_create(self) -> bool:
        """True: ``put_if_absent`` uses ``os.link``, atomic across processes."""
        return True

    @property
    def supports_vectored_put(self) -> bool:
        """``put_parts`` writes the pieces with ``os.writev``, without joining them."""
        return True

    @property
    def supports_range(self) -> bool:
        """True: ``get_range`` seeks and reads only the requested bytes."""
        return True

    # -- reads -----------------------------------------------------------

    def get(self, key: str) -> bytes:
        """Return the whole object. Raises ``NotFoundError`` if absent."""
        path = self._path(key)
        with mapped_errors("get", key, self._url), self._open_read(path, "get", key) as f:
            return f.read()

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Return up to ``length`` bytes from ``start`` (fewer past the end)."""
        path = self._path(key)
        check_range(start, length)
        with (
            mapped_errors("get_range", key, self._url),
            self._open_read(path, "get_range", key) as f,
        ):
            f.seek(start)
            return f.read(length)

    def exists(self, key: str) -> bool:
        """Whether a regular file is stored under ``key``."""
        path = self._path(key)
        with mapped_errors("exists", key, self._url):
            try:
                return stat_module.S_ISREG(os.stat(path).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                return False

    def stat(self, key: str) -> ObjectInfo:
        """Size of the object. Raises ``NotFoundError`` if absent."""
        path = self._path(key)
        with mapped_errors("stat", key, self._url):
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                st = None
            if st is None or not stat_module.S_ISREG(st.st_mode):
                raise self._not_found("stat", key)
            # No content hash on a plain file system: a replaced file gets a new
            # inode, an edited one a new mtime (and usually size).
            return ObjectInfo(key=key, size=st.st_size,
                              etag=f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}")

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys starting with ``prefix``, sorted; temp files excluded.

        The directory tree is read when ``list`` is called (errors raise
        here, not in the middle of iteration).
        """
        check_prefix(prefix)
        head, rest = split_prefix(prefix)
        base = os.path.join(self._root, *head.split("/")) if head else self._root
        keys: builtins.list[str] = []
        with mapped_errors("list", prefix, self._url):
            if os.path.isdir(base):
                self._walk(base, head, rest, keys)
        keys.sort()
        return iter(keys)

    # -- writes ----------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """Atomically store ``data`` under ``key``, replacing any object."""
        self._replace(key, data)

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """``put`` without joining ``parts``: they go to the file with ``os.writev``."""
        self._replace(key, parts)

    def _replace(self, key: str, data: bytes | Sequence[bytes | memoryview]) -> None:
        path = self._path(key)
        with mapped_errors("put", key, self._url):
            directory = os.path.dirname(path)
            self._makedirs(directory)
            tmp = self._write_temp(directory, data)
            try:
                os.replace(tmp, path)
            except BaseException:
                _unlink_quietly(tmp)
                raise
            self._sync_dir(directory)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` unless it exists; True if this call created it.

        The object appears complete or not at all: the data is written and
        fsynced under a temp name first, then hard-linked to ``key``.
        """
        path = self._path(key)
        with mapped_errors("put_if_absent", key, self._url):
            directory = os.path.dirname(path)
            self._makedirs(directory)
            tmp = self._write_temp(directory, data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                _unlink_quietly(tmp)
            self._sync_dir(directory)
            return True

    def delete(self, key: str) -> None:
        """Remove the object; an absent key (or a directory) is not an error."""
        path = self._path(key)
        with mapped_errors("delete", key, self._url):
            if os.path.isdir(path):
                return
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):
                return

    def close(self) -> None:
        """Nothing to release; idempotent."""

    # -- temp files left by interrupted writes (temps.py) -------------------

    def temp_files(self) -> builtins.list[TempFile]:
        """Every temp file under the root, with its last write time."""
        found: builtins.list[TempFile] = []
        with mapped_errors("list", "", self._url):
            for directory, dirs, files in os.walk(self._root):
                dirs[:] = [d for d in dirs if not d.startswith(TEMP_PREFIX)]
                for name in files:
                    if name.startswith(TEMP_PREFIX):
                        path = os.path.join(directory, name)
                        with contextlib.suppress(FileNotFoundError):  # renamed meanwhile
                            st = os.stat(path, follow_symlinks=False)
                            found.append(TempFile(os.path.relpath(path, self._root),
                                                  st.st_mtime, st.st_size))
        return found

    def remove_temp(self, temp: TempFile, older_than: float) -> None:
        """Remove ``temp`` if it is still a temp file not written for ``older_than`` s."""
        path = os.path.join(self._root, temp.path)
        # Why the checks again: only ever a temp file inside the root, and one that no
        # writer touched since it was found (a live writer keeps its mtime fresh).
        inside = os.path.commonpath([self._root, os.path.abspath(path)]) == self._root
        if not inside or not os.path.basename(path).startswith(TEMP_PREFIX):
            raise InvalidInputError(f"{temp.path!r} is not a temp file of {self._url}")
        with mapped_errors("delete", temp.path.replace(os.sep, "/"), self._url):
            try:
                st = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat_module.S_ISREG(st.st_mode) and time.time() - st.st_mtime > older_than:
                _unlink_quietly(path)

    # -- helpers ---------------------------------------------------------

    def _path(self, key: str) -> str:
        check_key(key)
        parts = key.split("/")
        if any(part.startswith(TEMP_PREFIX) for part in parts):
            raise InvalidInputError(
                f"invalid storage key {key!r}: segments starting with {TEMP_PREFIX!r} "
                "are reserved for temp files"
            )
        return os.path.join(self._root, *parts)

    def _not_found(self, op: str, key: str) -> NotFoundError:
        return NotFoundError(f"{op} {key!r} on {self._url}: no such object; check the key")

    def _open_read(self, path: str, op: str, key: str) -> BinaryIO:
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise self._not_found(op, key) from exc

    def _walk(self, directory: str, rel: str, first_filter: str, out: builtins.list[str]) -> None:
        """Collect keys below ``directory`` (key prefix ``rel``) into ``out``.

        ``first_filter`` restricts the first level to names starting with it.
        """
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(TEMP_PREFIX) or not name.startswith(first_filter):
                    continue
                key = f"{rel}/{name}" if rel else name
                if entry.is_dir(follow_symlinks=False):
                    self._walk(entry.path, key, "", out)
                elif entry.is_file(follow_symlinks=False):
                    out.append(key)

    def _write_temp(self, directory: str, data: bytes | Sequence[bytes | memoryview]) -> str:
        """Write ``data`` (or its parts, in order) to a fresh temp file in ``directory``;
        fsync; return its path."""
        tmp = os.path.join(directory, TEMP_PREFIX + secrets.token_hex(8))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_BINARY, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                if isinstance(data, bytes | bytearray | memoryview):
                    f.write(data)
                else:
                    write_parts(f, data)
                f.flush()
                if self._fsync:
                    os.fsync(f.fileno())
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return tmp

    def _makedirs(self, directory: str) -> None:
        """Create ``directory`` and missing parents, fsyncing each new entry's parent."""
        if os.path.isdir(directory):
            return
        missing: list[str] = []
        current = directory
        while not os.path.isdir(current) and current != self._root:
            missing.append(current)
            current = os.path.dirname(current)
        for path in reversed(missing):
            try:
                os.mkdir(path)
            except FileExistsError:
                if not os.path.isdir(path):
                    raise
                continue
            self._sync_dir(os.path.dirname(path))

    def _sync_dir(self, directory: str) -> None:
        """fsync a directory so new names in it survive a crash (POSIX only)."""
        if not self._fsync or not hasattr(os, "O_DIRECTORY"):
            return
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
