"""Materializing files of a version on local disk, verified and resumable.

Into a folder that already holds files, every file is streamed into a temp name
in its target folder, hashed as it is written, and renamed over the final name
only when its BLAKE3 digest matches the manifest. A whole version downloaded
into a new (or empty) folder is written into a staging folder beside it,
``.artifactstore-tmp-<pid>-<rand>-<name>``, each file straight under its name
there and checked the same way, and the staging folder is renamed to the target
at the end: one directory update per file instead of two, and the target appears
complete or not at all. Either way an interrupted download leaves no half file
under a final name, and a rerun skips files already present and verified (it
takes over the staging folder a killed download left). From a local store, a file of
at least :data:`_PLACED_MIN` bytes is written by the store's I/O threads at its
offsets (:meth:`ObjectStore.read_file_into`), checked the same way before its rename.

The target is checked before anything is written (:func:`check_target`). A failure
of the local disk (full, read-only, forbidden) is mapped here, by
``errors.local_write_error``, and removes the staging folder and the folders the
download made: the target is as it was (docs/design.md §8).

Through a file cache (a remote store's), each downloaded file of at least
:data:`CACHE_MIN` bytes is also put in the cache; smaller ones are not: the
download is the user's copy, and for a small file a second file (create, write,
rename) cost as much as the download itself (docs/benchmarks.md, "Restores, round
four"). A small file read alone (:func:`read_file`: ``read``, ``get_path``, the
datasets) is still cached, and a cached one is still used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from artifactstore.core.digest import Digest, Hasher, hash_bytes
from artifactstore.core.errors import (
    ArtifactStoreError,
    IntegrityError,
    InvalidInputError,
    local_write_error,
)
from artifactstore.core.heap import collector_paused
from artifactstore.core.sizes import human_size
from artifactstore.local.cachewrite import process_umask
from artifactstore.local.filecache import FileCache
from artifactstore.model.paths import PathGuard, validate_path
from artifactstore.model.tree import Entry, FileEntry, ReferenceEntry
from artifactstore.objects.store import ObjectStore
from artifactstore.repository.filecreator import FileCreator
from artifactstore.repository.filewriter import CacheFeeder, FileWriter
from artifactstore.repository.references import fetch_reference
from artifactstore.repository.staging import (
    TEMP_MARK,
    publish,
    release_stage,
    remove_abandoned_temps,
    staging_folder,
)

__all__ = ["CACHE_MIN", "TEMP_MARK", "check_target", "file_matches", "materialize"]

#: how every downloaded file is created: new, never through a link (a manifest's path
#: that meets a link or an existing file is refused, not followed or overwritten)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
_BLOCK = 8 << 20
#: stored files written per read stream (bounds the list, not memory: reads are windowed);
#: the first batches are smaller, so that the writer thread starts early in a big tree
_BATCH_FILES = 8192
_FIRST_BATCH = 512
#: files up to this size go into the file cache from the bytes in hand, not re-read
_CACHE_FROM_MEMORY = 1 << 20
#: a download puts files of at least this size in the file cache (module docstring)
CACHE_MIN = 64 << 10
#: files up to this size are written by the writer thread(s) from their checked bytes
_WRITE_AHEAD_MAX = 1 << 20
#: from a local store, files at least this big are written by the store's I/O threads
#: at their offsets (ObjectStore.read_file_into: no buffer per chunk, the main thread free)
_PLACED_MIN = 8 << 20
#: threads creating and writing small files beside the main thread
_WRITER_THREADS = 1
#: a fresh staging folder's small files go to a helper process (filecreator.py) once a
#: download has this many stored files: below, its start (~15 ms) costs more than it saves
_CREATOR_MIN = _FIRST_BATCH


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
    *,
    whole_tree: bool = False,
    size: int | None = None,
    store_root: Path | None = None,
) -> int:
    """Write ``entries`` under ``root``; returns how many files were (re)written.

    Stored files come from ``objects``, read in store order across files so that
    neighbouring small files share one range request (few requests, few syscalls);
    references from their source, checked against what was recorded when they were
    logged. With a ``cache``, content already cached is copied (cloned where the file
    system can) from it, and newly downloaded files are added to it. With
    ``whole_tree`` (``entries`` are all of a version) a new or empty ``root`` is
    written through a staging folder (module docstring).

    ``root`` must be a folder or a new name (InvalidInputError otherwise, nothing
    written), and not inside ``store_root``, the folder of a local store. A failure
    of the local disk (full, read-only, no permission) is one :mod:`errors` class
    naming ``root`` and ``size`` (the bytes asked for), and leaves no staging folder,
    temp file or folder this call made: ``root`` is as it was, except that files
    already completed in a folder written in place stay (each verified; a rerun
    skips them). A failure on the store's side keeps the staging folder for the
    next try to take over.
    """
    check_target(root, store_root)
    created: list[Path] = []
    stage: tuple[Path, bool] | None = None
    try:
        created = _make_folders(root.parent)
        stage = staging_folder(root) if whole_tree else None
        if stage is None:
            created += _make_folders(root)
            return _write_entries(objects, entries, root, progress, cache, reference_options,
                                  fresh=False)
        folder, fresh = stage
        with collector_paused():
            written = _write_entries(objects, entries, folder, progress, cache,
                                     reference_options, fresh=fresh)
        publish(folder, root)
        return written
    except OSError as exc:
        if isinstance(exc, ArtifactStoreError):
            raise
        # The local disk failed: a retry into the same disk state cannot do better, so
        # nothing is kept for one (a full disk gets its space back).
        if stage is not None:
            shutil.rmtree(stage[0], ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when still empty
        what = "" if size is None else f" {human_size(size)}"
        raise local_write_error(exc, f"cannot download{what} into {root}",
                                "download elsewhere") from None
    finally:  # on a store-side failure the staging folder stays, for the next try
        if stage is not None:
            release_stage(stage[0])


def check_target(root: Path, store_root: Path | None = None) -> None:
    """Refuse a download target that cannot become a folder of files, before writing.

    ``root`` (or the first of its parents that exists) must be a folder; ``store_root``
    is a local store's folder, which a download must not write into: its files would
    sit among the store's objects (and a hostile manifest could name them).
    """
    if os.path.lexists(root) and not root.is_dir():
        what = "a broken symbolic link" if not root.exists() else "a file, not a folder"
        raise InvalidInputError(f"cannot download into {root}: it is {what}; name a new "
                                "or empty folder")
    for parent in root.absolute().parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise InvalidInputError(f"cannot download into {root}: {parent} is not a "
                                        "folder; name a folder")
            break
    if store_root is not None:
        target, store = root.resolve(), store_root.resolve()
        if target == store or target.is_relative_to(store):
            raise InvalidInputError(f"cannot download into {root}: it is inside the store "
                                    f"{store}; download elsewhere")


def _make_folders(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it made, outermost first."""
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # a concurrent download made it
        made.append(path)
    return made


def _write_entries(
    objects: ObjectStore,
    entries: Iterable[Entry],
    root: Path,
    progress: Callable[[int], None] | None,
    cache: FileCache | None,
    reference_options: dict[str, Any] | None,
    *,
    fresh: bool,
) -> int:
    """``fresh``: ``root`` is a staging folder this process made, empty, so files go
    straight under their names with no look at what is there (O_EXCL refuses any)."""
    written = 0
    swept: set[Path] = set()
    #: folders (as in the manifest) made and resolved in a fresh staging folder
    made: set[str] = set()
    base = str(root)
    batch: list[tuple[FileEntry, Path | str]] = []
    guard = PathGuard(root)
    # the cache's folders, listed once: a file whose folder is absent is not looked up
    shards = cache.shards() if cache is not None else frozenset()
    umask = process_umask()
    limit = _FIRST_BATCH
    # One writer (and cache feeder) for the whole download: per batch, the writer's
    # queue drained and the next batch's reads started from nothing, both threads
    # idle in turn at each of a restore's batch boundaries.
    with CacheFeeder(cache) as feed, FileWriter(_WRITER_THREADS) as writer, \
            FileCreator() as creator:
        creating: FileCreator | None = None  # started for a big fresh download (below)
        for entry in entries:
            # Paths are checked again here, not only when logged: a manifest from a
            # damaged or hostile store must not write outside the download folder.
            target: Path | str
            folder = entry.path.rpartition("/")[0]
            if fresh and folder in made:
                # The folder was made by this call and resolved inside root (below), and
                # files are created with O_EXCL|O_NOFOLLOW: the path's own check is all
                # that is left (a Path and a resolve per file cost ~15 us at 1M files).
                target = f"{base}/{validate_path(entry.path)}"
            else:
                target = guard.join(entry.path, created_here=fresh)
                if not fresh and file_matches(target, entry):
                    if progress is not None:
                        progress(entry.size or 0)
                    continue
                if target.parent not in swept:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    guard.forget(target.parent)  # it exists now: check what it resolves to
                    target = guard.join(entry.path, created_here=fresh)
                    if not fresh:
                        remove_abandoned_temps(target.parent)
                    swept.add(target.parent)
                if fresh:
                    made.add(folder)
            if isinstance(entry, ReferenceEntry):
                blocks = fetch_reference(entry, reference_options or {})
                _write_verified(blocks, entry.path, entry.digest, 0o644, target, progress, None,
                                in_place=fresh)
            elif (entry.digest.raw[0] in shards and cache is not None
                  and cache.materialize(entry.digest, entry.size, Path(target), entry.mode)):
                if progress is not None:
                    progress(entry.size or 0)
            elif entry.size >= _PLACED_MIN and objects.supports_placed_writes:
                ref = entry.file_ref()
                try:
                    _write_verified((), entry.path, entry.digest, entry.mode, target,
                                    progress, cache, in_place=fresh, checked=True, umask=umask,
                                    fill=partial(objects.read_file_into, ref,
                                                 progress=progress))
                except IntegrityError as exc:
                    raise _naming(exc, entry.path) from None
            else:
                batch.append((entry, target))
                if len(batch) >= limit:
                    if fresh and limit == _CREATOR_MIN and creator.start():
                        creating = creator
                    _write_batch(objects, batch, progress, cache, in_place=fresh,
                                 umask=umask, writer=writer, feed=feed, creator=creating)
                    batch = []
                    limit = min(4 * limit, _BATCH_FILES)
            written += 1
        _write_batch(objects, batch, progress, cache, in_place=fresh, umask=umask,
                     writer=writer, feed=feed, creator=creating)
    return written


def _write_batch(objects: ObjectStore, batch: list[tuple[FileEntry, Path | str]],
                 progress: Callable[[int], None] | None, cache: FileCache | None,
                 *, in_place: bool, umask: int | None, writer: FileWriter,
                 feed: Callable[[bytes, Digest], None] | None,
                 creator: FileCreator | None = None) -> None:
    """Write stored files whose chunks are read as one stream (coalesced across files);
    each file's digest is checked by the store from the bytes read (``check``). Small
    files go to ``writer``, their cache entries to ``feed`` (module filewriter); the
    common small file of a fresh staging folder to ``creator`` when given."""
    if not batch:
        return

    def direct(mode: int) -> bool:
        """Whether ``os.open`` gives a new file ``mode`` (the umask keeps its bits)."""
        return umask is not None and not mode & 0o777 & umask

    for (entry, target), blocks in zip(
        batch, objects.iter_files([e.file_ref() for e, _ in batch], check=True,
                                  caller_hashes=_WRITE_AHEAD_MAX),
        strict=True,
    ):
        try:
            if entry.size > _WRITE_AHEAD_MAX:
                _write_verified(blocks, entry.path, entry.digest, entry.mode, target,
                                progress, cache, in_place=in_place, checked=True,
                                umask=umask, feed=feed)
                continue
            # A small file: its bytes end checked (the iterator ended without
            # error), then a writer thread creates and writes it (module filewriter).
            held = list(blocks)
        except IntegrityError as exc:
            raise _naming(exc, entry.path) from None
        if progress is not None:
            progress(entry.size)
        keep = cache if entry.size >= CACHE_MIN else None  # module docstring
        if in_place and keep is None and len(held) == 1 and direct(entry.mode):
            # the common small file: checked, one block, its final mode from os.open
            if creator is not None:
                creator.submit(str(target), entry.mode & 0o777, held[0], entry.path)
            else:
                writer.submit(partial(_create_checked, held[0], entry.path, target,
                                      entry.mode), entry.size)
        else:
            writer.submit(partial(_write_held, held, entry, target, keep, in_place, umask,
                                  feed), entry.size)


def _naming(exc: IntegrityError, path: str) -> IntegrityError:
    return exc if path in str(exc) else IntegrityError(f"{path}: {exc}")


def _write_held(held: list[bytes], entry: FileEntry, target: Path | str,
                cache: FileCache | None, in_place: bool, umask: int | None,
                feed: Callable[[bytes, Digest], None] | None) -> None:
    """A writer thread's job: one small file from its bytes in hand, hashed to its
    digest here when the store did not (``iter_files``' ``caller_hashes``), before
    anything is created."""
    if len(held) > 1:
        data = b"".join(held)
        if hash_bytes(data) != entry.digest:
            raise IntegrityError(f"{entry.path}: file {entry.digest.hex} does not match "
                                 "its digest: the store is damaged; run 'artifactstore "
                                 "verify'")
        held = [data]
    try:
        _write_verified(held, entry.path, entry.digest, entry.mode, target, None, cache,
                        in_place=in_place, checked=True, umask=umask, feed=feed)
    except IntegrityError as exc:
        raise _naming(exc, entry.path) from None


def _create_checked(data: bytes, path: str, target: Path | str, mode: int) -> None:
    """A writer thread's job for the common small file: :func:`_write_verified` with
    ``in_place`` and ``checked``, one block, no cache, and a mode the umask keeps, in
    the few steps that case takes (per file, the writer's Python holds the GIL the
    main thread needs)."""
    try:
        fd = os.open(target, _CREATE, mode & 0o777)
    except FileExistsError:
        # not ours to remove: the file written under this name first
        raise IntegrityError(f"{path} collides with another path of the manifest: the "
                             "store is damaged; run 'artifactstore verify'") from None
    try:
        try:
            done = os.write(fd, data)
            if done < len(data):
                view = memoryview(data)[done:]
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


def _write_verified(blocks: Iterable[bytes], path: str, digest: Digest | None, mode: int,
                    target: Path | str, progress: Callable[[int], None] | None,
                    cache: FileCache | None, *, in_place: bool = False,
                    checked: bool = False, umask: int | None = None,
                    feed: Callable[[bytes, Digest], None] | None = None,
                    fill: Callable[[int], None] | None = None) -> None:
    """Write ``blocks`` to ``target`` through a temp name, renamed once verified; with
    ``in_place`` (a fresh staging folder), straight to ``target``, which must not exist.
    ``fill`` writes the whole file into the descriptor it is given instead of ``blocks``
    (and reports progress itself), and raises IntegrityError unless its bytes matched
    (``checked``).

    ``checked``: ``blocks`` end with IntegrityError unless they match ``digest`` (the
    store hashes what it read), so they are not hashed again here. A small file goes
    into ``cache`` from the bytes in hand, a bigger one from the written file.
    ``umask``: the process's, when known: a file in a fresh staging folder (nothing
    there is visible before the folder is renamed) is made with its final mode when
    the umask keeps that mode, saving a ``fchmod``. ``feed`` takes a small file's
    cache entry instead of ``cache`` (a :class:`_CacheFeeder`'s thread).
    """
    temp = target if in_place else Path(target).with_name(
        f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}-{Path(target).name}"[:255]
    )
    final_mode = mode & 0o777
    set_mode = not in_place or umask is None or bool(final_mode & umask)
    try:
        fd = os.open(temp, _CREATE, 0o600 if set_mode else final_mode)
    except FileExistsError:
        if not in_place:
            raise
        # not ours to remove: the file written under this name first
        raise IntegrityError(f"{path} collides with another path of the manifest: the "
                             "store is damaged; run 'artifactstore verify'") from None
    try:
        hasher = None if checked else Hasher()
        held: list[bytes] | None = (
            [] if cache is not None and digest is not None and fill is None else None)
        size = 0
        try:
            if fill is not None:
                fill(fd)
            for data in blocks:
                if hasher is not None:
                    hasher.update(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                size += len(data)
                if held is not None:
                    held.append(data)
                    if size > _CACHE_FROM_MEMORY:
                        held = None  # cached from the written file below
                if progress is not None:
                    progress(len(data))
            if set_mode:
                os.fchmod(fd, final_mode)
        finally:
            os.close(fd)
        if hasher is not None and digest is not None and hasher.digest() != digest:
            raise IntegrityError(
                f"{path} does not match its digest {digest.hex}: the store is "
                "damaged; run 'artifactstore verify'"
            )
        if cache is not None and digest is not None:
            # Verified bytes: those in hand, or the temp file, which the user cannot
            # change before it is renamed.
            if held is not None:
                data = held[0] if len(held) == 1 else b"".join(held)
                if feed is not None:
                    feed(data, digest)
                else:
                    cache.insert_bytes(data, digest)
            else:
                cache.insert(Path(temp), digest)
        if in_place:
            return
        if os.path.isdir(target) and not os.path.islink(target):
            raise IntegrityError(f"cannot write {target}: a folder is in the way")
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read_file(objects: ObjectStore, entry: FileEntry,
              cache: FileCache | None) -> tuple[bytes, bool]:
    """The bytes of one stored file, checked against its digest: from ``cache`` when it
    holds them, else read through the store (that file's chunks only, each verified as
    it arrives) and put in ``cache`` for the next reader. A damaged cache entry is a
    miss, never bad bytes. Returns the bytes and whether the cache took them now."""
    if cache is not None:
        found = cache.lookup(entry.digest, entry.size)
        if found is not None:
            with contextlib.suppress(OSError):
                data = found.read_bytes()
                if hash_bytes(data) == entry.digest:
                    return data, False
    data = b"".join(objects.iter_file(entry.file_ref()))
    if hash_bytes(data) != entry.digest:
        raise IntegrityError(f"{entry.path}: the stored bytes do not match its digest")
    kept = cache is not None and cache.insert_bytes(data, entry.digest) is not None
    return data, kept
