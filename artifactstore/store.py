"""``Store``: the entry point of the Python API.

Vocabulary: a store (one URL) holds projects; a ``Store`` object is one
project of it, opened with :func:`open`. Logging writes file content and tree
nodes, flushes them (packs, then index), and only then creates the version
record: the commit point (DESIGN.md §4). A crash before it leaves garbage,
never a partial version.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from artifactstore import encoding
from artifactstore.artifact import Artifact, StagedReference
from artifactstore.backends import open_backend
from artifactstore.backends.retry import RetryingBackend
from artifactstore.discovery import discover
from artifactstore.errors import InvalidInputError, NotFoundError
from artifactstore.filecache import FileCache
from artifactstore.model.names import parse_ref, validate_alias, validate_project_name
from artifactstore.model.refs import AliasEvent, Refs, VersionRecord
from artifactstore.model.tree import Entry, FileEntry, build_tree
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Kind
from artifactstore.objects.store import ObjectStore, Progress
from artifactstore.references import describe_reference
from artifactstore.version import ArtifactVersion

__all__ = ["Store", "open", "use"]

_LOCAL_SCHEMES = ("", "file", "memory")


class Store:
    """One project of a store: log artifacts, read versions, move aliases."""

    def __init__(self, objects: ObjectStore, refs: Refs, *, url: str, project: str,
                 file_cache: FileCache | None = None,
                 backend_options: dict[str, Any] | None = None) -> None:
        #: options the store was opened with; references to the same kind of
        #: location (s3://, gs://) use them too (endpoint, credentials)
        self.backend_options = dict(backend_options or {})
        self.objects = objects
        self.refs = refs
        self.url = url
        self.project = project
        #: downloaded files by content, shared by every store on this machine
        self.file_cache = file_cache

    def __repr__(self) -> str:
        return f"<Store {self.url} project={self.project}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.objects.close()

    # -- logging -------------------------------------------------------------------

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        progress: Progress | None = None,
    ) -> ArtifactVersion:
        """Store a new version; identical content to the latest version makes none.

        Returns the new version (``created`` True), or the latest one when the
        content is unchanged (``created`` False). Aliases are set either way.
        """
        artifact = self._as_artifact(artifact_or_path, name, type, metadata, description)
        wanted_aliases = [validate_alias(a) for a in aliases]
        encoding.pack(artifact.metadata)  # refuse unencodable metadata before any upload
        entries: list[Entry] = []
        for staged in artifact.entries:
            if isinstance(staged, StagedReference):
                entries.append(describe_reference(staged.path, staged.uri,
                                                  checksum=staged.checksum,
                                                  options=self.backend_options))
            else:
                entries.append(self._store_file(staged.path, staged.source, progress))
        summary = build_tree(entries, self.objects.put_blob)
        manifest = self.objects.put_blob(Kind.MANIFEST, encoding.pack({
            "version": 1, "tree": summary.id.raw, "size": summary.size, "files": summary.files,
        }))
        self.objects.flush()  # packs and index land before the version record names them
        record, created = self.refs.commit_version(
            artifact.name, type=artifact.type, manifest=manifest, digest=summary.id,
            size=summary.size, files=summary.files, description=artifact.description,
            metadata=artifact.metadata,
        )
        for alias in wanted_aliases:
            self.refs.set_alias(record.artifact, alias, record.number)
        artifact.cleanup()
        return ArtifactVersion(self, record, created=created)

    def _as_artifact(self, value: Artifact | str | os.PathLike[str], name: str | None,
                     type: str | None, metadata: Mapping[str, Any] | None,
                     description: str | None) -> Artifact:
        if isinstance(value, Artifact):
            if metadata:
                value.metadata.update(metadata)
            if description is not None:
                value.description = description
            return value
        path = Path(value)
        artifact = Artifact(name or path.name, type or "unspecified", description, metadata)
        if path.is_dir():
            artifact.add_dir(path)
        elif path.is_file():
            artifact.add_file(path)
        else:
            raise NotFoundError(f"cannot log {path}: no such file or folder (check the path)")
        return artifact

    def _store_file(self, path: str, source: Path, progress: Progress | None) -> FileEntry:
        try:
            # ``open`` in this module is artifactstore.open: use the builtin.
            with builtins.open(source, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode & 0o777
                ref = self.objects.write_file(f, progress)
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
        return FileEntry.from_ref(path, ref, mode=mode)

    # -- reading -------------------------------------------------------------------

    def artifact(self, ref: str) -> ArtifactVersion:
        """``name``, ``name:vN``, ``name:alias`` or ``name:latest``."""
        name, selector = parse_ref(ref)
        return ArtifactVersion(self, self.refs.resolve(name, selector))

    def artifacts(self) -> list[str]:
        return self.refs.artifacts()

    def versions(self, name: str) -> list[ArtifactVersion]:
        return [ArtifactVersion(self, r) for r in self.refs.versions(name)]

    # -- aliases -------------------------------------------------------------------

    def set_alias(self, ref: str, alias: str, force: bool = False,
                  protect: bool | None = None) -> AliasEvent:
        alias = validate_alias(alias)  # a bad alias is reported before any lookup
        version = self.artifact(ref)
        return self.refs.set_alias(version.name, alias, version.number,
                                   force=force, protect=protect)

    def remove_alias(self, name: str, alias: str, force: bool = False) -> AliasEvent:
        return self.refs.remove_alias(name, validate_alias(alias), force=force)

    def alias_history(self, name: str, alias: str) -> list[AliasEvent]:
        return self.refs.alias_history(name, validate_alias(alias))

    def _aliases_of(self, record: VersionRecord) -> list[str]:
        names = sorted(a for a, n in self.refs.aliases(record.artifact).items()
                       if n == record.number)
        if self.refs.latest(record.artifact).number == record.number:
            names.insert(0, "latest")
        return names


def open(url: str | None = None, project: str | None = None, *, create: bool | None = None,
         concurrency: int = 8, cache_dir: str | os.PathLike[str] | None = None,
         file_cache: bool = True, **backend_options: Any) -> Store:
    """Open a project of the store at ``url`` (discovered when None).

    Local and memory stores are created on first use unless ``create=False``;
    cloud stores need ``create=True`` (or ``artifactstore init``) so that a
    mistyped bucket prefix fails instead of starting an empty store.
    """
    location = discover(url)
    project_name = validate_project_name(project or location.project or "default")
    backend = RetryingBackend(open_backend(location.url, **backend_options))
    if create is None:
        scheme = location.url.split("://", 1)[0] if "://" in location.url else ""
        create = scheme in _LOCAL_SCHEMES
    objects = ObjectStore.open(backend, create=StoreConfig.new() if create else None,
                               concurrency=concurrency, cache_dir=cache_dir)
    files = None
    if file_cache:
        files = FileCache(Path(cache_dir) / "files" if cache_dir is not None else None)
    return Store(objects, Refs(backend, project_name), url=location.url, project=project_name,
                 file_cache=files, backend_options=backend_options)


_default_lock = threading.Lock()
_default_stores: dict[tuple[str | None, str | None, str], Store] = {}


def use(ref: str, *, url: str | None = None, project: str | None = None) -> ArtifactVersion:
    """The version ``ref`` from the discovered (or given) store, for scripts.

    The store is opened once per process and location.
    """
    key = (url, project, discover(url).url)
    with _default_lock:
        store = _default_stores.get(key)
        if store is None:
            store = _default_stores[key] = open(url, project)
    return store.artifact(ref)
