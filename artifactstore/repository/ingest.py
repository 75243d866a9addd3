"""The write path: staged files become a version (design §7 and §15).

Logging reads each staged file (or, when the stat cache knows it unchanged, reuses
what it stored before), writes its chunks into packs, builds the tree and the
manifest root, flushes packs and then their index, and only then creates the version
record: the commit point (design §4). A crash before it leaves garbage, never a
partial version. The caller says which run the version is an output of (``run_id``);
recording that edge is the run's business (:mod:`artifactstore.runs.run`).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.model.contentid import ContentHasher, content_digest
from artifactstore.model.manifest import Manifest
from artifactstore.model.paths import validate_path
from artifactstore.model.tree import (
    Entry,
    FileEntry,
    TreeSummary,
    TreeWriter,
    build_tree,
    iter_entries,
)
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.envelope import Kind
from artifactstore.objects.store import Progress
from artifactstore.records.refs import NewVersion, VersionRecord
from artifactstore.repository._folders import Folders
from artifactstore.repository.artifact import Artifact, Staged, StagedFolder, StagedReference
from artifactstore.repository.previous import PreviousVersion
from artifactstore.repository.project import Project
from artifactstore.repository.references import describe_reference
from artifactstore.repository.version import ArtifactVersion

__all__ = ["as_artifact", "commit_entries", "extend_version", "log_version"]

#: files up to this size are read with one call and chunked in memory
_SMALL_FILE = 1 << 20
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
#: reads of a file that keeps changing before logging refuses it
_READ_TRIES = 3
#: a streamed log flushes its packs and their index after this many new blobs, so the
#: store's per-blob bookkeeping of unflushed packs stays bounded (~50 MB)
_FLUSH_BLOBS = 200_000
#: the previous file of a path, for delta chunks (repository/previous.py)
Previous = Callable[[], FileRef | None] | None


def as_artifact(
    value: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    description: str | None = None,
    *,
    follow_outside_links: bool = False,
    skip_unreadable: bool = False,
    project: Project | None = None,
) -> Artifact:
    """``value`` staged: an :class:`Artifact` as given (``metadata`` and ``description``
    added), or a file or folder walked under the link policy of :meth:`Artifact.add_dir`
    (checked with ``project``'s stat cache's folder signatures, when given)."""
    if isinstance(value, Artifact):
        if metadata:
            value.metadata.update(metadata)
        if description is not None:
            value.description = description
        return value
    path = Path(value)
    artifact = Artifact(name or path.name, type or "unspecified", description, metadata)
    if path.is_dir():  # checked now, stored as a stream when logged
        artifact.stream_dir(path, follow_outside_links=follow_outside_links,
                            skip_unreadable=skip_unreadable,
                            known=None if project is None else project.stat_cache.folder_signature)
    elif path.is_file():
        artifact.add_file(path)
    else:
        raise NotFoundError(f"cannot log {path}: no such file or folder (check the path)")
    return artifact


def log_version(
    project: Project,
    artifact: Artifact,
    *,
    aliases: Sequence[str] = (),
    run_id: str | None = None,
    progress: Progress | None = None,
) -> ArtifactVersion:
    """Store ``artifact`` as a new version of ``project``; identical content to the latest
    version makes none (the latest is returned, ``created`` False). ``aliases`` (already
    validated) are set either way."""
    encoding.pack(artifact.metadata)  # unencodable metadata is refused before any upload
    project.ensure_writable()
    stat_cache = project.stat_cache
    if artifact.streamed is not None:
        return _log_streamed(project, artifact, artifact.streamed, aliases=aliases,
                             run_id=run_id, progress=progress)
    staged = artifact.entries  # sorted anew on every call: once
    _preload_stat_cache(project, staged)
    try:
        known = _cached_refs(project, staged)
        project.objects.begin_session(refresh=known is None)
        try:
            record, created = _write_version(project, artifact, staged, run_id, progress, known,
                                             PreviousVersion(project, artifact.name))
        finally:
            project.objects.end_session()
    except BaseException:
        stat_cache.discard()  # nothing committed: nothing to remember
        project.objects.abort()  # nor to upload: a refused log leaves the store as it was
        raise
    return _logged(project, artifact, record, created, aliases)


def _logged(project: Project, artifact: Artifact, record: VersionRecord, created: bool,
            aliases: Sequence[str]) -> ArtifactVersion:
    """After a log's commit: the stat cache's rows saved, the aliases set."""
    project.stat_cache.save()
    project.catalog.invalidate()
    for alias in aliases:
        project.refs.set_alias(record.artifact, alias, record.number)
    artifact.cleanup()
    return ArtifactVersion(project, record, created=created)


def _log_streamed(
    project: Project, artifact: Artifact, folder: StagedFolder, *, aliases: Sequence[str],
    run_id: str | None, progress: Progress | None,
) -> ArtifactVersion:
    """:func:`log_version` of a folder staged whole: its files are stored as the walk
    meets them, in byte order of their paths, and each folder's tree node is written
    when the walk leaves it; the content digest is hashed on the way. Memory holds the
    open folders' rows, not one object per file. A folder of files whose every stat is
    as the stat cache's folder row says is taken whole (``_folders``)."""
    objects, stat_cache = project.objects, project.stat_cache
    stat_cache.preload(Path(os.path.abspath(folder.root)), ordered=True)
    try:
        # Lazy: when every file is known from the stat cache nothing is written and the
        # index is not listed; the first write (or a reused chunk the local index does
        # not know) looks at the store, and the commit guard always does.
        objects.begin_session(refresh=False)
        try:
            folders = Folders(project, folder.signatures, progress)
            tree = TreeWriter(objects.put_blob, on_close=folders.closed)
            content = ContentHasher()
            previous = PreviousVersion(project, artifact.name)
            flushed = objects.stats.blobs_new
            for run in folder.runs():
                if run.whole and folders.reuse(run, tree, content):
                    continue
                files = run.listed()
                note = folders.note(run, files)
                for rel, source in files:
                    path = validate_path(rel)
                    entry, st = _store_one(project, path, source, progress, previous.file(path))
                    tree.add(entry)
                    line = content.add(entry)
                    if note is not None:
                        note.add(entry, st, line)
                if objects.stats.blobs_new - flushed >= _FLUSH_BLOBS:
                    objects.flush()  # garbage until the commit point, like any pack
                    flushed = objects.stats.blobs_new
            record, created = _commit_tree(
                project, artifact.name, artifact.type, tree.finish(), content.digest(),
                description=artifact.description, metadata=artifact.metadata,
                run_id=run_id)
        finally:
            objects.end_session()
    except BaseException:
        stat_cache.discard()
        objects.abort()
        raise
    return _logged(project, artifact, record, created, aliases)


def extend_version(
    project: Project, name: str, type: str, base: VersionRecord | None,
    files: Sequence[tuple[str, Path]], *, description: str | None = None,
    run_id: str | None = None,
) -> ArtifactVersion:
    """A new version of ``name``: every file of ``base`` (the version it extends, None
    for a first one) and ``files`` (``(path, source)``, replacing any of the same path).

    The files of ``base`` are not read again: their chunks are named in the new tree,
    and the commit guard checks them like any other blob. A base written under an
    older key epoch is copied into the current one (its bytes read and stored again).
    """
    project.ensure_writable()
    objects = project.objects
    objects.begin_session()
    try:
        new_paths = {path for path, _ in files}
        kept: list[Entry] = []
        if base is not None:
            old = project.objects_for(base)
            for entry in iter_entries(base.digest, old.read_blob):
                if entry.path in new_paths:
                    continue
                if old is not objects and isinstance(entry, FileEntry):
                    data = old.read_file(entry.file_ref())
                    entry = FileEntry.from_ref(entry.path, objects.write_bytes(data),
                                               mode=entry.mode, media_type=entry.media_type)
                kept.append(entry)
        objects.note_session_blobs(c.id.raw for e in kept if isinstance(e, FileEntry)
                                   for c in e.chunks)
        for path, source in files:
            ref, st, _ = _read_file(project, source, None)  # staged by us: nobody writes it
            kept.append(FileEntry.from_ref(path, ref, mode=st.st_mode & 0o777))
        record, created = commit_entries(project, name, type, kept, description=description,
                                         run_id=run_id)
    except BaseException:
        objects.end_session()
        objects.abort()
        raise
    objects.end_session()
    project.catalog.invalidate()
    return ArtifactVersion(project, record, created=created)


def commit_entries(
    project: Project, name: str, type: str, entries: Iterable[Entry], *,
    description: str | None = None, metadata: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> tuple[VersionRecord, bool]:
    """Store the tree of ``entries`` (whose files are stored) and commit the record.

    Call inside a commit session (``objects.begin_session``): the guard checks, right
    before the commit point, that gc has not condemned or removed any blob the version
    names (only when there is a commit to make).
    """
    entries = list(entries)
    summary = build_tree(entries, project.objects.put_blob)
    return _commit_tree(project, name, type, summary, content_digest(entries),
                        description=description, metadata=metadata, run_id=run_id)


def _commit_tree(
    project: Project, name: str, type: str, summary: TreeSummary, content: Digest, *,
    description: str | None, metadata: Mapping[str, Any] | None, run_id: str | None,
) -> tuple[VersionRecord, bool]:
    """Store the manifest root of the stored tree ``summary`` and commit the record."""
    objects = project.objects
    root = Manifest(tree=summary.id, size=summary.size, files=summary.files)
    manifest = objects.put_blob(Kind.MANIFEST, root.encode())
    objects.flush()  # packs and index land before the version record names them
    new = NewVersion(name, type=type, manifest=manifest, digest=summary.id,
                     size=summary.size, files=summary.files, description=description,
                     metadata=metadata, run=run_id, content=content)
    return project.refs.commit_version(new, guard=objects.commit_guard)


def _write_version(project: Project, artifact: Artifact, files: Sequence[Staged],
                   run_id: str | None,
                   progress: Progress | None, known: list[tuple[FileRef, int]] | None,
                   previous: PreviousVersion) -> tuple[VersionRecord, bool]:
    entries: list[Entry] = []
    if known is not None:  # every file as the stat cache knows it: nothing to read
        reuse = project.objects.reuse
        for staged, (ref, mode) in zip(files, known, strict=True):
            if reuse(ref, progress):
                entries.append(FileEntry.from_ref(staged.path, ref, mode=mode))
            else:  # a chunk went away (gc): read the file
                assert not isinstance(staged, StagedReference)
                entries.append(_store_file(project, staged.path, staged.source, progress,
                                           previous.file(staged.path)))
        return commit_entries(project, artifact.name, artifact.type, entries,
                              description=artifact.description, metadata=artifact.metadata,
                              run_id=run_id)
    for staged in files:
        if isinstance(staged, StagedReference):
            entries.append(describe_reference(staged.path, staged.uri,
                                              checksum=staged.checksum,
                                              options=project.backend_options))
        else:
            entries.append(_store_file(project, staged.path, staged.source, progress,
                                       previous.file(staged.path)))
    return commit_entries(project, artifact.name, artifact.type, entries,
                          description=artifact.description, metadata=artifact.metadata,
                          run_id=run_id)


def _preload_stat_cache(project: Project, files: Sequence[Staged]) -> None:
    """One stat-cache query for the folder holding the staged files (a folder's)."""
    low = high = None
    count = 0
    for staged in files:  # no list of every path: a million of them are ~100 MB
        if not isinstance(staged, StagedReference):
            source = os.path.abspath(staged.source)
            count += 1
            if low is None or source < low:
                low = source
            if high is None or source > high:
                high = source
    if count > 1 and low is not None and high is not None:
        # the common folder of the first and last paths in str order is everyone's
        # (os.path.commonpath of all of them splits every path: seconds for a million)
        project.stat_cache.preload(Path(os.path.commonpath([low, high])))


def _cached_refs(project: Project, files: Sequence[Staged]) -> list[tuple[FileRef, int]] | None:
    """What the stat cache knows of every staged file as it is now (its stored form and
    permission bits), or None from the first file it does not know."""
    lookup = project.stat_cache.lookup
    known = []
    for staged in files:
        if isinstance(staged, StagedReference):
            return None
        try:
            st = os.stat(staged.source)
        except OSError:
            return None
        ref = lookup(os.path.abspath(staged.source), st)
        if ref is None:
            return None
        known.append((ref, st.st_mode & 0o777))
    return known


def _store_file(project: Project, path: str, source: str | Path, progress: Progress | None,
                previous: Previous = None) -> FileEntry:
    return _store_one(project, path, source, progress, previous)[0]


def _store_one(project: Project, path: str, source: str | Path, progress: Progress | None,
               previous: Previous = None) -> tuple[FileEntry, os.stat_result]:
    """The entry of ``source`` stored (or known to the stat cache), and the stat it is of;
    ``previous``: the same path's file in the version logged on top of (deltas)."""
    where = os.path.abspath(source)
    stat_cache = project.stat_cache
    try:
        st = os.stat(source)
        cached = stat_cache.lookup(where, st)
        if cached is not None and project.objects.reuse(cached, progress):
            return FileEntry.from_ref(path, cached, mode=st.st_mode & 0o777), st
        for _ in range(_READ_TRIES):
            ref, st, steady = _read_file(project, source, progress, previous)
            if steady:
                break
        else:
            raise InvalidInputError(
                f"file {source} changed while it was read ({_READ_TRIES} tries); stop "
                "what writes it or retry"
            )
        mode = st.st_mode & 0o777
        stat_cache.remember(where, st, ref)
    except PermissionError:
        raise InvalidInputError(
            f"cannot read {source}: permission denied (check its permissions)"
        ) from None
    except FileNotFoundError:
        raise NotFoundError(f"{source} disappeared while logging; log again") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{source} is a folder, not a file") from None
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {source}: {exc.strerror or exc}; nothing was logged"
        ) from None
    return FileEntry.from_ref(path, ref, mode=mode), st


def _read_file(project: Project, source: str | Path, progress: Progress | None,
               previous: Previous = None) -> tuple[FileRef, os.stat_result, bool]:
    """Store the bytes of ``source``; also its ``stat`` and whether it held still.

    Why the second look: a file rewritten while it is read would be stored as a mix of
    old and new bytes that never existed on disk. Size, mtime, ctime and inode (of the
    open file and of the name, which a rename-over moves) must be the same after the
    read as before it.
    """
    fd = os.open(source, _READ_FLAGS)
    try:
        st = os.fstat(fd)
        if st.st_size <= _SMALL_FILE:
            # One read, chunked in memory: no file object, no reader pipeline.
            ref = project.objects.write_bytes(_read_whole(fd, st.st_size), progress,
                                              previous)
        else:
            with builtins.open(fd, "rb", closefd=False) as f:
                ref = project.objects.write_file(f, progress, size_hint=st.st_size,
                                                 previous=previous)
        steady = _still(st, os.fstat(fd)) and _still(st, os.stat(source))
    finally:
        os.close(fd)
    return ref, st, steady


def _still(before: os.stat_result, after: os.stat_result) -> bool:
    return ((before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns,
             before.st_ctime_ns) == (after.st_dev, after.st_ino, after.st_size,
                                     after.st_mtime_ns, after.st_ctime_ns))


def _read_whole(fd: int, size: int) -> bytes:
    """The file's bytes: ``size`` of them as ``fstat`` said, more if it grew since."""
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data
    parts = [data]  # it grew, or a short read (some network file systems): read on
    while block := os.read(fd, 1 << 20):
        parts.append(block)
    return b"".join(parts)
