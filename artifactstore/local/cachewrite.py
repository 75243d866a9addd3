"""The write side of the file cache: entries put in, looked up and evicted (docs/design.md §8).

The vocabulary (entry, last use, eviction) is :mod:`artifactstore.local.filecache`'s,
whose :class:`~artifactstore.local.filecache.FileCache` adds the read side (copies
out, version notes, ``info`` and ``clean``) to :class:`CacheWriter`. Entries are
created whole: a private temp file under ``<root>/tmp`` is filled, checked for its
size, made read-only and renamed over ``<root>/<aa>/<hex>``. Eviction deletes the
least recently used entries under an exclusive ``flock`` on ``<root>/.lock``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from artifactstore.core.digest import Digest
from artifactstore.core.errors import BackendError, ReadOnlyError, StorageFullError
from artifactstore.core.privatefiles import FILE_MODE, private_folder, tighten
from artifactstore.objects.store import default_cache_dir

__all__ = [
    "FICLONE", "HEX_NAME", "TEMP_MARK", "CacheInfo", "CacheWriter", "copy_file", "discard",
    "mapped_error", "process_umask",
]  # fmt: skip

# linux/fs.h: _IOW(0x94, 9, int). Python's fcntl names it only from 3.12 on.
FICLONE: Final[int] = getattr(fcntl, "FICLONE", 0x40049409)

# Same mark and naming as download.TEMP_MARK (mark, pid, random, name), so its sweep
# of abandoned temps also removes those of a killed materialize.
TEMP_MARK = ".artifactstore-tmp-"
_TEMP_DIR = "tmp"
_LOCK_NAME = ".lock"
#: cache entries: read-only (never changed in place) and the user's alone
_ENTRY_MODE = 0o400
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
# An insert rescans the cache when its running estimate would pass the cap or is
# older than this, or than _RESCAN_COST times the last scan took (whichever is
# longer: a cache of 100,000 entries takes about a second to scan, and a download
# must not spend a fifth of its time counting); other processes' inserts are seen
# within that time.
_RESCAN_SECONDS = 5.0
_RESCAN_COST = 20
# Evicting after an insert goes down to this share of the cap, so a full cache is
# not rescanned on every insert.
_LOW_WATER = 0.9
_BLOCK = 8 << 20
HEX_NAME = re.compile(r"[0-9a-f]{64}")
#: an entry's folder name (its digest's first byte in hex) -> that byte
_SHARDS: Final = {f"{byte:02x}": byte for byte in range(256)}


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """What a cache holds: ``entries`` files of ``bytes`` in total, capped at ``max_bytes``."""

    root: Path
    entries: int
    bytes: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class _Entry:
    used: float
    size: int
    path: Path


class CacheWriter:
    """The write side of a :class:`~artifactstore.local.filecache.FileCache`: its folder,
    inserts, lookups and eviction (the read side copies entries out and keeps notes)."""

    def __init__(self, root: Path | None, max_bytes: int, *, reflink: bool) -> None:
        """``root`` defaults to ``default_cache_dir() / "files"``; ``max_bytes`` >= 0 is
        the cap; ``reflink=False`` always makes plain copies."""
        self.root = Path(root) if root is not None else default_cache_dir() / "files"
        tighten(self.root)  # made by an older version (0755): private from now on
        self.max_bytes = max_bytes
        self._reflink = reflink
        umask = process_umask()
        #: new entries get their final mode from ``os.open`` (the umask keeps 0400)
        self._direct_mode = umask is not None and not umask & _ENTRY_MODE
        self._estimate: int | None = None
        self._scanned_at = 0.0
        self._rescan_after = _RESCAN_SECONDS
        #: folders this object made or checked private (an insert per small file of a
        #: download would otherwise stat and tighten the same three folders each time)
        self._private: set[Path] = set()

    def path_for(self, digest: Digest) -> Path:
        """Where the entry for ``digest`` lives (whether or not it is cached)."""
        return self.root / digest.hex[:2] / digest.hex

    def shards(self) -> frozenset[int]:
        """The first bytes of the digests the cache may hold now: the names of its
        ``<aa>`` folders (an entry lives in the one its digest starts with). A download
        asks once, so that with a cold cache its files cost no failed ``open`` each
        (20,000 of them on an S3 restore of the images); a folder made later is not
        seen, which only makes a later file of the same download a miss."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return frozenset()
        return frozenset(_SHARDS[name] for name in names if name in _SHARDS)

    def lookup(self, digest: Digest, size: int) -> Path | None:
        """The entry holding ``digest`` of ``size`` bytes, marked as just used; else None.

        An entry of another size is damaged: it is removed and None returned.
        The path may vanish at any time (another process evicting); callers must
        treat a failed open as a miss. Prefer :meth:`materialize` to copy it out.
        """
        path = self.path_for(digest)
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_size != size):
            discard(path)
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        with contextlib.suppress(OSError):
            os.utime(path, follow_symlinks=False)
        return path

    def insert(self, source: Path, digest: Digest) -> Path:
        """Cache a copy of ``source``, whose bytes the caller verified against ``digest``.

        Returns the entry's path. When the cache cannot take it (unwritable, disk
        full, source unreadable) nothing is cached and ``source`` itself is returned:
        the cache never fails a download; so is a file larger than ``max_bytes``.
        Afterwards evicts least-recently-used entries (never this one) until the
        total is within ``max_bytes`` (down to 90% of it, so that a full cache is
        not rescanned on every insert).
        """
        try:
            with open(source, "rb") as src:
                size = os.fstat(src.fileno()).st_size
                placed = self._place(digest, size, lambda dst: copy_file(
                    src.fileno(), dst, reflink=self._reflink))
        except OSError:
            return source
        return source if placed is None else placed

    def insert_bytes(self, data: bytes, digest: Digest) -> Path | None:
        """Cache ``data``, whose digest the caller verified, as :meth:`insert` does a file
        (written straight from the bytes in hand, no copy and no re-read); the entry,
        or None when the cache cannot take it."""
        try:
            return self._place(digest, len(data), lambda dst: _write_all(dst, data),
                               sized=True)
        except OSError:
            return None

    def _place(self, digest: Digest, size: int, fill: Callable[[int], object], *,
               sized: bool = False) -> Path | None:
        """The entry for ``digest`` of ``size`` bytes, written by ``fill`` into a private
        temp file (a descriptor) checked for its size (unless ``sized``: ``fill``
        writes exactly ``size`` bytes or raises) and renamed into place (None: too
        big, or the copy came out short). Raises OSError."""
        final = self.path_for(digest)
        if self.lookup(digest, size) is not None:
            return final
        if size > self.max_bytes:
            return None  # it would flush everything else and still not fit
        try:
            temp = self._private_folder(self.root / _TEMP_DIR) / (
                f"{TEMP_MARK}{secrets.token_hex(8)}")
            self._private_folder(final.parent)
            # Entries are read-only and private: made 0400 at once when the umask keeps
            # that (the descriptor still writes), else 0600 and changed once written.
            fd = os.open(temp, _NEW_FILE, _ENTRY_MODE if self._direct_mode else FILE_MODE)
        except OSError:
            self._private.clear()  # a folder removed under us: made again next time
            raise
        try:
            try:
                fill(fd)
                if not sized and os.fstat(fd).st_size != size:
                    discard(temp)
                    return None
                if not self._direct_mode:
                    os.fchmod(fd, _ENTRY_MODE)
            finally:
                os.close(fd)
            os.replace(temp, final)
        except BaseException:
            discard(temp)
            raise
        self._after_insert(size, final)
        return final

    def _private_folder(self, folder: Path) -> Path:
        if folder not in self._private:
            private_folder(folder, root=self.root)
            self._private.add(folder)
        return folder

    def _after_insert(self, size: int, inserted: Path) -> None:
        now = time.monotonic()
        estimate = self._estimate
        if (estimate is not None and now - self._scanned_at < self._rescan_after
                and estimate + size <= self.max_bytes):
            self._estimate = estimate + size
            return
        with contextlib.suppress(OSError):
            total = self._scan_total()
            self._rescan_after = max(_RESCAN_SECONDS,
                                     _RESCAN_COST * (time.monotonic() - now))
            if total > self.max_bytes:
                total = self._evict(int(self.max_bytes * _LOW_WATER), keep=inserted,
                                    temps_older_than=None).bytes
            self._estimate, self._scanned_at = total, now

    def _evict(self, limit: int, keep: Path | None,
               temps_older_than: float | None) -> CacheInfo:
        with self._locked():
            entries = sorted(self._scan(), key=lambda e: e.used)
            total = sum(e.size for e in entries)
            remaining = len(entries)
            for entry in entries:
                if total <= limit:
                    break
                if entry.path == keep:
                    continue
                try:
                    entry.path.unlink()
                except FileNotFoundError:
                    pass  # another process removed it: it is gone all the same
                except OSError:
                    continue
                total -= entry.size
                remaining -= 1
            if temps_older_than is not None:
                self._remove_temps(temps_older_than)
        return CacheInfo(self.root, remaining, total, self.max_bytes)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        private_folder(self.root, root=self.root)
        fd = os.open(self.root / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the lock

    def _scan_total(self) -> int:
        return sum(e.size for e in self._scan())

    def _scan(self) -> list[_Entry]:
        found: list[_Entry] = []
        try:
            shards = [d for d in os.scandir(self.root) if len(d.name) == 2 and d.is_dir()]
        except OSError:
            return found
        for shard in shards:
            with contextlib.suppress(OSError), os.scandir(shard.path) as it:
                for item in it:
                    if HEX_NAME.fullmatch(item.name) is None:
                        continue
                    try:
                        st = item.stat(follow_symlinks=False)
                    except OSError:
                        continue  # evicted since the listing
                    if stat.S_ISREG(st.st_mode):
                        found.append(_Entry(st.st_mtime, st.st_size, Path(item.path)))
        return found

    def _remove_temps(self, older_than: float) -> None:
        cutoff = time.time() - older_than
        with contextlib.suppress(OSError), os.scandir(self.root / _TEMP_DIR) as it:
            for item in it:
                with contextlib.suppress(OSError):
                    if item.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(item.path)


def process_umask() -> int | None:
    """This process's umask from /proc (Linux >= 4.7), read without changing it (as
    ``os.umask`` would, under other threads' feet); None where it cannot be read."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None  # no /proc (not Linux), or a line this parser does not know
    return None


def copy_file(src: int, dst: int, *, reflink: bool) -> bool:
    """Copy all of ``src`` into the empty ``dst``; True when it was a reflink (a clone)."""
    if reflink:
        try:
            fcntl.ioctl(dst, FICLONE, src)
            return True
        except OSError:
            pass  # EOPNOTSUPP (ext4, tmpfs), EXDEV (other filesystem), EINVAL, ...: copy
    _rewind(src, dst)
    try:
        while os.copy_file_range(src, dst, _BLOCK):
            pass  # the call copies; it returns 0 at the end of the file
        return False
    except OSError:
        _rewind(src, dst)  # copy_file_range unsupported here (ENOSYS, EXDEV, EINVAL)
    step = max(1, min(_BLOCK, os.fstat(src).st_size + 1))  # sized to the file (heap)
    while block := os.read(src, step):
        view = memoryview(block)
        while view:
            view = view[os.write(dst, view):]
    return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _rewind(src: int, dst: int) -> None:
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)


def discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def mapped_error(exc: OSError, root: Path) -> Exception:
    where = f"cannot change the file cache at {root}: {exc.strerror or exc}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ReadOnlyError(f"{where}; fix its permissions or set ARTIFACTSTORE_CACHE_DIR")
    if exc.errno == errno.ENOSPC:
        return StorageFullError(f"{where}; free some space")
    return BackendError(f"{where}; check the folder, or set ARTIFACTSTORE_CACHE_DIR")
