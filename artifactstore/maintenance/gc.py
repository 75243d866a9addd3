"""Garbage collection, retention and purge of a store (docs/design.md §15, §16).

Vocabulary:

- **marking**: collecting the live set of a key domain: every blob id (manifest,
  tree nodes, chunk lists, chunks) named by a live version whose blobs are in
  that domain. The plain domain is shared by every public project, so it is
  marked from all of them; a private project's domains from its own versions.
  Any version that cannot be read aborts the domain: gc never deletes on an
  incomplete mark.
- **gc**: sweep the condemnations old enough (``max(grace, commit window)``),
  then condemn what is unreferenced now (see :mod:`artifactstore.objects.sweep`).
  With ``grace=0`` a gc also waits one commit window and sweeps what it just
  condemned, so one call frees the space.
- **retention**: before marking, versions older than their artifact's TTL that
  no alias points at are deleted (tombstoned) by gc.
- **stale temp files**: what interrupted local writes left (``.tmp-*``), older
  than the commit window; gc removes them (:mod:`artifactstore.backends.temps`).
- **purge**: tombstone plus immediate removal of the blobs no live version
  needs, then a proof that they are gone (:class:`PurgeReport`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from artifactstore.backends.temps import remove_stale_temps, stale_temps
from artifactstore.core.digest import Digest
from artifactstore.core.errors import ArtifactStoreError, IntegrityError, InvalidInputError
from artifactstore.maintenance import defaults
from artifactstore.maintenance.consolidate import consolidate_index
from artifactstore.maintenance.losses import missing_records
from artifactstore.model.entries import FileEntry
from artifactstore.model.tree import iter_entries
from artifactstore.objects.gcrecords import Condemnation, GcLock, condemnations
from artifactstore.objects.layout import PLAIN_DOMAIN
from artifactstore.objects.store import ObjectStore, Progress
from artifactstore.objects.sweep import IndexCache, SweepResult, condemn, read_layout, sweep
from artifactstore.objects.window import WaitCallback, wait_until
from artifactstore.records import journal
from artifactstore.records.codec import RecordCodec
from artifactstore.records.projects import ProjectKeys
from artifactstore.records.refs import Refs, VersionRecord
from artifactstore.records.runs import parse_time
from artifactstore.repository.project import Project

__all__ = ["DomainGc", "GcReport", "collect_garbage", "version_blobs"]

# (defined apart so that the API and the CLI name them without importing gc)
DEFAULT_GRACE, DEFAULT_REPACK_THRESHOLD = defaults.DEFAULT_GRACE, defaults.DEFAULT_REPACK_THRESHOLD


@dataclass
class DomainGc:
    """What gc did (or would do, in a dry run) in one key domain."""

    domain: str
    live_blobs: int = 0
    condemned_blobs: int = 0
    condemned_bytes: int = 0
    orphan_packs: int = 0
    swept: SweepResult = field(default_factory=SweepResult)
    #: condemnations left for a later gc (younger than the grace period)
    waiting: int = 0
    error: str | None = None


@dataclass
class GcReport:
    dry_run: bool
    grace: float
    domains: dict[str, DomainGc] = field(default_factory=dict)
    expired: list[str] = field(default_factory=list)
    #: temp files of interrupted writes older than the commit window: removed (or,
    #: in a dry run, that would be)
    stale_temps: int = 0
    #: missing records gc went ahead despite (``accept_missing_records``)
    missing: list[str] = field(default_factory=list)
    #: change-journal entries older than ``journal.PRUNE_AFTER`` deleted (or, in a dry
    #: run, that would be; design §12.8)
    journal_pruned: int = 0
    #: index objects merged into fewer (consolidate.py), and how many were written
    index_objects_merged: int = 0
    index_objects_written: int = 0

    @property
    def bytes_freed(self) -> int:
        return sum(d.swept.bytes_freed for d in self.domains.values())

    @property
    def packs_deleted(self) -> int:
        return sum(d.swept.packs_deleted for d in self.domains.values())


# -- marking -----------------------------------------------------------------------------


def version_blobs(record: VersionRecord, objects: ObjectStore) -> Iterator[bytes]:
    """Every blob id ``record`` names: manifest, tree nodes, chunk lists, chunks."""
    yield record.manifest.raw
    read: list[bytes] = []

    def get_blob(blob_id: Digest) -> bytes:
        read.append(blob_id.raw)
        return objects.read_blob(blob_id)

    for entry in iter_entries(record.digest, get_blob):
        yield from read
        read.clear()
        if isinstance(entry, FileEntry):
            for chunk in entry.chunks:
                yield chunk.id.raw
    yield from read


def _public_refs(project: Project) -> Iterator[Refs]:
    """Refs of every public project of the store (they share the plain domain)."""
    backend = project.objects.backend
    names = sorted({key.split("/", 2)[1] for key in backend.list("projects/")
                    if key.count("/") >= 2})
    for name in names:
        if name == project.name:
            if project.refs.codec.ring is None:
                yield project.refs
            continue
        info = ProjectKeys(backend, name, None).info()
        if info is None or not info.encrypted:
            yield Refs(backend, name, RecordCodec())


def _live_versions(refs: Refs) -> Iterator[VersionRecord]:
    state = refs.lifecycle_state()
    for artifact in refs.artifacts(include_deleted=True):
        gone = state.deleted_numbers(artifact)
        for number in refs.version_numbers(artifact):
            if number not in gone:
                yield refs.version(artifact, number, include_deleted=True)


def mark(project: Project) -> dict[str, tuple[ObjectStore, set[bytes]]]:
    """Domain -> (its object store, its live set) for every domain ``project`` may collect."""
    ring = project.refs.codec.ring
    marked: dict[str, tuple[ObjectStore, set[bytes]]] = {}
    if ring is None:
        sources: Iterable[Refs] = _public_refs(project)
        marked[PLAIN_DOMAIN] = (project.objects, set())
    else:
        sources = [project.refs]
        for keys in ring.epochs.values():
            marked[keys.domain] = (project.domain_objects(keys.key_id), set())
    walked: set[tuple[str, bytes]] = set()
    for refs in sources:
        for record in _live_versions(refs):
            objects = project.objects_for(record) if ring is not None else project.objects
            live = marked[objects.domain][1]
            live.add(record.manifest.raw)
            if (objects.domain, record.digest.raw) not in walked:  # same content: same blobs
                walked.add((objects.domain, record.digest.raw))
                live.update(version_blobs(record, objects))
    return marked


# -- retention ---------------------------------------------------------------------------


def expire(project: Project, *, dry_run: bool, now: float | None = None) -> list[str]:
    """Delete versions older than their TTL that no alias points at; returns their refs."""
    refs = project.refs
    state = refs.lifecycle_state()
    if not state.retention:
        return []
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    expired: list[str] = []
    for artifact in refs.artifacts():
        ttl = state.ttl(artifact)
        if ttl is None:
            continue
        aliased = set(refs.aliases(artifact).values())
        old = [r.number for r in refs.versions(artifact)
               if r.number not in aliased
               and (moment - parse_time(r.created_at)).total_seconds() >= ttl]
        if old:
            expired += [f"{artifact}:v{n}" for n in old]
            if not dry_run:
                refs.lifecycle.append("delete", by="gc (retention)", artifact=artifact,
                                      numbers=old, reason=f"older than its TTL of {ttl:g} s")
    return expired


# -- gc ----------------------------------------------------------------------------------


def collect_garbage(
    project: Project, *, grace: float = DEFAULT_GRACE, dry_run: bool = False,
    repack_threshold: float = DEFAULT_REPACK_THRESHOLD, progress: Progress | None = None,
    domains: Iterable[str] | None = None, accept_missing_records: bool = False,
    wait: bool = True, on_wait: WaitCallback | None = None,
) -> GcReport:
    """Expire, sweep old condemnations, condemn what is unreferenced; see the module.

    ``domains`` limits the work to those key domains (default: every one the
    project may collect). While records of the projects marked are missing
    (losses.py), gc refuses (IntegrityError) unless ``accept_missing_records``.
    With grace 0, ``wait`` (default) waits out the commit window after condemning
    (``on_wait`` is told the seconds left) and frees the space in this call;
    ``wait=False`` returns after condemning, and a gc run once the commit window
    has passed frees it (the report's ``waiting`` counts what is left for it).
    """
    if not isinstance(grace, int | float) or isinstance(grace, bool) or grace < 0:
        raise InvalidInputError(f"grace must be a number of seconds >= 0, got {grace!r:.40}")
    if not 0 <= repack_threshold <= 1:
        raise InvalidInputError("repack_threshold is a fraction between 0 and 1")
    if not dry_run:  # condemning is an admin's write on a team server: asked first
        project.ensure_writable(admin_for="collecting garbage")
    report = GcReport(dry_run=dry_run, grace=float(grace))
    report.missing = _check_losses(project, accept_missing_records)
    report.expired = expire(project, dry_run=dry_run)
    window = project.objects.config.commit_window
    lock = GcLock(project.objects.backend)
    if not dry_run:
        lock.acquire()
    try:
        only = None if domains is None else set(domains)
        pending = _domains(project)
        now = time.time()
        due = {d: [r for r in records if now - r.at >= max(grace, window)]
               for d, records in pending.items()}
        marked = mark(project)  # after choosing what is due: the mark postdates every due record
        if only is not None:
            marked = {d: m for d, m in marked.items() if d in only}
        caches: dict[str, IndexCache] = {}
        for domain, (objects, live) in sorted(marked.items()):
            result = report.domains[domain] = DomainGc(domain, live_blobs=len(live))
            records = pending.get(domain, [])
            cache = caches.setdefault(domain, {})
            if not dry_run:
                result.swept = sweep(objects, live, due.get(domain, []),
                                     repack_threshold=repack_threshold, progress=progress,
                                     cache=cache)
            still = [r for r in records if r not in due.get(domain, [])]
            found = condemn(objects, live, [] if dry_run else still, dry_run=dry_run,
                            cache=cache)
            result.condemned_blobs, result.condemned_bytes = found.blobs, found.bytes
            result.orphan_packs = found.orphan_packs
            result.waiting = len(still) + (found.record is not None)
            if dry_run:
                result.swept.bytes_freed = found.bytes
        if (grace == 0 and wait and not dry_run
                and any(d.waiting for d in report.domains.values())):
            _sweep_now(project, report, window, repack_threshold, progress, caches, only,
                       on_wait)
        if not dry_run:  # under the lock: no sweep replaces index objects meanwhile
            for objects, _ in marked.values():
                merged = consolidate_index(objects)
                report.index_objects_merged += merged.merged
                report.index_objects_written += merged.written
        backend = project.objects.backend
        report.stale_temps = len(stale_temps(backend, window) if dry_run
                                 else remove_stale_temps(backend, window))
    finally:
        lock.release()
    report.journal_pruned = _prune_journal(project, dry_run=dry_run)
    return report


def _prune_journal(project: Project, *, dry_run: bool) -> int:
    """Delete the project's journal entries older than ``PRUNE_AFTER`` (records/journal.py).

    Best effort: the journal is a hint, so an entry left behind (a refused or failed
    delete) costs one key, never a record; a project not created yet has none.
    """
    backend = project.objects.backend
    old = journal.old_entries(backend, project.name)
    if dry_run:
        return len(old)
    pruned = 0
    for key in old:
        try:
            backend.delete(key)
        except ArtifactStoreError:
            break  # e.g. a server that lets only admins delete: leave the rest
        pruned += 1
    return pruned


def _check_losses(project: Project, accept: bool) -> list[str]:
    """The missing records of the projects gc marks; IntegrityError unless ``accept``.

    Why: a version whose record is lost is not in the live set, so its blobs would
    be condemned and freed, making a loss a backup could still undo permanent.
    """
    refs_list = [project.refs] if project.refs.codec.ring is not None else _public_refs(project)
    missing = []
    for refs in refs_list:
        catalog = project.catalog if refs is project.refs else None
        found = missing_records(project.objects.backend, refs, catalog)
        if found and not accept:
            raise IntegrityError(
                f"gc refused: {len(found)} record(s) of project {refs.project!r} are missing "
                f"(the first: {found[0].what}), and their versions' data would be freed; "
                "restore them from a backup ('artifactstore verify' lists them), or run "
                "'artifactstore gc --accept-missing-records' to free it anyway")
        missing += [str(m) for m in found]
    return missing


def _domains(project: Project) -> dict[str, list[Condemnation]]:
    backend = project.objects.backend
    ring = project.refs.codec.ring
    names = [PLAIN_DOMAIN] if ring is None else [k.domain for k in ring.epochs.values()]
    return {name: condemnations(backend, name) for name in names}


def _sweep_now(project: Project, report: GcReport, window: float, threshold: float,
               progress: Progress | None, caches: dict[str, IndexCache],
               only: set[str] | None, on_wait: WaitCallback | None) -> None:
    """grace 0: wait out the commit window, re-mark, and sweep what was condemned."""
    records = _domains(project)
    newest = max((r.at for rs in records.values() for r in rs), default=0.0)
    wait_until(newest + window, on_wait)
    marked = mark(project)
    for domain, (objects, live) in marked.items():
        if only is not None and domain not in only:
            continue
        done = sweep(objects, live, records.get(domain, []), repack_threshold=threshold,
                     progress=progress, cache=caches.get(domain))
        swept = report.domains[domain].swept
        swept.packs_deleted += done.packs_deleted
        swept.packs_repacked += done.packs_repacked
        swept.blobs_deleted += done.blobs_deleted
        swept.bytes_freed += done.bytes_freed
        swept.index_objects_rewritten += done.index_objects_rewritten
        swept.dropped |= done.dropped
        report.domains[domain].waiting = 0


def dead_layout_blobs(objects: ObjectStore, ids: set[bytes]) -> set[bytes]:
    """Which of ``ids`` any index object or indexed pack of the domain still lists."""
    layout = read_layout(objects)
    return {e.id.raw for entries in layout.packs.values() for e in entries} & ids
