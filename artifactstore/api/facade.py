"""``Store``: the entry point of the Python API, a facade over one opened project.

Vocabulary: a store (one URL) holds projects; a ``Store`` object is one project of
it, opened with :func:`open`. Each method hands the call to the service that owns it
(``repository/ingest`` logs, ``maintenance/*`` deletes and collects, ``runs/`` and
``lineage/`` answer queries, ``transfer/`` moves versions between stores) with the
opened :class:`~artifactstore.repository.project.Project`; nothing here touches the
store itself. The route of a call through the layers: docs/architecture.md.

Length: the whole public API of a project is this one class, a short delegating method
per call with its contract; split, it would scatter the page users read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

from artifactstore.maintenance.defaults import DEFAULT_GRACE, DEFAULT_REPACK_THRESHOLD
from artifactstore.model.names import aliases_to_log, validate_alias, version_label
from artifactstore.repository.opening import open_at

if TYPE_CHECKING:
    # Only named in signatures: each service is imported by the call that uses it, so
    # opening a store and reading a version (the CLI's ls, show, diff) import none.
    import networkx as nx

    from artifactstore.core.digest import Digest
    from artifactstore.lineage.audit import AuditReport
    from artifactstore.lineage.graph import FileUse
    from artifactstore.local.catalog import Catalog, RunInfo
    from artifactstore.local.filecache import FileCache
    from artifactstore.maintenance.gc import GcReport
    from artifactstore.maintenance.lifecycle import PurgeReport
    from artifactstore.maintenance.projects import ProjectListing
    from artifactstore.maintenance.runpurge import RunPurgeReport
    from artifactstore.model.exports import ExportManifest
    from artifactstore.objects.store import ObjectStore, Progress
    from artifactstore.objects.window import WaitCallback
    from artifactstore.records.lifecycle import LifecycleEvent
    from artifactstore.records.projects import Member
    from artifactstore.records.refs import AliasEvent, Refs, VersionRecord
    from artifactstore.records.runs import MetricsRow
    from artifactstore.repository.artifact import Artifact
    from artifactstore.repository.listing import VersionState
    from artifactstore.repository.project import Project
    from artifactstore.repository.version import ArtifactVersion
    from artifactstore.runs import media as run_media
    from artifactstore.runs.codediff import CodeDiff, SavedCode
    from artifactstore.runs.run import Run
    from artifactstore.transfer.foreign import ForeignReport
    from artifactstore.transfer.importing import ImportReport
    from artifactstore.transfer.publish import PublishReport

__all__ = ["Store", "open"]


class Store:
    """One project of a store: log artifacts, read versions, move aliases, query runs
    and lineage, delete, collect and publish."""

    def __init__(self, context: Project) -> None:
        """Usually made by :func:`open`."""
        #: the opened project every call is handed to (repository/project.py)
        self.context = context

    def __repr__(self) -> str:
        return f"<Store {self.url} project={self.project}>"

    # -- what the opened project holds (read-only views) ------------------------------

    @property
    def url(self) -> str:
        return self.context.url

    @property
    def project(self) -> str:
        """The project's name."""
        return self.context.name

    @property
    def objects(self) -> ObjectStore:
        return self.context.objects

    @property
    def refs(self) -> Refs:
        return self.context.refs

    @property
    def catalog(self) -> Catalog:
        return self.context.catalog

    @property
    def file_cache(self) -> FileCache | None:
        return self.context.file_cache

    @property
    def backend_options(self) -> dict[str, Any]:
        return self.context.backend_options

    @property
    def reopen_options(self) -> dict[str, Any]:
        """``open(store.url, **store.reopen_options)`` opens this project again the same
        way, in another process (a data loader's worker): project, cache folder, file
        cache on or off, and the backend options (a passphrase is not kept)."""
        return {**self.context.backend_options, "project": self.context.name,
                "cache_dir": self.context.cache_dir,
                "file_cache": self.context.file_cache is not None}

    @property
    def exists(self) -> bool:
        """Whether the store exists: False for a pending store over a missing location
        until its first write creates it (``open`` with ``create=None``)."""
        return self.context.exists

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.context.close()

    def members(self) -> list[Member]:
        """The project's current members (empty for a project without a record)."""
        return self.context.membership()[1]

    def signers(self) -> dict[bytes, str]:
        """Ed25519 key -> member fingerprint of everyone who may have signed this
        project's records (empty for a project without a record)."""
        return self.context.membership()[0]

    def projects(self) -> list[ProjectListing]:
        """Every project of this store, by name: visibility, whether this user can read
        it, and counts of runs and artifacts (one listing; see
        :func:`artifactstore.maintenance.projects.list_projects`)."""
        from artifactstore.maintenance.projects import list_projects

        return list_projects(self.objects.backend)

    def same_location(self, other: Store) -> bool:
        """Both objects are the same project of the same store."""
        return self.context.same_location(other.context)

    # -- logging and reading ---------------------------------------------------------

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
        from artifactstore.repository import ingest
        from artifactstore.runs import active

        # Every input is checked first: a refused one leaves the store (or the store
        # that a first write would create) unchanged; the link policy is staging's.
        wanted_aliases = aliases_to_log(aliases)
        artifact = ingest.as_artifact(artifact_or_path, name, type, metadata, description,
                                      follow_outside_links=follow_outside_links,
                                      skip_unreadable=skip_unreadable, project=self.context)
        if run is None:
            # runs.active.latest is runs.run.active_run without importing the run
            # machinery (media, code state, environment: ~50 ms of a log's start-up);
            # a run of this process exists only once runs.run was imported anyway.
            run = cast("Run | None", active.latest(self.context))
        if run is not None:
            return run.log_artifact(artifact, aliases=wanted_aliases, role=role,
                                    progress=progress)
        return ingest.log_version(self.context, artifact, aliases=wanted_aliases,
                                  progress=progress)

    def artifact(self, ref: str) -> ArtifactVersion:
        """``name``, ``name:vN``, ``name:alias`` or ``name:latest``."""
        from artifactstore.repository.version import find_version  # not for ls, lineage

        return find_version(self.context, ref)

    def artifacts(self) -> list[str]:
        """Names of the artifacts with a live version, from the local catalog (synced
        first when stale: the change journal's window, design §12.8), not a listing."""
        catalog = self.catalog
        catalog.ensure_fresh()
        state = catalog.lifecycle_state()
        # one row per name, not per version; the numbers only of names with deletions
        return [name for name in catalog.artifact_names()
                if not (deleted := state.deleted_numbers(name))
                or catalog.numbers_of(name) - deleted]

    def versions(self, name: str) -> list[ArtifactVersion]:
        from artifactstore.repository.version import versions_of

        return versions_of(self.context, name)

    def aliases_by_version(self, name: str) -> dict[str, list[str]]:
        """``vN`` -> the aliases pointing at it now (``latest`` first), for every version
        of ``name`` in three listings (``version.aliases`` costs as much for one)."""
        return {version_label(n): names
                for n, names in self.refs.aliases_by_version(name).items()}

    def version_states(self, name: str | None = None, *,
                       sync: bool | None = None) -> list[VersionState]:
        """Every version (of ``name``) with its state and aliases, deleted, purged and
        missing ones included, from the local catalog (see :mod:`..repository.listing`)."""
        from artifactstore.repository import listing

        return listing.version_states(self.context, name, sync=sync)

    def export(self, ref: str, path: str | os.PathLike[str], *, force: bool = False,
               progress: Progress | None = None) -> ExportManifest:
        """Write the files of version ``ref`` and a portable manifest
        (docs/export-format.md) to the folder ``path``, or to a tar file when it ends in
        .tar, .tar.gz or .tgz. An existing non-empty folder or file is refused
        (AlreadyExistsError) unless ``force``. Returns the manifest written."""
        from artifactstore.transfer.exporting import export_version

        return export_version(self.context, self.artifact(ref), path, force=force,
                              progress=progress)

    def import_export(self, source: str | os.PathLike[str], name: str | None = None, *,
                      aliases: bool = False, references: bool = True,
                      progress: Progress | None = None) -> ImportReport:
        """Import the export at ``source`` (a folder or tar file made by :meth:`export`)
        as a new version here, with the run that made it restored (see
        :mod:`artifactstore.transfer.importing`); ``name`` imports under another name,
        ``aliases`` sets the export's aliases here too, ``references=False`` leaves
        references out."""
        from artifactstore.transfer.importing import import_export

        return import_export(self.context, source, name, aliases=aliases,
                             references=references, progress=progress)

    def import_from(self, kind: str, path: str | os.PathLike[str], *,
                    progress: Progress | None = None, **options: Any) -> ForeignReport:
        """Bring another tool's history in: ``kind`` is ``"dvc"`` (a repository: its
        outputs as versions, its ``dvc.lock`` stages as runs), ``"mlflow"`` (an
        ``mlruns`` folder: runs, params, metrics, artifacts), ``"hf"`` (a hub cache:
        each snapshot a version) or ``"wandb"`` (offline runs: runs, history, logged
        artifacts). Original digests are kept in the metadata and checked
        (IntegrityError names a file that fails); importing again writes nothing new.
        ``options`` are the importer's (see :mod:`artifactstore.transfer.foreign`)."""
        from artifactstore.transfer.foreign import import_from

        return import_from(self.context, kind, path, progress=progress, **options)

    def publish(self, ref: str, to: str | os.PathLike[str], project: str | None = None, *,
                with_lineage: bool = False, with_ancestors: bool = False,
                progress: Progress | None = None) -> PublishReport:
        """Copy version ``ref`` into public ``project`` (default: this project's name) of
        the existing store at ``to``, re-logged there in plaintext and signed by you;
        ``with_lineage`` also restores the run that made it (config, metrics, inputs);
        ``with_ancestors`` also publishes every version upstream of it, with its run.
        Nothing else of this project is written there (see
        :mod:`artifactstore.transfer.publish`)."""
        from artifactstore.transfer.publish import publish

        return publish(self.context, ref, to, project, with_lineage=with_lineage,
                       with_ancestors=with_ancestors, progress=progress)

    # -- aliases ---------------------------------------------------------------------

    def set_alias(self, ref: str, alias: str, force: bool = False,
                  protect: bool | None = None) -> AliasEvent:
        from artifactstore.repository import aliases

        return aliases.set_alias(self.context, ref, alias, force=force, protect=protect)

    def remove_alias(self, name: str, alias: str, force: bool = False) -> AliasEvent:
        from artifactstore.repository import aliases

        return aliases.remove_alias(self.context, name, alias, force=force)

    def protect_alias(self, name: str, alias: str) -> AliasEvent:
        """Protect ``name:alias`` where it points now: moving or removing it then needs
        ``force``, and deleting the version it points at refuses even forced, until
        :meth:`unprotect_alias`."""
        from artifactstore.repository import aliases

        return aliases.set_protection(self.context, name, alias, True)

    def unprotect_alias(self, name: str, alias: str) -> AliasEvent:
        """Lift the protection of ``name:alias`` (recorded as a forced event)."""
        from artifactstore.repository import aliases

        return aliases.set_protection(self.context, name, alias, False)

    def alias_history(self, name: str, alias: str) -> list[AliasEvent]:
        return self.refs.alias_history(name, validate_alias(alias))

    def alias_events(self, name: str, *, sync: bool | None = None) -> list[AliasEvent]:
        """Every event of every alias of ``name``, by alias then ``seq`` (the catalog)."""
        from artifactstore.repository import listing

        return listing.alias_events(self.context, name, sync=sync)

    # -- lifecycle (maintenance/lifecycle.py, maintenance/gc.py) --------------------------

    def delete(self, ref: str, *, force: bool = False, reason: str | None = None) -> LifecycleEvent:
        """Soft-delete one version (``name:vN`` or an alias); ``restore`` undoes it."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.delete_ref(self.context, ref, force=force, reason=reason)

    def delete_artifact(self, name: str, *, force: bool = False,
                        reason: str | None = None) -> LifecycleEvent:
        """Soft-delete every live version of ``name``."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.delete_artifact(self.context, name, force=force, reason=reason)

    def delete_run(self, run_id: str, *, with_artifacts: bool = False, force: bool = False,
                   reason: str | None = None) -> list[LifecycleEvent]:
        """Soft-delete a run, and with ``with_artifacts`` the versions it produced.

        All or nothing: an alias in the way refuses before anything is deleted."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.delete_run(self.context, run_id, with_artifacts=with_artifacts,
                                    force=force, reason=reason)

    def delete_project(self, *, force: bool = False,
                       reason: str | None = None) -> list[LifecycleEvent]:
        """Soft-delete every version and run of the project (all or nothing)."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.delete_project(self.context, force=force, reason=reason)

    def restore(self, ref: str) -> LifecycleEvent:
        """Undo the deletion of ``name:vN`` (before gc reclaimed it)."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.restore_version(self.context, ref)

    def restore_artifact(self, name: str) -> list[LifecycleEvent]:
        """Undo the deletion of every deleted (not purged) version of ``name``."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.restore_artifact(self.context, name)

    def restore_project(self) -> list[LifecycleEvent]:
        """Undo the deletion of every deleted (not purged) version and run."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.restore_project(self.context)

    def restore_run(self, run_id: str) -> LifecycleEvent:
        """Undo the deletion of a run (the versions it produced are restored separately)."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.restore_run(self.context, run_id)

    def deleted_versions(self) -> list[tuple[str, int, LifecycleEvent]]:
        """``(artifact, number, tombstone)`` of every deleted version, by name and number."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.deleted_versions(self.context)

    def set_retention(self, ttl: str | float | None, artifact: str | None = None
                      ) -> LifecycleEvent:
        """Keep unaliased versions of ``artifact`` (default: of every artifact) for ``ttl``
        (``"30d"``, seconds; None removes it); gc deletes older ones."""
        from artifactstore.maintenance import lifecycle

        return lifecycle.set_retention(self.context, ttl, artifact)

    def gc(self, grace: float | str = DEFAULT_GRACE, dry_run: bool = False, *,
           repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
           progress: Progress | None = None, domains: Iterable[str] | None = None,
           accept_missing_records: bool = False, wait: bool = True,
           on_wait: WaitCallback | None = None) -> GcReport:
        """Reclaim the space of deleted versions (two phases; see
        :mod:`artifactstore.maintenance.gc`).

        Refused while records are missing (their data would be freed) unless
        ``accept_missing_records``. With ``grace=0`` the call waits out the store's
        commit window (default 120 s) and frees the space before it returns;
        ``on_wait(seconds_left)`` is called about once a second meanwhile.
        ``wait=False`` returns after condemning instead: nothing is freed until a gc
        runs once the commit window has passed."""
        from artifactstore.maintenance.gc import collect_garbage
        from artifactstore.maintenance.lifecycle import parse_duration

        report = collect_garbage(self.context, grace=parse_duration(grace), dry_run=dry_run,
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
        from artifactstore.maintenance import lifecycle

        return lifecycle.purge(self.context, ref, reason=reason, path=path, wait=wait,
                               on_wait=on_wait)

    # -- runs (runs/) ----------------------------------------------------------------

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

        return Run(self.context, name=name, job_type=job_type, config=config, tags=tags,
                   save_code=save_code, capture_code=capture_code, packages=packages,
                   heartbeat=DEFAULT_HEARTBEAT if heartbeat is None else heartbeat)

    def bundle_records(self) -> int:
        """Write record bundles (design §12.9) of the records no bundle carries yet, so a
        new reader's first sync makes a few GETs, not one per record; returns how many
        records were bundled. For ``maintenance`` or any member who may write."""
        from artifactstore.records import bundles

        self.context.refs.codec.check_writable()
        return bundles.write_bundles(self.objects.backend, self.project)

    def sync(self) -> None:
        """Bring the local catalog (and what is deleted) up to date with the store now:
        a full listing, so records written by clients without the journal show too."""
        from artifactstore.runs import queries as run_queries

        self.catalog.sync(full=True)
        run_queries.deleted_runs(self.context)

    def runs(self, *, job_type: str | None = None, status: str | None = None,
             tag: str | None = None, since: str | datetime | None = None,
             until: str | datetime | None = None, sync: bool | None = None,
             include_deleted: bool = False) -> list[RunInfo]:
        """The project's runs, oldest first, filtered by job type, status, tag and start
        time. Deleted runs are left out unless ``include_deleted``."""
        from artifactstore.runs import queries as run_queries

        return run_queries.find_runs(self.context, job_type=job_type, status=status, tag=tag,
                                     since=since, until=until, sync=sync,
                                     include_deleted=include_deleted)

    def get_run(self, run_id: str, *, sync: bool | None = None) -> RunInfo:
        """One run by id (a unique prefix of the id is enough)."""
        from artifactstore.runs import queries as run_queries

        return run_queries.get_run(self.context, run_id, sync=sync)

    def run_history(self, run_id: str, *, sync: bool | None = None) -> Iterator[MetricsRow]:
        """The metrics rows of a run in order, streamed segment by segment."""
        from artifactstore.runs import queries as run_queries

        return run_queries.run_history(self.context, run_id, sync=sync)

    def media(self, run_id: str, reference: Mapping[str, Any] | str) -> run_media.MediaFile:
        """The file a media reference of the run's history names (a map as
        ``run_history`` gives it, or its ``path``), resolved in the newest live version
        of ``media-<run id>`` and checked against the reference's digest: ``read()``,
        ``save(path)``, ``to_pil()``, ``to_numpy()``, ``table()``."""
        from artifactstore.runs import media as run_media

        return run_media.media_file(self.context, run_id, reference)

    def run_media(self, run_id: str, *, key: str | None = None,
                  step: int | None = None) -> list[run_media.MediaEntry]:
        """The media references of a run's history (``step``, ``key``, ``reference``),
        of ``key`` and ``step`` if given."""
        from artifactstore.runs import media as run_media

        return list(run_media.media_entries(self.context, run_id, key=key, step=step))

    def purge_run(self, run_id: str, *, reason: str, wait: bool = True,
                  on_wait: WaitCallback | None = None) -> RunPurgeReport:
        """Takedown of a run's media: purge every version of ``media-<run id>`` (as
        :meth:`purge` does, one commit-window wait) and delete the run."""
        from artifactstore.maintenance.runpurge import purge_run

        return purge_run(self.context, run_id, reason=reason, wait=wait, on_wait=on_wait)

    def runs_frame(self, *, job_type: str | None = None, status: str | None = None,
                   tag: str | None = None, since: str | datetime | None = None,
                   until: str | datetime | None = None, sync: bool | None = None,
                   include_deleted: bool = False) -> Any:
        """The runs (filtered as :meth:`runs`) as a pandas DataFrame, one row per run:
        id, name, job_type, status, tags, started_at, ended_at, config.*, summary.*
        (the ``[pandas]`` extra)."""
        from artifactstore.runs import frames

        return frames.runs_frame(self.runs(job_type=job_type, status=status, tag=tag,
                                           since=since, until=until, sync=sync,
                                           include_deleted=include_deleted))

    def history_frame(self, run_id: str, *, sync: bool | None = None) -> Any:
        """A run's history as a pandas DataFrame, one row per step: _step, _timestamp,
        then each metric; media cells stay reference maps (the ``[pandas]`` extra)."""
        from artifactstore.runs import frames

        return frames.history_frame(self.run_history(run_id, sync=sync))

    def diff_code(self, run_a: str, run_b: str, *, repo: str | os.PathLike[str] | None = None,
                  sync: bool | None = None) -> CodeDiff:
        """What changed from the code of run ``run_a`` to run ``run_b``: their commits
        (with ``git log``/``git diff`` when the git repository holding ``repo``, default
        the current directory, has both) and their saved patches and entry scripts."""
        from artifactstore.runs.codediff import diff_code

        return diff_code(self.context, run_a, run_b, repo=repo, sync=sync)

    def saved_code(self, run_id: str) -> SavedCode | None:
        """The code run ``run_id`` saved (``save_code=True``): its patch against the
        commit and its entry script, or None."""
        from artifactstore.runs.codediff import saved_code

        return saved_code(self.context, self.get_run(run_id))

    # -- lineage (lineage/) ----------------------------------------------------------

    def lineage(self, *, sync: bool | None = None) -> nx.DiGraph:
        """The project's lineage graph (a copy; see :mod:`artifactstore.lineage.graph`)."""
        from artifactstore.lineage import queries as lineage_queries

        return lineage_queries.lineage(self.context, sync=sync)

    def lineage_node(self, ref: str, *, sync: bool | None = None) -> str:
        """The graph id ``ref`` names (``name:vN`` or ``run:<id>``): deleted and purged
        versions and runs included, as lineage and audits must answer for them."""
        from artifactstore.lineage import queries as lineage_queries

        return lineage_queries.lineage_node(self.context, ref, sync=sync)

    def upstream(self, ref: str, depth: int | None = None, *,
                 sync: bool | None = None) -> nx.DiGraph:
        """``ref`` and everything it was made from: runs, their inputs, and so on."""
        from artifactstore.lineage import queries as lineage_queries

        return lineage_queries.upstream(self.context, ref, depth, sync=sync)

    def downstream(self, ref: str, depth: int | None = None, *,
                   sync: bool | None = None) -> nx.DiGraph:
        """``ref`` and everything made from it."""
        from artifactstore.lineage import queries as lineage_queries

        return lineage_queries.downstream(self.context, ref, depth, sync=sync)

    def impact(self, ref: str, *, sync: bool | None = None) -> list[str]:
        """Every version derived from ``ref``, transitively (what a takedown must consider)."""
        from artifactstore.lineage import queries as lineage_queries

        return lineage_queries.impact(self.context, ref, sync=sync)

    def where_used(self, file_digest: str | Digest, *, sync: bool | None = None) -> FileUse:
        """Versions that hold a file with this content (plain BLAKE3) and runs that used them."""
        from artifactstore.lineage import queries as lineage_queries

        return lineage_queries.where_used(self.context, file_digest, sync=sync)

    def catalog_record(self, artifact: str, number: int) -> VersionRecord:
        return self.refs.version(artifact, number)

    def audit(self, ref: str, *, sample: float | None = None,
              sync: bool | None = None) -> AuditReport:
        """Provenance, alias history and integrity of a version (see
        :mod:`artifactstore.lineage.audit`)."""
        from artifactstore.lineage.audit import audit

        return audit(self.context, ref, sample=sample, sync=sync)


def open(
    url: str | os.PathLike[str] | None = None,
    project: str | None = None,
    *,
    create: bool | None = None,
    concurrency: int = 8,
    cache_dir: str | os.PathLike[str] | None = None,
    file_cache: bool | None = None,
    passphrase: str | None = None,
    **backend_options: Any,
) -> Store:
    """Open a project of the store at ``url`` (a URL, a folder's path as ``str`` or
    ``Path``, or None: discovered).

    Opening writes nothing to the store. ``create=True`` creates the store and the
    project now (any backend). With ``create=None`` (the default) a missing local or
    memory store, or a missing project, is created by the first write (log, alias,
    run, ...): until then reads raise ``StoreNotFoundError`` (a missing store) or
    find nothing (a missing project). ``create=False`` creates nothing: a missing
    store raises ``StoreNotFoundError`` here, a missing project refuses writes.
    Cloud stores are never created lazily (``create=True`` or ``artifactstore
    init``), so a mistyped bucket prefix fails. The per-user default store is
    created private. A private project opens with the user's identity, or with its
    ``passphrase`` slot (see :mod:`artifactstore.repository.access`). Downloads go
    through the per-user file cache for remote stores (``file_cache=None``); True or
    False forces it.
    """
    return Store(open_at(url, project, create=create, concurrency=concurrency,
                         cache_dir=cache_dir, file_cache=file_cache, passphrase=passphrase,
                         **backend_options))
