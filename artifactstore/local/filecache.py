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

The write side (inserts, lookups, eviction, the folder layout and its lock) is
:class:`~artifactstore.local.cachewrite.CacheWriter`, which :class:`FileCache` extends
with the read side: copies out, version notes, ``info`` and ``clean``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from artifactstore.core.digest import Digest, Hasher, hash_bytes
from artifactstore.core.errors import ConfigurationError, InvalidInputError
from artifactstore.core.privatefiles import FILE_MODE, private_folder
from artifactstore.local.cachewrite import (
    HEX_NAME,
    TEMP_MARK,
    CacheInfo,
    CacheWriter,
    copy_file,
    discard,
    mapped_error,
)

__all__ = ["DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "CacheInfo", "FileCache", "parse_size"]

DEFAULT_MAX_BYTES: Final = 5 * 2**30
MAX_BYTES_ENV: Final = "ARTIFACTSTORE_CACHE_MAX_BYTES"

_VERSIONS_DIR = "versions"
_STALE_TEMP_SECONDS = 3600.0
_BLOCK = 8 << 20
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


class FileCache(CacheWriter):
    """Verified file contents on local disk, by digest; safe to share between processes."""

    def __init__(self, root: Path | None = None, max_bytes: int | None = None, *,
                 reflink: bool = True, verify: bool = True) -> None:
        """``root`` defaults to ``default_cache_dir() / "files"``, ``max_bytes`` to
        ``$ARTIFACTSTORE_CACHE_MAX_BYTES`` (bytes, or e.g. ``10G``) or 5 GiB.
        ``reflink=False`` always makes plain copies; ``verify=False`` skips re-hashing
        in :meth:`materialize` (trusting entries as inserted)."""
        cap = _max_bytes_from_env() if max_bytes is None else max_bytes
        if cap < 0:
            raise InvalidInputError(f"a cache size cap is >= 0 bytes, got {cap}")
        super().__init__(root, cap, reflink=reflink)
        self._verify = verify

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
            f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}-{target.name}"[:255])
        made: Path | None = None
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                discard(entry)
                return False
            with contextlib.suppress(OSError):
                os.utime(src)
            dst = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            made = temp
            try:
                copy_file(src, dst, reflink=self._reflink)
                good = os.fstat(dst).st_size == size and (
                    not self._verify or _digest_of(dst) == digest)
                if good:
                    os.fchmod(dst, mode & 0o777)
            finally:
                os.close(dst)
            if not good:
                # The entry changed after it was cached (bit rot, a user with
                # chmod): forget it rather than serve unverified bytes.
                discard(entry)
                return False
            os.replace(temp, target)
            made = None
            return True
        except OSError:
            return False
        finally:
            os.close(src)
            if made is not None:
                discard(made)

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
            raise mapped_error(exc, self.root) from exc

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
            raise mapped_error(exc, self.root) from exc


def _note_name(version: str) -> str:
    return hash_bytes(version.encode()).hex


def _read_note(path: Path) -> set[str]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return set()
    return {line for line in text.split() if HEX_NAME.fullmatch(line)}


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


