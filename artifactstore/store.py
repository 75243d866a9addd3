"""``Store``: the entry point of the Python API.

Vocabulary: a store (one URL) holds projects; a ``Store`` object is one
project of it, opened with :func:`open`. Logging writes file content and tree
nodes, flushes them (packs, then index), and only then creates the version
record: the commit point (DESIGN.md §4). A crash before it leaves garbage,
never a partial version.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import platform
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from artifactstore.backends import (
    AbsentBackend,
    Backend,
    ReadOnlyBackend,
    open_store_backend,
    redact_url,
)
from artifactstore.backends.immutable_cache import ImmutableCacheBackend
from artifactstore.backends.retry import RetryingBackend
from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.core.errors import (
    AccessDeniedError,
    InvalidInputError,
    NotFoundError,
    StoreNotFoundError,
)
from artifactstore.core.privatefiles import private_folder
from artifactstore.lineage.graph import FileUse, build_graph, neighbourhood, run_node, version_node
from artifactstore.local.catalog import Catalog, RunInfo
from artifactstore.local.clientstate import known_dir
from artifactstore.local.filecache import FileCache
from artifactstore.local.pins import PinBook
from artifactstore.local.statcache import StatCache
from artifactstore.local.watermarks import with_marks
from artifactstore.maintenance.gc import (
    DEFAULT_GRACE,
    DEFAULT_REPACK_THRESHOLD,
    GcReport,
    collect_garbage,
)
from artifactstore.maintenance.lifecycle import (
    PurgeReport,
    delete_all,
    delete_versions,
    drop_path,
    parse_duration,
    purge_version,
    restore_version,
)
from artifactstore.model.contentid import content_digest
from artifactstore.model.names import (
    parse_ref,
    parse_version_label,
    validate_alias,
    validate_project_name,
)
from artifactstore.model.tree import Entry, FileEntry, build_tree, iter_entries
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.config import StoreConfig, create_or_load
from artifactstore.objects.config import load as load_config
from artifactstore.objects.envelope import Kind
from artifactstore.objects.store import ObjectStore, Progress, default_cache_dir
from artifactstore.objects.window import WaitCallback
from artifactstore.records.codec import RecordCodec, sealed_as_current
from artifactstore.records.lifecycle import LifecycleEvent
from artifactstore.records.projects import Member, ProjectKeys, immutable_project_key
from artifactstore.records.refs import AliasEvent, NewVersion, Refs, VersionRecord
from artifactstore.records.runs import STATUSES, MetricsRow, RunLog, parse_time, validate_run_id
from artifactstore.records.versions import default_writer, is_version_key
from artifactstore.repository.access import PRIVATE_BY_DEFAULT, project_access
from artifactstore.repository.artifact import Artifact, StagedReference
from artifactstore.repository.discovery import DEFAULT_SOURCE, discover
from artifactstore.repository.references import describe_reference
from artifactstore.repository.version import ArtifactVersion

if TYPE_CHECKING:
    import networkx as nx

    from artifactstore.lineage.audit import AuditReport
    from artifactstore.runs.run import Run
    from artifactstore.transfer.publish import PublishReport

__all__ = ["Store", "init_run", "open", "use"]

_LOCAL_SCHEMES = ("", "file", "memory")


class Store:
    """One project of a store: log artifacts, read versions, move aliases."""

    def __init__(
        self,
        objects: ObjectStore,
        refs: Refs,
        *,
        url: str,
        project: str,
        file_cache: FileCache | None = None,
        backend_options: dict[str, Any] | None = None,
        catalog_path: Path | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        pending: _Opening | None = None,
        absent: bool = False,
    ) -> None:
        """Usually made by :func:`open`. ``pending``: the store (``absent``) or the
        project is not created yet; the first write creates it from these arguments."""
        #: options the store was opened with; references to the same kind of
        #: location (s3://, gs://) use them too (endpoint, credentials)
        self.backend_options = dict(backend_options or {})
        self.objects = objects
        self.refs = refs
        self.url = url
        self.project = project
        #: downloaded files by content, shared by every store on this machine
        self.file_cache = file_cache
        #: the local catalog of versions, aliases and runs that lineage queries read
        self.catalog = Catalog(objects.backend, project, catalog_path, codec=refs.codec)
        self._graph: tuple[int, nx.DiGraph] | None = None
        self._cache_dir = cache_dir
        self._epoch_objects: dict[bytes, ObjectStore] = {}
        self._epoch_lock = threading.Lock()
        self._deleted_runs_cache: tuple[int, frozenset[str]] | None = None
        #: unchanged local files are re-logged without reading them (statcache.py)
        self._stat_cache = StatCache(None if absent else _local_cache_path(
            objects, url, cache_dir, "stat", f"{objects.domain}.sqlite"))
        self._pending = pending
        self._pending_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Store {self.url} project={self.project}>"

    @property
    def exists(self) -> bool:
        """Whether the store exists: False for a pending store over a missing location
        until its first write creates it (``open`` with ``create=None``)."""
        return not isinstance(self.objects.backend, AbsentBackend)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stat_cache.close()
        self.objects.close()
        for objects in self._epoch_objects.values():
            objects.close()
        self.catalog.close()

    def _ensure_writable(self) -> None:
        """Make this project ready for a write, or raise why this process may not write.

        Every write entry point (log, alias, delete/restore, retention, gc, purge, runs,
        imports into it) calls it before it uploads or records anything. A pending store
        or project (``open`` created nothing) is created here, by opening it again with
        creation and taking over the new components (design §3, "Creating a store").
        """
        if self._pending is not None:
            with self._pending_lock:
                how = self._pending
                if how is not None:
                    self._create(how)
        self.refs.codec.check_writable()

    def _create(self, how: _Opening) -> None:
        if how.create is False and not any(
                True for _ in self.objects.backend.list(f"projects/{self.project}/")):
            raise NotFoundError(
                f"project {self.project!r} does not exist in {redact_url(self.url)}; create "
                f"it with 'artifactstore project create {self.project}' (or log into it)")
        opened, created = _open(how, create=True)
        old: list[ObjectStore | Catalog | StatCache] = [
            self.objects, self.catalog, self._stat_cache, *self._epoch_objects.values()]
        for name in ("objects", "refs", "catalog", "file_cache", "_stat_cache",
                     "_epoch_objects"):
            setattr(self, name, getattr(opened, name))
        self._graph = None
        self._deleted_runs_cache = None
        self._pending = None
        for component in old:
            component.close()
        if created and how.default_store:
            _announce_default_store(redact_url(how.url))

    def objects_for(self, record: VersionRecord) -> ObjectStore:
        """The object store holding ``record``'s blobs: that of the key epoch it was
        written under (the current one for new data, an older one after rotation)."""
        key_id = record.signature.key_id
        current = self.objects.keys
        if key_id is None or current is None or key_id == current.key_id:
            return self.objects
        try:
            return self.domain_objects(key_id)
        except AccessDeniedError:
            raise AccessDeniedError(
                f"version {record.ref} is encrypted under a key epoch this identity "
                "does not hold; ask a project member to add you"
            ) from None

    def domain_objects(self, key_id: bytes) -> ObjectStore:
        """The object store of this project's key epoch ``key_id`` (opened once)."""
        current = self.objects.keys
        if current is not None and key_id == current.key_id:
            return self.objects
        with self._epoch_lock:
            found = self._epoch_objects.get(key_id)
            if found is None:
                ring = self.refs.codec.ring
                keys = None if ring is None else ring.for_key_id(key_id)
                if keys is None:
                    raise AccessDeniedError(
                        f"key epoch {key_id.hex()} of project {self.project!r} is not held "
                        "by this identity; ask a project member to add you"
                    )
                found = self._epoch_objects[key_id] = ObjectStore(
                    self.objects.backend, self.objects.config, keys=keys,
                    cache_dir=self._cache_dir)
            return found

    def signers(self) -> dict[bytes, str]:
        """Ed25519 key -> member fingerprint of everyone who may have signed this
        project's records (empty for a project without a record)."""
        return self.membership()[0]

    def members(self) -> list[Member]:
        """The project's current members (empty for a project without a record)."""
        return self.membership()[1]

    def membership(self) -> tuple[dict[bytes, str], list[Member]]:
        """``(signers, current members)`` from one read of the member events."""
        keys = ProjectKeys(self.objects.backend, self.project, None)
        return keys.signers(), keys.members()

    def same_location(self, other: Store) -> bool:
        """Both objects are the same project of the same store."""
        return (self.url, self.project) == (other.url, other.project)

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
        *,
        run: Run | None = None,
        role: str | None = None,
        follow_outside_links: bool = False,
        skip_unreadable: bool = False,
    ) -> ArtifactVersion:
        """Store a new version; identical content to the latest version makes none.

        Returns the new version (``created`` True), or the latest one when the
        content is unchanged (``created`` False). Aliases are set either way.
        The version is recorded as an output of ``run``, by default of this
        store's active run (see :func:`artifactstore.runs.run.active_run`).
        A folder is walked under the link policy of :meth:`Artifact.add_dir`
        (``follow_outside_links``, ``skip_unreadable``).
        """
        from artifactstore.runs.run import active_run  # run imports this module

        # Every input is checked first: a refused one leaves the store (or the store
        # that a first write would create) unchanged; the link policy is staging's.
        wanted_aliases = [validate_alias(a) for a in aliases]
        artifact = self._as_artifact(artifact_or_path, name, type, metadata, description,
                                     follow_outside_links=follow_outside_links,
                                     skip_unreadable=skip_unreadable)
        encoding.pack(artifact.metadata)  # unencodable metadata
        self._ensure_writable()  # refuse before uploading anything
        run = run if run is not None else active_run(self)
        self._preload_stat_cache(artifact)
        try:
            self.objects.begin_session(refresh=not self._all_cached(artifact))
            try:
                record, created = self._write_version(artifact, run, progress)
            finally:
                self.objects.end_session()
        except BaseException:
            self._stat_cache.discard()  # nothing committed: nothing to remember
            self.objects.abort()  # nor to upload: a refused log leaves the store as it was
            raise
        self._stat_cache.save()
        self.catalog.invalidate()
        version = ArtifactVersion(self, record, created=created)
        if run is not None:
            run.record_output(version, role)
        for alias in wanted_aliases:
            self.refs.set_alias(record.artifact, alias, record.number)
        artifact.cleanup()
        return version

    def _write_version(
        self, artifact: Artifact, run: Run | None, progress: Progress | None
    ) -> tuple[VersionRecord, bool]:
        """Store the files and trees, then commit the record (design §7 and §15)."""
        entries: list[Entry] = []
        for staged in artifact.entries:
            if isinstance(staged, StagedReference):
                entries.append(
                    describe_reference(
                        staged.path,
                        staged.uri,
                        checksum=staged.checksum,
                        options=self.backend_options,
                    )
                )
            else:
                entries.append(self._store_file(staged.path, staged.source, progress))
        return self.commit_entries(
            artifact.name, artifact.type, entries, description=artifact.description,
            metadata=artifact.metadata, run_id=None if run is None else run.id,
        )

    def commit_entries(
        self, name: str, type: str, entries: Iterable[Entry], *,
        description: str | None = None, metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> tuple[VersionRecord, bool]:
        """Store the tree of ``entries`` (whose files are stored) and commit the record.

        Call inside a commit session (``objects.begin_session``): the guard checks,
        right before the commit point, that gc has not condemned or removed any blob
        the version names (only when there is a commit to make).
        """
        entries = list(entries)
        summary = build_tree(entries, self.objects.put_blob)
        manifest = self.objects.put_blob(
            Kind.MANIFEST,
            encoding.pack(
                {
                    "version": 1,
                    "tree": summary.id.raw,
                    "size": summary.size,
                    "files": summary.files,
                }
            ),
        )
        self.objects.flush()  # packs and index land before the version record names them
        new = NewVersion(name, type=type, manifest=manifest, digest=summary.id,
                         size=summary.size, files=summary.files, description=description,
                         metadata=metadata, run=run_id, content=content_digest(entries))
        return self.refs.commit_version(new, guard=self.objects.commit_guard)

    def _as_artifact(
        self,
        value: Artifact | str | os.PathLike[str],
        name: str | None,
        type: str | None,
        metadata: Mapping[str, Any] | None,
        description: str | None,
        *,
        follow_outside_links: bool = False,
        skip_unreadable: bool = False,
    ) -> Artifact:
        if isinstance(value, Artifact):
            if metadata:
                value.metadata.update(metadata)
            if description is not None:
                value.description = description
            return value
        path = Path(value)
        artifact = Artifact(name or path.name, type or "unspecified", description, metadata)
        if path.is_dir():
            artifact.add_dir(path, follow_outside_links=follow_outside_links,
                             skip_unreadable=skip_unreadable)
        elif path.is_file():
            artifact.add_file(path)
        else:
            raise NotFoundError(f"cannot log {path}: no such file or folder (check the path)")
        return artifact

    def _preload_stat_cache(self, artifact: Artifact) -> None:
        """One stat-cache query for the folder holding the staged files (a folder's)."""
        sources = [os.path.abspath(s.source) for s in artifact.entries
                   if not isinstance(s, StagedReference)]
        if len(sources) > 1:
            self._stat_cache.preload(Path(os.path.commonpath(sources)))

    def _all_cached(self, artifact: Artifact) -> bool:
        """Whether the stat cache knows every staged file as it is now."""
        for staged in artifact.entries:
            if isinstance(staged, StagedReference):
                return False
            try:
                st = os.stat(staged.source)
            except OSError:
                return False
            if self._stat_cache.lookup(os.path.abspath(staged.source), st) is None:
                return False
        return True

    def _store_file(self, path: str, source: Path, progress: Progress | None) -> FileEntry:
        where = os.path.abspath(source)
        try:
            # ``open`` in this module is artifactstore.open: use the builtin.
            st = os.stat(source)
            cached = self._stat_cache.lookup(where, st)
            if cached is not None and self.objects.reuse(cached, progress):
                return FileEntry.from_ref(path, cached, mode=st.st_mode & 0o777)
            for _ in range(_READ_TRIES):
                ref, st, steady = self._read_file(source, progress)
                if steady:
                    break
            else:
                raise InvalidInputError(
                    f"file {source} changed while it was read ({_READ_TRIES} tries); stop "
                    "what writes it or retry"
                )
            mode = st.st_mode & 0o777
            self._stat_cache.remember(where, st, ref)
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

    def _read_file(self, source: Path, progress: Progress | None
                   ) -> tuple[FileRef, os.stat_result, bool]:
        """Store the bytes of ``source``; also its ``stat`` and whether it held still.

        Why the second look: a file rewritten while it is read would be stored as a
        mix of old and new bytes that never existed on disk. Size, mtime, ctime and
        inode (of the open file and of the name, which a rename-over moves) must be
        the same after the read as before it.
        """
        fd = os.open(source, _READ_FLAGS)
        try:
            st = os.fstat(fd)
            if st.st_size <= _SMALL_FILE:
                # One read, chunked in memory: no file object, no reader pipeline.
                ref = self.objects.write_bytes(_read_whole(fd, st.st_size), progress)
            else:
                with builtins.open(fd, "rb", closefd=False) as f:
                    ref = self.objects.write_file(f, progress, size_hint=st.st_size)
            steady = _still(st, os.fstat(fd)) and _still(st, os.stat(source))
        finally:
            os.close(fd)
        return ref, st, steady

    def publish(self, ref: str, to: str | os.PathLike[str], project: str | None = None, *,
                with_lineage: bool = False, with_ancestors: bool = False,
                progress: Progress | None = None) -> PublishReport:
        """Copy version ``ref`` into public ``project`` (default: this project's name) of
        the existing store at ``to``, re-logged there in plaintext and signed by you;
        ``with_lineage`` also restores the run that made it (config, metrics, inputs);
        ``with_ancestors`` also publishes every version upstream of it, with its run.
        Nothing else of this project is written there (see :mod:`artifactstore.transfer.publish`)."""
        from artifactstore.transfer.publish import publish

        return publish(self, ref, to, project, with_lineage=with_lineage,
                       with_ancestors=with_ancestors, progress=progress)

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

    def set_alias(
        self, ref: str, alias: str, force: bool = False, protect: bool | None = None
    ) -> AliasEvent:
        alias = validate_alias(alias)  # a bad alias is reported before any lookup
        version = self.artifact(ref)
        self._ensure_writable()
        self.catalog.invalidate()
        return self.refs.set_alias(
            version.name, alias, version.number, force=force, protect=protect
        )

    def remove_alias(self, name: str, alias: str, force: bool = False) -> AliasEvent:
        alias = validate_alias(alias)
        self._ensure_writable()
        self.catalog.invalidate()
        return self.refs.remove_alias(name, alias, force=force)

    def protect_alias(self, name: str, alias: str) -> AliasEvent:
        """Protect ``name:alias`` where it points now: moving or removing it then needs
        ``force``, and deleting the version it points at refuses even forced, until
        :meth:`unprotect_alias`."""
        return self._set_protection(name, alias, True)

    def unprotect_alias(self, name: str, alias: str) -> AliasEvent:
        """Lift the protection of ``name:alias`` (recorded as a forced event)."""
        return self._set_protection(name, alias, False)

    def _set_protection(self, name: str, alias: str, protect: bool) -> AliasEvent:
        self.refs.alias_history(name, validate_alias(alias))  # a bad name creates nothing
        self._ensure_writable()
        self.catalog.invalidate()
        return self.refs.set_protection(name, alias, protect)

    def alias_history(self, name: str, alias: str) -> list[AliasEvent]:
        return self.refs.alias_history(name, validate_alias(alias))

    # -- lifecycle (lifecycle.py, gc.py) ------------------------------------------

    def delete(self, ref: str, *, force: bool = False, reason: str | None = None) -> LifecycleEvent:
        """Soft-delete one version (``name:vN`` or an alias); ``restore`` undoes it."""
        version = self.artifact(ref)
        self._ensure_writable()
        return delete_versions(self, version.name, [version.number], force=force,
                               reason=reason)

    def delete_artifact(self, name: str, *, force: bool = False,
                        reason: str | None = None) -> LifecycleEvent:
        """Soft-delete every live version of ``name``."""
        numbers = [r.number for r in self.refs.versions(name)]
        self._ensure_writable()
        return delete_versions(self, name, numbers, force=force, reason=reason)

    def delete_run(self, run_id: str, *, with_artifacts: bool = False, force: bool = False,
                   reason: str | None = None) -> list[LifecycleEvent]:
        """Soft-delete a run, and with ``with_artifacts`` the versions it produced.

        All or nothing: an alias in the way refuses before anything is deleted."""
        run = self.get_run(run_id, sync=True)
        self._ensure_writable()
        produced: dict[str, list[int]] = {}
        if with_artifacts:
            gone = self.refs.lifecycle_state()
            for output in run.outputs:
                artifact, _, label = output.rpartition(":v")
                if gone.tombstone(artifact, int(label)) is None:
                    produced.setdefault(artifact, []).append(int(label))
        return delete_all(self, produced, force=force, reason=reason, runs=[run.run_id])

    def delete_project(self, *, force: bool = False,
                       reason: str | None = None) -> list[LifecycleEvent]:
        """Soft-delete every version and run of the project.

        All or nothing: every alias in the way (protected, or any without ``force``)
        refuses before the first artifact is deleted."""
        self._ensure_writable()
        live = {name: [r.number for r in self.refs.versions(name)]
                for name in self.refs.artifacts()}
        return delete_all(self, live, force=force, reason=reason,
                          runs=[r.run_id for r in self.runs(sync=True)])

    def restore(self, ref: str) -> LifecycleEvent:
        """Undo the deletion of ``name:vN`` (before gc reclaimed it)."""
        self._ensure_writable()
        return restore_version(self, ref)

    def restore_artifact(self, name: str) -> list[LifecycleEvent]:
        """Undo the deletion of every deleted (not purged) version of ``name``."""
        self._ensure_writable()
        state = self.refs.lifecycle_state()
        numbers = sorted(n for n, e in state.deleted.get(name, {}).items()
                         if e.action != "purge")
        if not numbers:
            raise NotFoundError(f"artifact {name!r} has no deleted version to restore")
        return [restore_version(self, f"{name}:v{n}") for n in numbers]

    def restore_project(self) -> list[LifecycleEvent]:
        """Undo the deletion of every deleted (not purged) version and run."""
        self._ensure_writable()
        state = self.refs.lifecycle_state()
        events = [restore_version(self, f"{name}:v{n}")
                  for name, by in sorted(state.deleted.items())
                  for n, e in sorted(by.items()) if e.action != "purge"]
        if state.deleted_runs:
            events.append(self.refs.lifecycle.append(
                "restore", by=default_writer(), runs=sorted(state.deleted_runs)))
            self._deleted_runs_cache = None
        if not events:
            raise NotFoundError(f"project {self.project!r} has nothing deleted to restore")
        self.catalog.invalidate()
        return events

    def restore_run(self, run_id: str) -> LifecycleEvent:
        """Undo the deletion of a run (the versions it produced are restored separately)."""
        run = self.get_run(run_id, sync=True)
        if run.run_id not in self.refs.lifecycle_state().deleted_runs:
            raise InvalidInputError(f"run {run.run_id} is not deleted; nothing to restore")
        self._ensure_writable()
        event = self.refs.lifecycle.append("restore", by=default_writer(), runs=[run.run_id])
        self._deleted_runs_cache = None
        self.catalog.invalidate()
        return event

    def deleted_versions(self) -> list[tuple[str, int, LifecycleEvent]]:
        """``(artifact, number, tombstone)`` of every deleted version, by name and number."""
        state = self.refs.lifecycle_state()
        return sorted((a, n, e) for a, by in state.deleted.items() for n, e in by.items())

    def set_retention(self, ttl: str | float | None, artifact: str | None = None
                      ) -> LifecycleEvent:
        """Keep unaliased versions of ``artifact`` (default: of every artifact) for ``ttl``
        (``"30d"``, seconds; None removes it); gc deletes older ones."""
        seconds = None if ttl is None else parse_duration(ttl)
        self._ensure_writable()
        return self.refs.lifecycle.append("retention", by=default_writer(), artifact=artifact,
                                          ttl=seconds)

    def gc(self, grace: float | str = DEFAULT_GRACE, dry_run: bool = False, *,
           repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
           progress: Progress | None = None, domains: Iterable[str] | None = None,
           accept_missing_records: bool = False, wait: bool = True,
           on_wait: WaitCallback | None = None) -> GcReport:
        """Reclaim the space of deleted versions (two phases; see ``artifactstore.maintenance.gc``).

        Refused while records are missing (their data would be freed) unless
        ``accept_missing_records``. With ``grace=0`` the call waits out the store's
        commit window (default 120 s) and frees the space before it returns;
        ``on_wait(seconds_left)`` is called about once a second meanwhile.
        ``wait=False`` returns after condemning instead: nothing is freed until a gc
        runs once the commit window has passed."""
        if not dry_run:
            self._ensure_writable()
        report = collect_garbage(self, grace=parse_duration(grace), dry_run=dry_run,
                                 repack_threshold=repack_threshold, progress=progress,
                                 domains=domains, accept_missing_records=accept_missing_records,
                                 wait=wait, on_wait=on_wait)
        self.catalog.invalidate()
        return report

    def purge(self, ref: str, *, reason: str, path: str | None = None,
              wait: bool = True, on_wait: WaitCallback | None = None) -> PurgeReport:
        """Takedown: delete ``ref`` and wipe every blob no live version needs, provably.

        With ``path``, a new version without that file is logged first and the
        old version is purged.

        By default the purge waits out the store's commit window (default 120 s)
        between condemning the blobs and wiping them, so that a writer who found
        them present just before commits (or fails) first and no version is left
        naming wiped data; ``on_wait(seconds_left)`` is called about once a second
        meanwhile (e.g. to show a countdown). ``wait=False`` wipes at once: only
        safe when nobody else writes to the store during the purge.
        """
        self._ensure_writable()
        if path is not None:
            drop_path(self, ref, path)
        return purge_version(self, ref, reason=reason, wait=wait, on_wait=on_wait)

    # -- runs ----------------------------------------------------------------------

    def run(
        self,
        name: str | None = None,
        job_type: str | None = None,
        config: Mapping[str, Any] | None = None,
        save_code: bool = False,
        tags: Sequence[str] = (),
        *,
        capture_code: bool = True,
        packages: bool = False,
        heartbeat: float | None = None,
    ) -> Run:
        """Start a run: ``with store.run(job_type="train", config=cfg) as run:``.

        The run records its environment and git state now (``capture_code``),
        installed packages when ``packages`` is True, and with ``save_code``
        a ``code`` artifact holding the diff against HEAD and the entry script.
        """
        from artifactstore.runs.run import DEFAULT_HEARTBEAT, Run

        return Run(
            self,
            name=name,
            job_type=job_type,
            config=config,
            tags=tags,
            save_code=save_code,
            capture_code=capture_code,
            packages=packages,
            heartbeat=DEFAULT_HEARTBEAT if heartbeat is None else heartbeat,
        )

    def sync(self) -> None:
        """Bring the local catalog (and what is deleted) up to date with the store now."""
        self.catalog.sync()
        self._deleted_runs()

    def runs(
        self,
        *,
        job_type: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        sync: bool | None = None,
        include_deleted: bool = False,
    ) -> list[RunInfo]:
        """The project's runs, oldest first, filtered by job type, status, tag and start time.

        Deleted runs are left out unless ``include_deleted``.
        """
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
        low = _as_time("since", since)
        high = _as_time("until", until)
        self.catalog.ensure_fresh(sync)
        deleted = set() if include_deleted else self._deleted_runs()
        found = []
        for run in self.catalog.runs(host=_this_host()):
            if run.run_id in deleted:
                continue
            started = parse_time(run.started_at)
            if (
                (job_type is None or run.job_type == job_type)
                and (status is None or run.status == status)
                and (tag is None or tag in run.tags)
                and (low is None or started >= low)
                and (high is None or started < high)
            ):
                found.append(run)
        return found

    def _deleted_runs(self) -> frozenset[str]:
        """Deleted run ids, read again only when the catalog synced (same freshness)."""
        cached = self._deleted_runs_cache
        if cached is None or cached[0] != self.catalog.syncs:
            runs = frozenset(self.refs.lifecycle_state().deleted_runs)
            cached = self._deleted_runs_cache = (self.catalog.syncs, runs)
        return cached[1]

    def get_run(self, run_id: str, *, sync: bool | None = None) -> RunInfo:
        """One run by id (a unique prefix of the id is enough)."""
        if not isinstance(run_id, str):
            raise InvalidInputError(f"a run id is a str, got {type(run_id).__name__}")
        self.catalog.ensure_fresh(sync)
        matches = self.catalog.runs(host=_this_host(), prefix=run_id)
        exact = [r for r in matches if r.run_id == run_id]
        if exact or len(matches) == 1:
            return (exact or matches)[0]
        if not matches:
            if len(run_id) >= 31:  # a whole id: say so if it is malformed, not just absent
                validate_run_id(run_id)
            raise NotFoundError(
                f"run {run_id!r} not found in project {self.project!r}; "
                "run 'artifactstore runs ls' to see the runs"
            )
        raise InvalidInputError(
            f"run id prefix {run_id!r} matches {len(matches)} runs; give more characters"
        )

    def run_history(self, run_id: str, *, sync: bool | None = None) -> Iterator[MetricsRow]:
        """The metrics rows of a run in order, streamed segment by segment."""
        log = RunLog(self.objects.backend, self.project, self.refs.codec)
        run_id = self.get_run(run_id, sync=sync).run_id
        for seq in log.seqs(run_id, "metrics"):
            yield from log.read_metrics(run_id, seq)

    # -- lineage -------------------------------------------------------------------

    def lineage(self, *, sync: bool | None = None) -> nx.DiGraph:
        """The project's lineage graph (a copy; see :mod:`artifactstore.lineage.graph`)."""
        self.catalog.ensure_fresh(sync)
        graph = self._lineage_graph()
        copied: nx.DiGraph = graph.copy()
        return copied

    def _lineage_graph(self) -> nx.DiGraph:
        cached = self._graph
        if cached is None or cached[0] != self.catalog.generation:
            runs = self.catalog.runs(host=_this_host())
            cached = self._graph = (self.catalog.generation, build_graph(self.catalog, runs))
        return cached[1]

    def lineage_node(self, ref: str, *, sync: bool | None = None) -> str:
        """The graph id ``ref`` names (``name:vN`` or ``run:<id>``): deleted and purged
        versions and runs included, as lineage and audits must answer for them."""
        return self._node(ref, sync)[1]

    def _node(self, ref: str, sync: bool | None) -> tuple[nx.DiGraph, str]:
        self.catalog.ensure_fresh(sync)
        graph = self._lineage_graph()
        if ref.startswith("run:"):
            node = run_node(self.get_run(ref[4:], sync=False).run_id)
        else:
            node = self._resolve_in_graph(graph, ref) or self._resolve_in_store(ref)
        if node not in graph:  # committed after our last sync
            self.catalog.sync()
            graph = self._lineage_graph()
        return graph, node

    @staticmethod
    def _resolve_in_graph(graph: nx.DiGraph, ref: str) -> str | None:
        """The node ``ref`` names, from the catalog alone (no request to the store)."""
        name, selector = parse_ref(ref)
        number = parse_version_label(selector)
        if number is not None:
            node = version_node(name, number)
            return node if node in graph and not graph.nodes[node]["missing"] else None
        for node, data in graph.nodes(data=True):
            if (data["kind"] == "version" and data["artifact"] == name
                    and selector in data["aliases"]):
                return str(node)
        return None

    def _resolve_in_store(self, ref: str) -> str:
        version = self.artifact(ref)
        return version_node(version.name, version.number)

    def upstream(
        self, ref: str, depth: int | None = None, *, sync: bool | None = None
    ) -> nx.DiGraph:
        """``ref`` and everything it was made from: runs, their inputs, and so on."""
        graph, node = self._node(ref, sync)
        return neighbourhood(graph, node, upstream=True, depth=_depth(depth))

    def downstream(
        self, ref: str, depth: int | None = None, *, sync: bool | None = None
    ) -> nx.DiGraph:
        """``ref`` and everything made from it."""
        graph, node = self._node(ref, sync)
        return neighbourhood(graph, node, upstream=False, depth=_depth(depth))

    def impact(self, ref: str, *, sync: bool | None = None) -> list[str]:
        """Every version derived from ``ref``, transitively (what a takedown must consider)."""
        graph, node = self._node(ref, sync)
        sub = neighbourhood(graph, node, upstream=False)
        return sorted(
            (n for n, data in sub.nodes(data=True) if data["kind"] == "version" and n != node),
            key=_ref_order,
        )

    def where_used(self, file_digest: str | Digest, *, sync: bool | None = None) -> FileUse:
        """Versions that hold a file with this content (plain BLAKE3) and runs that used them."""
        digest = file_digest if isinstance(file_digest, Digest) else Digest.from_hex(file_digest)
        self.catalog.ensure_fresh(sync)
        self._index_files()
        holders = self.catalog.files_with(digest.raw)
        versions = tuple(
            sorted(
                ((version_node(a, n), p) for a, n, p in holders),
                key=lambda vp: (_ref_order(vp[0]), vp[1]),
            )
        )
        held = {(a, n) for a, n, _ in holders}
        runs = sorted(
            {
                run_id
                for run_id, direction, a, n, _, _ in self.catalog.edges()
                if direction == "use" and (a, n) in held
            }
        )
        gone = self.catalog.lifecycle_state()
        states = tuple(sorted(
            (version_node(a, n), "purged" if event.action == "purge" else "deleted")
            for a, n in held if (event := gone.tombstone(a, n)) is not None
        ))  # fmt: skip
        return FileUse(digest.hex, versions, tuple(runs), states)

    def _index_files(self) -> None:
        """Index the files of versions not indexed yet (a version with known content is copied)."""
        by_digest: dict[bytes, tuple[str, int]] = {}
        gone = self.catalog.lifecycle_state()
        for artifact, number, raw in self.catalog.unindexed():
            earlier = by_digest.get(raw)
            if earlier is None:
                found = self.catalog.query(
                    "SELECT v.artifact, v.number FROM versions v JOIN indexed i "
                    "ON v.artifact=i.artifact AND v.number=i.number WHERE v.digest=? LIMIT 1",
                    (raw,),
                )
                earlier = found[0] if found else None
            if earlier is not None and self.catalog.copy_index_from(artifact, number, earlier):
                continue
            tombstone = gone.tombstone(artifact, number)
            record = self.refs.version(artifact, number, include_deleted=True)
            try:
                files = [
                    (e.path, e.digest.raw)
                    for e in iter_entries(record.digest, self.objects_for(record).read_blob)
                    if isinstance(e, FileEntry)
                ]
            except NotFoundError:
                if tombstone is None:
                    raise  # a live version lost data: verify/repair's business, not ours
                files = []  # purged, or reclaimed by gc: no file of it is anywhere now
            self.catalog.index_files(artifact, number, iter(files))
            by_digest[raw] = (artifact, number)

    def catalog_record(self, artifact: str, number: int) -> VersionRecord:
        return self.refs.version(artifact, number)

    def audit(
        self, ref: str, *, sample: float | None = None, sync: bool | None = None
    ) -> AuditReport:
        """Provenance, alias history and integrity of a version (see ``artifactstore.lineage.audit``)."""
        from artifactstore.lineage.audit import audit

        return audit(self, ref, sample=sample, sync=sync)


#: files up to this size are read with one call and chunked in memory
_SMALL_FILE = 1 << 20
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


#: reads of a file that keeps changing before logging refuses it
_READ_TRIES = 3


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


def _this_host() -> str:
    return platform.node() or "localhost"


def _depth(depth: int | None) -> int | None:
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise InvalidInputError(f"depth must be an int >= 0 or None, got {depth!r:.40}")
    return depth


def _ref_order(ref: str) -> tuple[str, int]:
    name, _, label = ref.rpartition(":v")
    return name, int(label)


def _as_time(what: str, value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value) if isinstance(value, str) else parse_time(value.isoformat())
    except ValueError:
        raise InvalidInputError(
            f"{what} {value!r:.40} is not a time: use ISO-8601, e.g. 2026-11-26T12:00"
        ) from None


def _catalog_path(
    objects: ObjectStore, url: str, project: str, cache_dir: str | os.PathLike[str] | None
) -> Path | None:
    return _local_cache_path(objects, url, cache_dir, "catalog", f"{project}.sqlite")


def _local_cache_path(objects: ObjectStore, url: str, cache_dir: str | os.PathLike[str] | None,
                      kind: str, name: str) -> Path | None:
    """``<cache>/<kind>/<store id>-<location hash>/<name>``; None for a memory store."""
    if url.startswith("memory://"):
        return None  # the store lives in this process: so do its caches
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    where = hashlib.sha256(objects.backend.url.encode()).hexdigest()[:16]
    folder = root / kind / f"{objects.config.store_id}-{where}"
    with contextlib.suppress(OSError):  # an unusable cache is met (and reported) by its user
        private_folder(folder, root=root)
    return folder / name


@dataclass(frozen=True, slots=True)
class _Opening:
    """What :func:`open` was asked for: enough to open the project again, with creation,
    on its first write (design §3, "Creating a store")."""

    url: str
    project: str
    #: as given to ``open``: None creates on the first write, False never
    create: bool | None
    #: the per-user default store (discovery's last resort): created private
    default_store: bool
    concurrency: int
    cache_dir: str | os.PathLike[str] | None
    file_cache: bool | None
    passphrase: str | None
    backend_options: dict[str, Any]

    @property
    def lazy(self) -> bool:
        """Whether a missing store is created on the first write instead of refused."""
        return self.create is None and scheme_of(self.url) in _LOCAL_SCHEMES

    def new_config(self) -> StoreConfig:
        # The per-user default store holds what a user logs without choosing a store:
        # private like 'artifactstore init', so nothing leaves the machine in plaintext.
        return StoreConfig.new(optional_features=(PRIVATE_BY_DEFAULT,) if self.default_store
                               else ())


def _pins(url: str, project: str, objects: ObjectStore,
          cache_dir: str | os.PathLike[str] | None) -> PinBook | None:
    """This machine's pin of ``project`` (pins.py); None for a memory store."""
    known = known_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir(), url)
    return None if known is None else PinBook(known, project, objects.config.store_id)


def open(
    url: str | None = None,
    project: str | None = None,
    *,
    create: bool | None = None,
    concurrency: int = 8,
    cache_dir: str | os.PathLike[str] | None = None,
    file_cache: bool | None = None,
    passphrase: str | None = None,
    **backend_options: Any,
) -> Store:
    """Open a project of the store at ``url`` (discovered when None).

    Opening writes nothing to the store. ``create=True`` creates the store and the
    project now (any backend). With ``create=None`` (the default) a missing local or
    memory store, or a missing project, is created by the first write (log, alias,
    run, ...): until then reads raise ``StoreNotFoundError`` (a missing store) or
    find nothing (a missing project). ``create=False`` creates nothing: a missing
    store raises ``StoreNotFoundError`` here, a missing project refuses writes.
    Cloud stores are never created lazily (``create=True`` or ``artifactstore
    init``), so a mistyped bucket prefix fails. The per-user default store is
    created private. A private project opens with the user's identity, or with its
    ``passphrase`` slot (see :mod:`artifactstore.repository.access`). Downloads go through the
    per-user file cache for remote stores (``file_cache=None``); True or False forces it.
    """
    location = discover(None if url is None else os.fspath(url))
    opening = _Opening(
        url=location.url,
        project=validate_project_name(project or location.project or "default"),
        create=create, default_store=location.source == DEFAULT_SOURCE,
        concurrency=concurrency, cache_dir=cache_dir, file_cache=file_cache,
        passphrase=passphrase, backend_options=dict(backend_options),
    )
    return _open(opening, create=create is True)[0]


def _open(how: _Opening, *, create: bool) -> tuple[Store, bool]:
    """The opened project, and whether this call created the store's config."""
    try:
        backend: Backend = RetryingBackend(
            open_store_backend(how.url, create=create, **how.backend_options))
    except StoreNotFoundError:
        if not how.lazy:
            raise
        return _absent_store(how), False
    try:
        if create:
            config, created = create_or_load(backend, how.new_config())
        else:
            config, created = load_config(backend, redact_url(how.url)), False
    except StoreNotFoundError:
        backend.close()
        if not how.lazy:
            raise
        return _absent_store(how), False
    except BaseException:
        backend.close()
        raise
    objects = ObjectStore(backend, config, concurrency=how.concurrency, cache_dir=how.cache_dir)
    # Project records, member events, key epochs and slots are create-only: read once.
    refs_cache = _local_cache_path(objects, how.url, how.cache_dir, "refs", "")
    access = project_access(
        backend if refs_cache is None else ImmutableCacheBackend(
            backend, refs_cache, immutable_project_key), how.project,
        private_by_default=PRIVATE_BY_DEFAULT in config.optional_features,
        # Opening never creates a project (read-only media, read commands): the first
        # write opens again with creation (Store._ensure_writable).
        may_create=create and backend.supports_atomic_create, passphrase=how.passphrase,
        pins=_pins(backend.url, how.project, objects, how.cache_dir),
    )
    pending = None if create or access.info is not None else how
    if pending is not None:
        # Safety net: a write that skipped _ensure_writable must not land in a project
        # that is not created yet (it would be plaintext in a private-by-default store).
        backend = ReadOnlyBackend(backend, reason=(
            f"project {how.project!r} is not created yet; this write skipped the step "
            "that creates it (a bug: please report it)"))
    if access.ring is not None or pending is not None:
        objects.close()
        objects = ObjectStore(
            backend, config, keys=None if access.ring is None else access.ring.current,
            concurrency=how.concurrency, cache_dir=how.cache_dir)
    files = None
    file_cache = how.file_cache
    if file_cache is None:  # a local store is its own cache: copying twice only costs
        file_cache = scheme_of(how.url) not in _LOCAL_SCHEMES
    if file_cache:
        files = FileCache(Path(how.cache_dir) / "files" if how.cache_dir is not None else None)
    codec = access.codec
    # Version records too, while sealed as the project seals now (re-encryption
    # rewrites only those sealed under an older epoch): a re-log of unchanged
    # content then reads its head version from disk.
    refs_backend = backend if refs_cache is None else ImmutableCacheBackend(
        backend, refs_cache, is_version_key, lambda _, data: sealed_as_current(codec, data))
    # A store that shows less than this client saw is refused, not believed (watermarks.py).
    store = Store(
        objects,
        Refs(with_marks(refs_backend, how.project, how.cache_dir, codec), how.project, codec),
        url=how.url,
        project=how.project,
        file_cache=files,
        backend_options=how.backend_options,
        catalog_path=_catalog_path(objects, how.url, how.project, how.cache_dir),
        cache_dir=how.cache_dir,
        pending=pending,
    )
    return store, created


def _absent_store(how: _Opening) -> Store:
    """A pending store where none exists yet: reads raise ``StoreNotFoundError``; the
    first write creates it (nothing, not even a folder, is made before)."""
    backend = AbsentBackend(redact_url(how.url))
    return Store(
        ObjectStore(backend, StoreConfig.new(), concurrency=1, cache_dir=how.cache_dir),
        Refs(backend, how.project, RecordCodec()),
        url=how.url, project=how.project, backend_options=how.backend_options,
        catalog_path=None, cache_dir=how.cache_dir, pending=how, absent=True,
    )


def _announce_default_store(url: str) -> None:
    """Tell the user once, when the per-user default store is created, where it is and
    that its private projects open only with the identity (which to back up)."""
    from artifactstore.local.identity import identity_path

    print(
        f"artifactstore: created your default store at {url} (private: projects are "
        f"encrypted for your identity); copy your identity file {identity_path()} to a "
        "safe place, without it nothing in this store can be read "
        "('artifactstore identity show --json' names it)",
        file=sys.stderr,
    )


_default_lock = threading.Lock()
_default_stores: dict[tuple[str | None, str | None, str, bool | None], Store] = {}


def scheme_of(url: str) -> str:
    """``s3``, ``gs``, ``https``, … or ``""`` for a local path."""
    return url.split("://", 1)[0] if "://" in url else ""


def _default_store(url: str | None, project: str | None, *, create: bool | None) -> Store:
    """The store of ``url``/``project`` (discovered), opened once per process and mode."""
    key = (url, project, discover(url).url, create)
    with _default_lock:
        store = _default_stores.get(key)
        if store is None:
            store = _default_stores[key] = open(url, project, create=create)
    return store


def use(ref: str, *, url: str | None = None, project: str | None = None) -> ArtifactVersion:
    """The version ``ref`` from the discovered (or given) store, for scripts.

    Inside an active run of that store (``init_run`` or ``store.run``), the
    version is recorded as an input of the run.
    """
    from artifactstore.runs.run import active_run

    store = _default_store(url, project, create=False)  # reading creates nothing
    version = store.artifact(ref)
    run = active_run(store)
    if run is not None:
        run.record_use(version, ref)
    return version


def init_run(
    name: str | None = None,
    job_type: str | None = None,
    config: Mapping[str, Any] | None = None,
    save_code: bool = False,
    tags: Sequence[str] = (),
    *,
    url: str | None = None,
    project: str | None = None,
    **options: Any,
) -> Run:
    """Start a run in the discovered store, for scripts without a ``with`` block.

    Finish it with ``run.finish()``; a run still active at interpreter exit is
    finished then (``failed`` after an uncaught exception).
    """
    # A run writes: the store and project are created by its start record if missing.
    store = _default_store(url, project, create=None)
    return store.run(name, job_type, config, save_code, tags, **options)
