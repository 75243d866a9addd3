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
from artifactstore.localproc import process_exists
from artifactstore.model.paths import PathGuard
from artifactstore.model.tree import Entry, FileEntry, ReferenceEntry
from artifactstore.objects.store import ObjectStore
from artifactstore.references import fetch_reference

__all__ = ["TEMP_MARK", "file_matches", "materialize"]

TEMP_MARK = ".artifactstore-tmp-"
_BLOCK = 8 << 20
#: stored files written per read stream (bounds the list, not memory: reads are windowed)
_BATCH_FILES = 4096


def file_matches(path: Path, entry: Entry) -> bool:
    """Whether ``path`` already holds ``entry``'s bytes (size, then digest when known)."""
    digest = entry.digest
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size != entry.size:
            return False
        if digest is None:
            return False  # a reference logged without checksum: always fetch again
        hasher = Hasher()
        with open(path, "rb", buffering=0) as f:  # reads sized to the file: see filecache
            while block := f.read(max(1, min(_BLOCK, entry.size + 1))):
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

    Stored files come from ``objects``, read in store order across files so that
    neighbouring small files share one range request (few requests, few syscalls);
    references from their source, checked against what was recorded when they were
    logged. With a ``cache``, content already cached is copied (cloned where the file
    system can) from it, and newly downloaded files are added to it.
    """
    root.mkdir(parents=True, exist_ok=True)
    written = 0
    swept: set[Path] = set()
    batch: list[tuple[FileEntry, Path]] = []
    guard = PathGuard(root)
    for entry in entries:
        # Paths are checked again here, not only when logged: a manifest from a
        # damaged or hostile store must not write outside the download folder.
        target = guard.join(entry.path)
        if file_matches(target, entry):
            if progress is not None:
                progress(entry.size or 0)
            continue
        if target.parent not in swept:
            target.parent.mkdir(parents=True, exist_ok=True)
            guard.forget(target.parent)  # it exists now: check what it resolves to
            target = guard.join(entry.path)
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
            batch.append((entry, target))
            if len(batch) >= _BATCH_FILES:
                _write_batch(objects, batch, progress, cache)
                batch = []
        written += 1
    _write_batch(objects, batch, progress, cache)
    return written


def _write_batch(objects: ObjectStore, batch: list[tuple[FileEntry, Path]],
                 progress: Callable[[int], None] | None, cache: FileCache | None) -> None:
    """Write stored files whose chunks are read as one stream (coalesced across files)."""
    if not batch:
        return
    for (entry, target), blocks in zip(
        batch, objects.iter_files([e.file_ref() for e, _ in batch]), strict=True
    ):
        try:
            _write_verified(blocks, entry.path, entry.digest, entry.mode, target,
                            progress, cache)
        except IntegrityError as exc:
            if entry.path in str(exc):
                raise
            raise IntegrityError(f"{entry.path}: {exc}") from None


def _remove_abandoned_temps(folder: Path) -> None:
    """Delete temp files left by a download that was killed (its process is gone).

    Temp names carry the writer's pid, so a download still running in another
    process keeps its file.
    """
    for temp in folder.glob(f"{TEMP_MARK}*"):
        pid_text = temp.name[len(TEMP_MARK):].split("-", 1)[0]
        if pid_text.isdigit() and not process_exists(int(pid_text)):
            with contextlib.suppress(OSError):
                temp.unlink()


def _write_verified(blocks: Iterable[bytes], path: str, digest: Digest | None, mode: int,
                    target: Path, progress: Callable[[int], None] | None,
                    cache: FileCache | None) -> None:
    temp = target.with_name(
        f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}-{target.name}"[:255]
    )
    try:
        hasher = Hasher()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for data in blocks:
                hasher.update(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if progress is not None:
                    progress(len(data))
            os.fchmod(fd, mode & 0o777)
        finally:
            os.close(fd)
        if digest is not None and hasher.digest() != digest:
            raise IntegrityError(
                f"{path} does not match its digest {digest.hex}: the store is "
                "damaged; run 'artifactstore verify'"
            )
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
