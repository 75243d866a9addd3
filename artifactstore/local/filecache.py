"""The local cache of downloaded file contents: size-capped, LRU (docs/design.md §8).

Vocabulary:

- **entry**: one read-only (0o444) file ``<root>/<aa>/<hex>`` holding exactly the
  bytes whose plain BLAKE3 digest is ``<hex>`` (``<aa>`` is its first two characters).
  Entries are only ever created whole, by renaming a finished temp file over the
  name, and are never written afterwards.
- **last use**: an entry's mtime. :meth:`FileCache.insert` and
  :meth:`FileCache.lookup` set it to now with ``os.utime``. We do not use atime:
  ``noatime`` mounts never update it and ``relatime`` only lazily, while nothing but
  this module changes an entry's mtime, so mtime is a reliable last-use record.
- **version note**: ``<root>/versions/<id>``, one per version downloaded through
  the cache, listing (one hex digest a line, appended) the entries that came from
  it; ``<id>`` is a hash of the store id, project and version, so the folder
  names nothing. It is how a purge met later (a tombstone this machine reads,
  perhaps long after the download, when the version's tree is gone from the
  store) finds what to drop: :meth:`FileCache.drop_version`.
- **eviction**: deleting least-recently-used entries until the total size is under a
  limit. It runs under an exclusive ``flock`` on ``<root>/.lock``, so evictions and
  :meth:`FileCache.clean` of several processes never interleave.

Safety across processes: inserts are atomic renames (two processes inserting the
same digest rename identical bytes over each other, which is harmless); readers
never take the lock and tolerate an entry vanishing under them. A file being
copied stays readable through its open descriptor after eviction unlinks it, and
a target name only ever appears by renaming a complete, checked copy over it.

Trust: an entry holds bytes the caller verified before :meth:`FileCache.insert`.
:meth:`FileCache.materialize` still re-hashes every copy it makes (unless built with
``verify=False``), so a damaged or tampered entry becomes a cache miss, never bad
bytes in a download. Copies are reflinks where the filesystem can clone files (a
separate inode that shares extents copy-on-write), else plain copies; never a
hardlink or symlink, through which a user could edit cached content.

Degrading: the cache is an optimisation and must never fail a download. When it
cannot be written (read-only or missing folder, full disk, permissions),
:meth:`~FileCache.insert` returns the ``source`` path unchanged and
:meth:`~FileCache.materialize` returns False, so the caller just downloads.
Only :meth:`~FileCache.clean`, which a user asks for explicitly, reports failures,
as :class:`~artifactstore.core.errors.ReadOnlyError` or ``BackendError``.

Length: one class whose inserts, copies out, eviction and version notes share one
folder layout and one lock; splitting them would spread that layout over modules.
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from artifactstore.core.digest import Digest, Hasher, hash_bytes
from artifactstore.core.errors import (
    BackendError,
    ConfigurationError,
    InvalidInputError,
    ReadOnlyError,
    StorageFullError,
)
from artifactstore.core.privatefiles import FILE_MODE, private_folder, tighten
from artifactstore.objects.store import default_cache_dir

__all__ = ["DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "CacheInfo", "FileCache", "parse_size"]

DEFAULT_MAX_BYTES: Final = 5 * 2**30
MAX_BYTES_ENV: Final = "ARTIFACTSTORE_CACHE_MAX_BYTES"

# linux/fs.h: _IOW(0x94, 9, int). Python's fcntl names it only from 3.12 on.
FICLONE: Final[int] = getattr(fcntl, "FICLONE", 0x40049409)

# Same mark and naming as download.TEMP_MARK (mark, pid, random, name), so its sweep
# of abandoned temps also removes those of a killed materialize.
_TEMP_MARK = ".artifactstore-tmp-"
_TEMP_DIR = "tmp"
_LOCK_NAME = ".lock"
_VERSIONS_DIR = "versions"
#: cache entries: read-only (never changed in place) and the user's alone
_ENTRY_MODE = 0o400
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_STALE_TEMP_SECONDS = 3600.0
# An insert rescans the cache when its running estimate would pass the cap or is
# older than this; other processes' inserts are seen within that time.
_RESCAN_SECONDS = 5.0
# Evicting after an insert goes down to this share of the cap, so a full cache is
# not rescanned on every insert.
_LOW_WATER = 0.9
_BLOCK = 8 << 20
_HEX_NAME = re.compile(r"[0-9a-f]{64}")
_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``"1234"``, ``"512K"``, ``"5G"``, ``"2GiB"`` (binary units, K to T)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise InvalidInputError(f"{text!r} is not a size: use bytes, or a number with K, M, G "
                                "or T (powers of 1024)")
    return int(match[1]) << (10 * " kmgt".index(match[2].lower() or " "))


def _max_bytes_from_env() -> int:
    text = os.environ.get(MAX_BYTES_ENV)
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(text)
    except InvalidInputError as exc:
        raise ConfigurationError(f"${MAX_BYTES_ENV}: {exc}") from None


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


class FileCache:
    """Verified file contents on local disk, by digest; safe to share between processes."""

    def __init__(self, root: Path | None = None, max_bytes: int | None = None, *,
                 reflink: bool = True, verify: bool = True) -> None:
        """``root`` defaults to ``default_cache_dir() / "files"``, ``max_bytes`` to
        ``$ARTIFACTSTORE_CACHE_MAX_BYTES`` (bytes, or e.g. ``10G``) or 5 GiB.
        ``reflink=False`` always makes plain copies; ``verify=False`` skips re-hashing
        in :meth:`materialize` (trusting entries as inserted)."""
        self.root = Path(root) if root is not None else default_cache_dir() / "files"
        tighten(self.root)  # made by an older version (0755): private from now on
        self.max_bytes = _max_bytes_from_env() if max_bytes is None else max_bytes
        if self.max_bytes < 0:
            raise InvalidInputError(f"a cache size cap is >= 0 bytes, got {self.max_bytes}")
        self._reflink = reflink
        self._verify = verify
        self._estimate: int | None = None
        self._scanned_at = 0.0
        #: folders this object made or checked private (an insert per small file of a
        #: download would otherwise stat and tighten the same three folders each time)
        self._private: set[Path] = set()

    def path_for(self, digest: Digest) -> Path:
        """Where the entry for ``digest`` lives (whether or not it is cached)."""
        return self.root / digest.hex[:2] / digest.hex

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
            _discard(path)
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
                placed = self._place(digest, size, lambda dst: _copy(
                    src.fileno(), dst, reflink=self._reflink))
        except OSError:
            return source
        return source if placed is None else placed

    def insert_bytes(self, data: bytes, digest: Digest) -> Path | None:
        """Cache ``data``, whose digest the caller verified, as :meth:`insert` does a file
        (written straight from the bytes in hand, no copy and no re-read); the entry,
        or None when the cache cannot take it."""
        try:
            return self._place(digest, len(data), lambda dst: _write_all(dst, data))
        except OSError:
            return None

    def _place(self, digest: Digest, size: int, fill: Callable[[int], object]
               ) -> Path | None:
        """The entry for ``digest`` of ``size`` bytes, written by ``fill`` into a private
        temp file (a descriptor) checked for its size and renamed into place (None: too
        big, or the copy came out short). Raises OSError."""
        final = self.path_for(digest)
        if self.lookup(digest, size) is not None:
            return final
        if size > self.max_bytes:
            return None  # it would flush everything else and still not fit
        try:
            temp = self._private_folder(self.root / _TEMP_DIR) / (
                f"{_TEMP_MARK}{secrets.token_hex(8)}")
            self._private_folder(final.parent)
            # 0600 from the start, then 0400: entries are read-only and private.
            fd = os.open(temp, _NEW_FILE, FILE_MODE)
        except OSError:
            self._private.clear()  # a folder removed under us: made again next time
            raise
        try:
            try:
                fill(fd)
                if os.fstat(fd).st_size != size:
                    _discard(temp)
                    return None
                os.fchmod(fd, _ENTRY_MODE)
            finally:
                os.close(fd)
            os.replace(temp, final)
        except BaseException:
            _discard(temp)
            raise
        self._after_insert(size, final)
        return final

    def _private_folder(self, folder: Path) -> Path:
        if folder not in self._private:
            private_folder(folder, root=self.root)
            self._private.add(folder)
        return folder

    def materialize(self, digest: Digest, size: int, target: Path, mode: int) -> bool:
        """Place a private copy of the cached ``digest`` at ``target`` with ``mode``; True.

        False, with ``target`` untouched, when the entry is missing, damaged, vanishes
        during the copy, or anything fails writing the target (the caller then
        downloads, meeting any real problem with the target itself). The copy is a
        reflink where the filesystem supports it, else a plain copy; it is written to
        a temp name beside ``target`` and renamed over it only once complete and,
        with ``verify`` (the default), re-hashed to ``digest``.
        """
        entry = self.path_for(digest)
        try:
            src = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        # download.py's naming: its sweep removes temps whose writer pid is dead.
        temp = target.with_name(
            f"{_TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}-{target.name}"[:255])
        made: Path | None = None
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                _discard(entry)
                return False
            with contextlib.suppress(OSError):
                os.utime(src)
            dst = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            made = temp
            try:
                _copy(src, dst, reflink=self._reflink)
                good = os.fstat(dst).st_size == size and (
                    not self._verify or _digest_of(dst) == digest)
                if good:
                    os.fchmod(dst, mode & 0o777)
            finally:
                os.close(dst)
            if not good:
                # The entry changed after it was cached (bit rot, a user with
                # chmod): forget it rather than serve unverified bytes.
                _discard(entry)
                return False
            os.replace(temp, target)
            made = None
            return True
        except OSError:
            return False
        finally:
            os.close(src)
            if made is not None:
                _discard(made)

    @staticmethod
    def version_name(store_id: str, project: str, ref: str) -> str:
        """The name :meth:`note_version` takes: the same for every copy a sync made."""
        return f"{store_id}/{project}/{ref}"

    def note_version(self, version: str, digests: Iterable[Digest]) -> None:
        """Remember that the entries ``digests`` came from ``version`` (a stable name:
        store id, project, ``artifact:vN``). Best effort, like :meth:`insert`."""
        lines = "".join(f"{d.hex}\n" for d in digests)
        if not lines:
            return
        with contextlib.suppress(OSError):
            folder = private_folder(self.root / _VERSIONS_DIR, root=self.root)
            # O_APPEND: two processes noting the same version both keep their lines
            fd = os.open(folder / _note_name(version),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
            try:
                os.write(fd, lines.encode())
            finally:
                os.close(fd)

    def drop_version(self, version: str) -> int:
        """Remove the entries that came from ``version`` (purged) and that no other
        noted version holds; returns how many were removed. A version never noted
        here removes nothing."""
        note = self.root / _VERSIONS_DIR / _note_name(version)
        if not note.is_file():
            return 0
        try:
            with self._locked():
                mine = _read_note(note)
                note.unlink()
                kept: set[str] = set()
                for other in (self.root / _VERSIONS_DIR).iterdir():
                    kept |= _read_note(other)
                removed = 0
                for hex_digest in sorted(mine - kept):
                    with contextlib.suppress(FileNotFoundError):
                        (self.root / hex_digest[:2] / hex_digest).unlink()
                        removed += 1
                return removed
        except OSError as exc:
            raise _mapped(exc, self.root) from exc

    def info(self) -> CacheInfo:
        """Count the entries and bytes cached now (an empty result if there is no cache)."""
        entries = self._scan()
        return CacheInfo(self.root, len(entries), sum(e.size for e in entries), self.max_bytes)

    def clean(self, *, keep_bytes: int = 0) -> CacheInfo:
        """Evict least-recently-used entries until at most ``keep_bytes`` remain.

        Also removes temp files that crashed inserts left behind. Returns what
        remains. Raises ReadOnlyError or BackendError when the cache cannot be
        changed (this is the one call that reports, since a user asked for it).
        """
        if keep_bytes < 0:
            raise InvalidInputError(f"keep_bytes is >= 0, got {keep_bytes}")
        if not self.root.is_dir():
            return CacheInfo(self.root, 0, 0, self.max_bytes)
        try:
            return self._evict(keep_bytes, keep=None, temps_older_than=_STALE_TEMP_SECONDS)
        except OSError as exc:
            raise _mapped(exc, self.root) from exc

    def _after_insert(self, size: int, inserted: Path) -> None:
        now = time.monotonic()
        estimate = self._estimate
        if (estimate is not None and now - self._scanned_at < _RESCAN_SECONDS
                and estimate + size <= self.max_bytes):
            self._estimate = estimate + size
            return
        with contextlib.suppress(OSError):
            total = self._scan_total()
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
                    if _HEX_NAME.fullmatch(item.name) is None:
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


def _note_name(version: str) -> str:
    return hash_bytes(version.encode()).hex


def _read_note(path: Path) -> set[str]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return set()
    return {line for line in text.split() if _HEX_NAME.fullmatch(line)}


def _copy(src: int, dst: int, *, reflink: bool) -> bool:
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
            pass
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


def _digest_of(fd: int) -> Digest:
    hasher = Hasher()
    offset = 0
    size = os.fstat(fd).st_size
    # Reads no bigger than the file: an 8 MiB read buffer per small file fragments
    # the heap of a process that copies thousands of them.
    while block := os.pread(fd, max(1, min(_BLOCK, size - offset + 1)), offset):
        hasher.update(block)
        offset += len(block)
    return hasher.digest()


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _mapped(exc: OSError, root: Path) -> Exception:
    where = f"cannot change the file cache at {root}: {exc.strerror or exc}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ReadOnlyError(f"{where}; fix its permissions or set ARTIFACTSTORE_CACHE_DIR")
    if exc.errno == errno.ENOSPC:
        return StorageFullError(f"{where}; free some space")
    return BackendError(f"{where}; check the folder, or set ARTIFACTSTORE_CACHE_DIR")
