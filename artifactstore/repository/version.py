"""``ArtifactVersion``: one logged version, read back by name, number or alias.

Everything here reads; nothing changes the store. File bytes are verified
against their ids and digests before a caller sees them.
"""

from __future__ import annotations

import bisect
import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifactstore.backends import local_folder
from artifactstore.core.digest import Digest, Hasher
from artifactstore.core.errors import IntegrityError, InvalidInputError
from artifactstore.model.contentid import content_digest
from artifactstore.model.entries import GetBlob
from artifactstore.model.names import parse_ref
from artifactstore.model.paths import validate_path
from artifactstore.model.tree import (
    Change,
    Entry,
    FileEntry,
    Folder,
    Listed,
    ReferenceEntry,
    diff_trees,
    iter_entries,
    iter_listed,
    list_dir,
    list_dir_listed,
    lookup,
    prefetching_reader,
)
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.store import ObjectStore, Progress
from artifactstore.records.lifecycle import LifecycleState
from artifactstore.records.refs import VersionRecord
from artifactstore.repository.cachedfiles import forget_purged
from artifactstore.repository.download import file_matches, materialize, read_file
from artifactstore.repository.project import Project
from artifactstore.repository.references import fetch_reference

__all__ = ["ArtifactVersion", "find_version", "versions_of"]

#: file digests a download notes in the file cache at once (design §16, step 5)
_NOTE_BATCH = 4096


class ArtifactVersion:
    """A read view of ``name:vN`` in one store."""

    def __init__(self, project: Project, record: VersionRecord, *, created: bool = False,
                 judged: LifecycleState | None = None) -> None:
        self._project = project
        self._record = record
        self._content: Digest | None = None
        #: the lifecycle state that found this version live when it was resolved: the
        #: first download meets the tombstones through it (one listing less), later
        #: ones list them afresh
        self._judged = judged
        self._met_purges = False
        #: True when this object came from a ``log_artifact`` that made a new version;
        #: False when the content equalled the latest version, which is returned instead.
        self.created = created

    def __repr__(self) -> str:
        return f"<ArtifactVersion {self.name}:{self.version} {self.type} {self.size} bytes>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactVersion) and self._record == other._record

    def __hash__(self) -> int:
        return hash((self._record.project, self.name, self._record.number))

    # -- facts -------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._record.artifact

    @property
    def version(self) -> str:
        return self._record.label

    @property
    def number(self) -> int:
        return self._record.number

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def digest(self) -> str:
        """The content digest (design §11.1): the same files give the same digest in any
        store, project or visibility. A record written before it carried none; then it
        is computed from the version's tree (once per object), which reads its nodes.
        """
        if self._content is None:
            self._content = self._record.content or content_digest(self.files())
        return self._content.hex

    @property
    def type(self) -> str:
        return self._record.type

    @property
    def size(self) -> int:
        return self._record.size

    @property
    def created_at(self) -> str:
        return self._record.created_at

    @property
    def created_by(self) -> str:
        return self._record.created_by

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._record.metadata

    @property
    def aliases(self) -> list[str]:
        """Aliases pointing at this version now (``latest`` included when it is the newest)."""
        return self._project.refs.aliases_of(self._record)

    @property
    def record(self) -> VersionRecord:
        return self._record

    # -- content -------------------------------------------------------------------

    @property
    def _objects(self) -> ObjectStore:
        return self._project.objects_for(self._record)

    def files(self) -> list[Entry]:
        """Every entry of the version, in path order."""
        return list(iter_entries(self._record.digest, self._tree_reader()))

    def listdir(self, folder: str = "") -> Iterator[Entry | Folder]:
        """The files and subfolders right inside ``folder`` ("" is the top), in name
        order, streamed: only that folder's tree nodes are read, however big the version."""
        return list_dir(self._record.digest, folder, self._objects.read_blob)

    def listing(self) -> Iterator[Listed]:
        """What ``show`` lists: every file and reference of the version, read from the
        tree's records alone (no chunk list of a huge file is read)."""
        return iter_listed(self._record.digest, self._tree_reader())

    def folder_listing(self, folder: str = "") -> Iterator[Listed | Folder]:
        """:meth:`listdir` as :class:`Listed` rows (records alone, as :meth:`listing`)."""
        return list_dir_listed(self._record.digest, folder, self._objects.read_blob)

    def _tree_reader(self) -> GetBlob:
        """Reads the version's tree nodes level by level (few requests for a big tree)."""
        objects = self._objects
        return prefetching_reader(self._record.digest, objects.read_many, objects.read_blob)

    def entry(self, path: str) -> Entry:
        return lookup(self._record.digest, validate_path(path), self._objects.read_blob)

    def download(self, root: str | os.PathLike[str] | None = None,
                 progress: Progress | None = None) -> Path:
        """Write every file under ``root`` (default ``./artifacts/<name>-<version>``).

        Only paths the manifest names are written; files already present with
        the right bytes are skipped, so an interrupted download resumes.
        """
        target = self._target(root)
        # the cache meets the tombstones before it is used
        forget_purged(self._project, self._take_judged())
        noted: list[Digest] = []
        noting = self._project.file_cache is not None

        def entries() -> Iterator[Entry]:
            for entry in iter_entries(self._record.digest, self._tree_reader()):
                if noting and isinstance(entry, FileEntry):
                    noted.append(entry.digest)
                    if len(noted) >= _NOTE_BATCH:  # appended as it goes: flat memory
                        self._note_cached(noted)
                        noted.clear()
                yield entry

        try:
            materialize(self._objects, entries(), target, progress, self._project.file_cache,
                        self._project.backend_options, whole_tree=True, size=self.size,
                        store_root=self._store_folder())
        finally:
            self._note_cached(noted)
        return target

    def get_entry(self, path: str) -> VersionFile:
        """W&B's ``artifact.get_entry(name)``: one file of this version, with its facts
        and a ``download()`` (NotFoundError if the version has no such path)."""
        entry = self.entry(path)
        digest = entry.digest.hex if isinstance(entry, FileEntry) else None
        return VersionFile(self, entry.path, entry.size, digest)

    def get_path(self, path: str, root: str | os.PathLike[str] | None = None) -> Path:
        """Download one file and return where it is."""
        entry = self.entry(path)
        target = self._target(root)
        forget_purged(self._project, self._take_judged())
        try:
            materialize(self._objects, [entry], target, cache=self._project.file_cache,
                        reference_options=self._project.backend_options, size=entry.size,
                        store_root=self._store_folder())
        finally:
            if isinstance(entry, FileEntry):
                self._note_cached([entry.digest])
        return target / entry.path

    def _take_judged(self) -> LifecycleState | None:
        judged, self._judged = self._judged, None
        return judged

    def _note_cached(self, digests: list[Digest]) -> None:
        """Tell the file cache which entries came from this version, so that a purge
        this machine meets later drops them (design §16, step 5)."""
        cache = self._project.file_cache
        if cache is not None:
            name = cache.version_name(self._project.objects.config.store_id,
                                      self._project.name, self._record.ref)
            cache.note_version(name, digests)

    def read_bytes(self, path: str | FileEntry) -> bytes:
        """The whole file ``path``, checked: from this machine's file cache when it holds
        it, else read through the store (only that file's chunks) and kept in the cache
        for the next read, so reading a few files never downloads the version. The first
        read of this object meets the project's purges, as a download does. A
        :class:`FileEntry` of this version from :meth:`files` saves looking the path up
        in the tree (one or more reads of its nodes)."""
        entry = path if isinstance(path, FileEntry) else self._file_entry(path)
        if not self._met_purges:
            forget_purged(self._project, self._take_judged())
            self._met_purges = True
        data, kept = read_file(self._objects, entry, self._project.file_cache)
        if kept:  # noted, so that a purge met later drops it (design §16)
            self._note_cached([entry.digest])
        return data

    def open(self, path: str) -> io.BufferedReader:
        """A streamed, seekable binary file: reads only the chunks it needs."""
        entry = self._file_entry(path)
        return io.BufferedReader(_ChunkReader(self._objects, entry.file_ref(), entry.path),
                                 buffer_size=1 << 20)

    def verify(self, root: str | os.PathLike[str] | None = None) -> int:
        """Check every file: in the store (``root`` None) or a downloaded copy.

        Returns the number of files checked; the first mismatch raises
        ``IntegrityError`` naming the file.
        """
        if root is not None and not Path(root).is_dir():
            raise InvalidInputError(f"{root} is not a folder: name the folder {self.ref} "
                                    "was downloaded to")
        count = 0
        for entry in iter_entries(self._record.digest, self._tree_reader()):
            if isinstance(entry, ReferenceEntry):
                if root is not None and not file_matches(Path(root) / entry.path, entry):
                    raise IntegrityError(
                        f"{Path(root) / entry.path} is missing or differs from "
                        f"{self.ref}:{entry.path}: download again"
                    )
                if root is None:  # fetches it: a changed source raises
                    for _ in fetch_reference(entry, dict(self._project.backend_options)):
                        pass
                count += 1
                continue
            if root is not None:
                if not file_matches(Path(root) / entry.path, entry):
                    raise IntegrityError(
                        f"{Path(root) / entry.path} is missing or differs from "
                        f"{self.ref}:{entry.path}: download again"
                    )
            else:
                hasher = Hasher()
                try:
                    for data in self._objects.iter_file(entry.file_ref()):
                        hasher.update(data)
                except IntegrityError as exc:
                    raise IntegrityError(f"{self.ref}:{entry.path}: {exc}") from None
                if hasher.digest() != entry.digest:
                    raise IntegrityError(f"{self.ref}:{entry.path} does not match its digest")
            count += 1
        return count

    def diff(self, other: ArtifactVersion, folder: str = "") -> list[Change]:
        """What changed from ``other`` to this version (identical subtrees skipped), only
        under ``folder`` when given."""
        return list(diff_trees(other._record.digest, self._record.digest,
                               self._objects.read_blob, folder))

    def _target(self, root: str | os.PathLike[str] | None) -> Path:
        if root is not None:
            return Path(root)
        return Path("artifacts") / f"{self.name}-{self.version}"

    def _store_folder(self) -> Path | None:
        """A local store's folder, which downloads must stay out of (None for others)."""
        folder = local_folder(self._project.objects.backend)
        return None if folder is None else Path(folder)

    def _file_entry(self, path: str) -> FileEntry:
        entry = self.entry(path)
        if not isinstance(entry, FileEntry):
            raise InvalidInputError(f"{self.ref}:{path} is a reference, not stored content")
        return entry


@dataclass(frozen=True, slots=True)
class VersionFile:
    """One file of a version (W&B's manifest entry): ``path``, ``size`` (None for a
    reference that recorded none), ``digest`` (BLAKE3 hex; None for a reference),
    ``ref`` (``name:vN``)."""

    version: ArtifactVersion
    path: str
    size: int | None
    digest: str | None

    @property
    def ref(self) -> str:
        return self.version.ref

    def download(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Write this file under ``root`` (default as ``version.download``); its path."""
        return self.version.get_path(self.path, root)


def find_version(project: Project, ref: str) -> ArtifactVersion:
    """``name``, ``name:vN``, ``name:alias`` or ``name:latest`` of ``project``."""
    name, selector = parse_ref(ref)
    record, judged = project.refs.resolve_judged(name, selector)
    return ArtifactVersion(project, record, judged=judged)


def versions_of(project: Project, name: str) -> list[ArtifactVersion]:
    """The live versions of ``name``, oldest first."""
    return [ArtifactVersion(project, r) for r in project.refs.versions(name)]


class _ChunkReader(io.RawIOBase):
    """Random access over a file's chunks, each fetched and verified on demand."""

    def __init__(self, objects: ObjectStore, ref: FileRef, path: str) -> None:
        self._objects = objects
        self._ref = ref
        self._path = path
        self._starts: list[int] = []
        offset = 0
        for chunk in ref.chunks:
            self._starts.append(offset)
            offset += chunk.length
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._ref.size}[whence]
        if base + offset < 0:
            raise InvalidInputError(f"negative seek position in {self._path}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._ref.size:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        if self._cached is None or self._cached[0] != index:
            self._cached = (index, self._objects.read_blob(self._ref.chunks[index].id))
        data = self._cached[1]
        start = self._pos - self._starts[index]
        n = min(len(buffer), len(data) - start)
        buffer[:n] = data[start : start + n]
        self._pos += n
        return n
