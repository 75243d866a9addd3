"""Materializing files of a version on local disk, verified and resumable.

Every file is streamed into a temp name in its target folder, hashed as it is
written, and renamed over the final name only when its BLAKE3 digest matches
the manifest: an interrupted download leaves no half file under a final name,
and a rerun skips files that are already present and verified.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from artifactstore.digest import Digest, Hasher
from artifactstore.errors import IntegrityError
from artifactstore.filecache import FileCache
from artifactstore.model.paths import join_under
from artifactstore.model.tree import Entry, ReferenceEntry
from artifactstore.objects.store import ObjectStore
from artifactstore.references import fetch_reference

__all__ = ["TEMP_MARK", "file_matches", "materialize"]

TEMP_MARK = ".artifactstore-tmp-"
_BLOCK = 8 << 20


def file_matches(path: Path, entry: Entry) -> bool:
    """Whether ``path`` already holds ``entry``'s bytes (size, then digest when known)."""
    digest = entry.digest
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size != entry.size:
            return False
        if digest is None:
            return False  # a reference logged without checksum: always fetch again
        hasher = Hasher()
        with open(path, "rb") as f:
            while block := f.read(_BLOCK):
                hasher.update(block)
    except OSError:
        return False
    return hasher.digest() == digest


def materialize(
    objects: ObjectStore,
    entries: Iterable[Entry],
    root: Path,
    progress: Callable[[int], None] | None = None,
    cache: FileCache | None = None,
    reference_options: dict[str, Any] | None = None,
) -> int:
    """Write ``entries`` under ``root``; returns how many files were (re)written.

    Stored files come from ``objects``; references from their source, checked
    against what was recorded when they were logged. With a ``cache``, content
    already cached is copied (cloned where the file system can) from it, and
    newly downloaded files are added to it.
    """
    root.mkdir(parents=True, exist_ok=True)
    written = 0
    swept: set[Path] = set()
    for entry in entries:
        # Paths are checked again here, not only when logged: a manifest from a
        # damaged or hostile store must not write outside the download folder.
        target = join_under(root, entry.path)
        if file_matches(target, entry):
            if progress is not None:
                progress(entry.size or 0)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent not in swept:
            _remove_abandoned_temps(target.parent)
            swept.add(target.parent)
        if isinstance(entry, ReferenceEntry):
            blocks = fetch_reference(entry, reference_options or {})
            _write_verified(blocks, entry.path, entry.digest, 0o644, target, progress, None)
        elif cache is not None and cache.materialize(entry.digest, entry.size, target,
                                                     entry.mode):
            if progress is not None:
                progress(entry.size or 0)
        else:
            blocks = objects.iter_file(entry.file_ref())
            try:
                _write_verified(blocks, entry.path, entry.digest, entry.mode, target,
                                progress, cache)
            except IntegrityError as exc:
                if entry.path in str(exc):
                    raise
                raise IntegrityError(f"{entry.path}: {exc}") from None
        written += 1
    return written


def _remove_abandoned_temps(folder: Path) -> None:
    """Delete temp files left by a download that was killed (its process is gone).

    Temp names carry the writer's pid, so a download still running in another
    process keeps its file.
    """
    for temp in folder.glob(f"{TEMP_MARK}*"):
        pid_text = temp.name[len(TEMP_MARK):].split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            with contextlib.suppress(OSError):
                temp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _write_verified(blocks: Iterable[bytes], path: str, digest: Digest | None, mode: int,
                    target: Path, progress: Callable[[int], None] | None,
                    cache: FileCache | None) -> None:
    temp = target.with_name(
        f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}-{target.name}"[:255]
    )
    try:
        hasher = Hasher()
        with open(temp, "wb") as f:
            for data in blocks:
                hasher.update(data)
                f.write(data)
                if progress is not None:
                    progress(len(data))
        if digest is not None and hasher.digest() != digest:
            raise IntegrityError(
                f"{path} does not match its digest {digest.hex}: the store is "
                "damaged; run 'artifactstore verify'"
            )
        os.chmod(temp, mode & 0o777)
        if cache is not None and digest is not None:
            # From the verified temp file: the user cannot change these bytes in between.
            cache.insert(temp, digest)
        if target.is_dir() and not target.is_symlink():
            raise IntegrityError(f"cannot write {target}: a folder is in the way")
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
