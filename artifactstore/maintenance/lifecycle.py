"""Deleting, restoring and purging versions, runs and projects (docs/design.md §14, §16).

Vocabulary: a **delete** is soft (a tombstone; ``restore`` undoes it until gc
reclaims the blobs); a **purge** is a takedown: tombstone, immediate removal of
every blob no live version needs (packs shared with live data are rewritten),
removal from this machine's file cache, a purge record, and a proof that the
blobs are gone (:class:`PurgeReport`). Aliases on a deleted version must be
removed first or forced; protected aliases always refuse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from artifactstore.core.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.lineage.queries import downstream
from artifactstore.maintenance.gc import mark, version_blobs
from artifactstore.model.entries import FileEntry
from artifactstore.model.names import parse_ref, parse_version_label, version_label
from artifactstore.model.tree import iter_entries
from artifactstore.objects.gcrecords import GcLock, condemnations
from artifactstore.objects.layout import pack_key
from artifactstore.objects.packs import read_trailer
from artifactstore.objects.store import ObjectStore
from artifactstore.objects.sweep import condemn, read_layout, rewrite_dependants, sweep
from artifactstore.objects.window import WaitCallback, wait_until
from artifactstore.records.aliases import ProtectedAliasError
from artifactstore.records.lifecycle import LifecycleEvent
from artifactstore.records.refs import VersionRecord
from artifactstore.records.versions import default_writer
from artifactstore.repository.cachedfiles import forget_cached, forget_purged
from artifactstore.repository.ingest import commit_entries
from artifactstore.repository.project import Project
from artifactstore.repository.version import find_version
from artifactstore.runs.queries import find_runs, get_run

__all__ = [
    "PurgeReport", "delete_all", "delete_artifact", "delete_project", "delete_ref", "delete_run",
    "delete_versions", "deleted_versions", "drop_path", "parse_duration", "purge",
    "purge_version", "restore_artifact", "restore_project", "restore_run", "restore_version",
    "set_retention", "wipe_blobs",
]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower()
        unit = _UNITS.get(text[-1])
        try:
            seconds = float(text[:-1]) * unit if unit is not None else float(text)
        except ValueError:
            seconds = -1.0
    else:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise InvalidInputError(
            f"{value!r:.40} is not a duration: use a number of seconds or e.g. 30d, 12h, 90m"
        )
    return seconds


def _aliases_to_clear(project: Project, targets: Mapping[str, list[int]],
                      force: bool) -> dict[str, list[str]]:
    """The aliases on ``targets`` (artifact -> numbers) that a delete must remove.

    Checks every refusal of the whole delete before anything changes, so a
    multi-object delete is all or nothing: any protected alias refuses (even
    with force: protection exists so that a bulk delete cannot take a
    production version by accident), and any alias at all refuses without
    ``force``. Each error names every alias in its way, not only the first.
    """
    on: dict[str, dict[str, int]] = {}
    protected: list[str] = []
    for artifact, numbers in sorted(targets.items()):
        wanted = set(numbers)
        on[artifact] = {a: n for a, n in project.refs.aliases(artifact).items() if n in wanted}
        for alias, number in sorted(on[artifact].items()):
            if project.refs.alias_history(artifact, alias)[-1].protected:
                protected.append(f"{artifact}:{alias} -> {version_label(number)}")
    if protected:
        first = protected[0].partition(" ")[0]
        raise ProtectedAliasError(
            f"nothing was deleted: protected aliases point at what you are deleting "
            f"({', '.join(protected)}); unprotect each first, e.g. "
            f"'artifactstore alias unprotect {first}'"
        )
    held = [f"{a}:{alias} -> {version_label(n)}"
            for a, by in sorted(on.items()) for alias, n in sorted(by.items())]
    if held and not force:
        raise ConflictError(
            f"nothing was deleted: aliases point at what you are deleting ({', '.join(held)}); "
            "remove them first or pass --force to remove them too"
        )
    return {a: sorted(by) for a, by in on.items() if by}


def delete_versions(
    project: Project, artifact: str, numbers: Iterable[int], *, force: bool = False,
    reason: str | None = None,
) -> LifecycleEvent:
    """Tombstone versions ``numbers`` of ``artifact`` in one event."""
    return delete_all(project, {artifact: numbers}, force=force, reason=reason)[0]


def delete_all(
    project: Project, targets: Mapping[str, Iterable[int]], *, force: bool = False,
    reason: str | None = None, runs: Iterable[str] = (),
) -> list[LifecycleEvent]:
    """Tombstone versions of several artifacts (artifact -> numbers) and ``runs``.

    All or nothing as far as refusals go: every one is checked
    (:func:`_aliases_to_clear`) before the first alias is removed or the first
    tombstone written. One event per artifact, then one for the runs.
    """
    plan = {a: sorted(set(numbers)) for a, numbers in targets.items()}
    plan = {a: numbers for a, numbers in sorted(plan.items()) if numbers}
    # on a team server, a writer may clear aliases but not write tombstones: ask first
    project.ensure_writable(admin_for="deleting versions")
    for artifact, aliases in _aliases_to_clear(project, plan, force).items():
        for alias in aliases:
            project.refs.remove_alias(artifact, alias)
    by = default_writer()
    events = [project.refs.lifecycle.append("delete", by=by, artifact=artifact, numbers=numbers,
                                          reason=reason)
              for artifact, numbers in plan.items()]
    runs = sorted(set(runs))
    if runs:
        events.append(project.refs.lifecycle.append("delete", by=by, runs=runs, reason=reason))
    project.catalog.invalidate()
    return events


def restore_version(project: Project, ref: str) -> LifecycleEvent:
    """Bring a deleted version back, if gc has not reclaimed its blobs."""
    project.ensure_writable(admin_for="restoring versions")
    record, tombstone = deleted_record(project, ref)
    if tombstone is None:
        raise InvalidInputError(f"{record.ref} is not deleted; nothing to restore")
    if tombstone.action == "purge":
        raise InvalidInputError(f"{record.ref} was purged; a purge cannot be undone")
    objects = project.objects_for(record)
    try:
        blobs = set(version_blobs(record, objects))
    except NotFoundError:
        raise NotFoundError(
            f"{record.ref} cannot be restored: gc has reclaimed some of its data"
        ) from None
    objects.prepare_commit(blobs)  # like a commit: nothing it names may be condemned
    objects.commit_guard()
    event = project.refs.lifecycle.append("restore", by=default_writer(),
                                        artifact=record.artifact, numbers=[record.number])
    project.catalog.invalidate()
    return event


def deleted_record(project: Project, ref: str) -> tuple[VersionRecord, LifecycleEvent | None]:
    """The record ``ref`` (``name:vN``) names, deleted or not, and its tombstone."""
    name, selector = parse_ref(ref)
    number = parse_version_label(selector)
    if number is None:
        record = project.refs.resolve(name, selector)
        return record, None
    record = project.refs.version(name, number, include_deleted=True)
    return record, project.refs.lifecycle_state().tombstone(name, number)


def drop_path(project: Project, ref: str, path: str) -> VersionRecord:
    """Log a new version of ``ref``'s artifact without ``path`` (a file or folder)."""
    version = find_version(project, ref)
    record = version.record
    objects = project.objects_for(record)
    if objects is not project.objects:
        raise InvalidInputError(
            f"{record.ref} was written under an older key epoch: download it, remove "
            f"{path!r} and log it again, then purge {record.ref}"
        )
    prefix = path.rstrip("/")
    entries = list(iter_entries(record.digest, objects.read_blob))
    kept = [e for e in entries if e.path != prefix and not e.path.startswith(prefix + "/")]
    if len(kept) == len(entries):
        raise NotFoundError(f"{path!r} is not in {record.ref}; nothing to purge")
    objects.begin_session()
    try:
        objects.note_session_blobs(c.id.raw for e in kept if isinstance(e, FileEntry)
                                   for c in e.chunks)
        new, _ = commit_entries(project,
            record.artifact, record.type, kept, description=record.description,
            metadata=record.metadata, run_id=record.run,
        )
    finally:
        objects.end_session()
    for alias in sorted(a for a, n in project.refs.aliases(record.artifact).items()
                        if n == record.number):
        project.refs.set_alias(record.artifact, alias, new.number, force=True)
    project.catalog.invalidate()
    return new


# -- purge -------------------------------------------------------------------------------


@dataclass
class PurgeReport:
    """What a purge wiped and the proof that it is gone."""

    ref: str
    reason: str
    at: str = ""
    by: str = ""
    blobs_wiped: int = 0
    bytes_wiped: int = 0
    packs_rewritten: int = 0
    #: files of the purged version still held by a live version (kept)
    shared_files: list[str] = field(default_factory=list)
    cache_entries_removed: int = 0
    #: the proof: no index object or pack of the domain lists a wiped blob
    indexes_checked: int = 0
    packs_checked: int = 0
    absent: bool = False
    #: the version was deleted and gc had reclaimed its tree: only the blobs that can
    #: still be named were wiped (what it alone held was freed by that gc, except any
    #: left in packs it kept; a gc with repack threshold 0 rewrites those)
    tree_reclaimed: bool = False
    downstream_versions: list[str] = field(default_factory=list)
    downstream_runs: list[str] = field(default_factory=list)


def purge_version(project: Project, ref: str, *, reason: str, wait: bool = True,
                  on_wait: WaitCallback | None = None) -> PurgeReport:
    """Takedown of one version; see the module docstring and design §16.

    ``wait`` (default) waits out the commit window after condemning the blobs
    (``on_wait`` is told the seconds left): a writer that found them present just
    before commits or fails first, so no version committed around the purge names
    a wiped blob. ``wait=False`` wipes at once: only safe when nobody else writes
    to the project, else such a version can be left naming wiped data.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("a purge needs a reason (--reason \"...\"): it is recorded")
    record, tombstone = deleted_record(project, ref)
    if tombstone is not None and tombstone.action == "purge":
        raise InvalidInputError(f"{record.ref} was already purged")
    project.ensure_writable(admin_for="purging versions")
    report = PurgeReport(ref=record.ref, reason=reason)
    _downstream(project, record, report)
    if tombstone is None:
        delete_versions(project, record.artifact, [record.number], force=True,
                        reason=f"purge: {reason}")
    objects = project.objects_for(record)
    mine: set[bytes] = set()
    files: list[FileEntry] = []
    try:
        mine.update(version_blobs(record, objects))
        files.extend(e for e in iter_entries(record.digest, objects.read_blob)
                     if isinstance(e, FileEntry))
    except NotFoundError:
        if tombstone is None:
            raise  # a live version lost data: verify and repair say so, a purge does not hide it
        # Deleted, and gc has reclaimed (part of) its tree since: the takedown is still
        # recorded, so sync carries it to copies that hold the data; here what can still
        # be named (collected above, up to the missing node) is wiped.
        report.tree_reclaimed = True
    live = wipe_blobs(project, objects, mine, report, wait=wait, on_wait=on_wait)
    shared = {e.digest for e in files if {c.id.raw for c in e.chunks} <= live}
    report.shared_files = sorted(e.path for e in files if e.digest in shared)
    report.cache_entries_removed = forget_cached(project, [e.digest for e in files
                                                          if e.digest not in shared])
    event = project.refs.lifecycle.append(
        "purge", by=default_writer(), artifact=record.artifact, numbers=[record.number],
        reason=f"{reason} (wiped {report.blobs_wiped} blobs, {report.bytes_wiped} bytes)",
    )
    report.at, report.by = event.at, event.by
    report.cache_entries_removed += forget_purged(project)
    project.catalog.invalidate()
    return report


def wipe_blobs(project: Project, objects: ObjectStore, mine: set[bytes], report: PurgeReport,
               *, wait: bool = True, on_wait: WaitCallback | None = None) -> set[bytes]:
    """Steps 3 and 4 of §16 for ``mine`` in the domain of ``objects``: condemn what no
    live version needs, wait the commit window, sweep, prove; returns the live set.

    Purge condemnations already pending in the domain (a wipe that was interrupted
    before its sweep) are swept too, so a second try finishes what the first began.
    Counts are added to ``report``; a blob still present is ``IntegrityError``.
    ``on_wait`` is told the seconds left of the commit window (objects/window.py)."""
    lock = GcLock(objects.backend)
    lock.acquire()
    try:
        live = mark(project)[objects.domain][1]
        pending = [r for r in condemnations(objects.backend, objects.domain) if r.purge]
        # Deltas whose bases are wiped become full chunks first; their delta copies are
        # condemned with the purged blobs (the live set is not closed over links here)
        copies = rewrite_dependants(objects, mine - live, live)
        found = condemn(objects, live, [], only=frozenset(mine - live), purge=True,
                        close=False, copies=copies)
        records = pending + ([found.record] if found.record is not None else [])
        if records:
            if wait:  # writers that checked before the record commit within the window
                wait_until(max(r.at for r in records) + objects.config.commit_window, on_wait)
            live = mark(project)[objects.domain][1]
            swept = sweep(objects, live, records)
            report.blobs_wiped += swept.blobs_deleted
            report.bytes_wiped += swept.bytes_freed
            report.packs_rewritten += swept.packs_deleted
        wiped = (mine | {b for r in pending for blobs in r.packs.values() for b in blobs}) - live
        _prove(objects, wiped, report)
    finally:
        lock.release()
    return live


def _downstream(project: Project, record: VersionRecord, report: PurgeReport) -> None:
    """Versions and runs that consumed the data (from lineage), before it is hidden."""
    with contextlib.suppress(NotFoundError):
        graph = downstream(project, f"{record.artifact}:{version_label(record.number)}", sync=True)
        me = f"{record.artifact}:{version_label(record.number)}"
        for node, data in graph.nodes(data=True):
            if data.get("kind") == "version" and node != me:
                report.downstream_versions.append(str(node))
            elif data.get("kind") == "run":
                report.downstream_runs.append(str(node).removeprefix("run:"))
    report.downstream_versions.sort()
    report.downstream_runs.sort()


def _prove(objects: ObjectStore, wiped: set[bytes], report: PurgeReport) -> None:
    layout = read_layout(objects)
    report.indexes_checked = len(layout.indexes)
    listed = {e.id.raw for entries in layout.packs.values() for e in entries}
    found = listed & wiped
    for pack_id in layout.orphans:  # packs no index lists: read their own blob lists
        key = pack_key(objects.domain, pack_id)
        entries = read_trailer(objects.backend.get(key), what=f"pack {key}", keys=objects.keys)
        found |= {e.id.raw for e in entries} & wiped
    report.packs_checked = len(layout.listed)
    report.absent = not found
    if found:
        raise IntegrityError(
            f"purge of {report.ref} left {len(found)} blobs on the backend; run "
            "'artifactstore purge' again"
        )




# -- what the facade offers, one function per call (design §14) --------------------------


def delete_ref(project: Project, ref: str, *, force: bool = False,
               reason: str | None = None) -> LifecycleEvent:
    """Soft-delete one version (``name:vN`` or an alias); :func:`restore_version` undoes it."""
    version = find_version(project, ref)
    project.ensure_writable(admin_for="deleting versions")
    return delete_versions(project, version.name, [version.number], force=force, reason=reason)


def delete_artifact(project: Project, name: str, *, force: bool = False,
                    reason: str | None = None) -> LifecycleEvent:
    """Soft-delete every live version of ``name``."""
    numbers = [r.number for r in project.refs.versions(name)]
    project.ensure_writable(admin_for="deleting versions")
    return delete_versions(project, name, numbers, force=force, reason=reason)


def delete_run(project: Project, run_id: str, *, with_artifacts: bool = False,
               force: bool = False, reason: str | None = None) -> list[LifecycleEvent]:
    """Soft-delete a run, and with ``with_artifacts`` the versions it produced.

    All or nothing: an alias in the way refuses before anything is deleted."""
    run = get_run(project, run_id, sync=True)
    project.ensure_writable(admin_for="deleting runs")
    produced: dict[str, list[int]] = {}
    if with_artifacts:
        gone = project.refs.lifecycle_state()
        for output in run.outputs:
            artifact, _, label = output.rpartition(":v")
            if gone.tombstone(artifact, int(label)) is None:
                produced.setdefault(artifact, []).append(int(label))
    return delete_all(project, produced, force=force, reason=reason, runs=[run.run_id])


def delete_project(project: Project, *, force: bool = False,
                   reason: str | None = None) -> list[LifecycleEvent]:
    """Soft-delete every version and run of the project.

    All or nothing: every alias in the way (protected, or any without ``force``) refuses
    before the first artifact is deleted."""
    project.ensure_writable(admin_for="deleting versions")
    live = {name: [r.number for r in project.refs.versions(name)]
            for name in project.refs.artifacts()}
    return delete_all(project, live, force=force, reason=reason,
                      runs=[r.run_id for r in find_runs(project, sync=True)])


def restore_artifact(project: Project, name: str) -> list[LifecycleEvent]:
    """Undo the deletion of every deleted (not purged) version of ``name``."""
    project.ensure_writable(admin_for="restoring versions")
    state = project.refs.lifecycle_state()
    numbers = sorted(n for n, e in state.deleted.get(name, {}).items() if e.action != "purge")
    if not numbers:
        raise NotFoundError(f"artifact {name!r} has no deleted version to restore")
    return [restore_version(project, f"{name}:v{n}") for n in numbers]


def restore_project(project: Project) -> list[LifecycleEvent]:
    """Undo the deletion of every deleted (not purged) version and run."""
    project.ensure_writable(admin_for="restoring versions")
    state = project.refs.lifecycle_state()
    events = [restore_version(project, f"{name}:v{n}")
              for name, by in sorted(state.deleted.items())
              for n, e in sorted(by.items()) if e.action != "purge"]
    if state.deleted_runs:
        events.append(project.refs.lifecycle.append(
            "restore", by=default_writer(), runs=sorted(state.deleted_runs)))
        project.forget("deleted runs")
    if not events:
        raise NotFoundError(f"project {project.name!r} has nothing deleted to restore")
    project.catalog.invalidate()
    return events


def restore_run(project: Project, run_id: str) -> LifecycleEvent:
    """Undo the deletion of a run (the versions it produced are restored separately)."""
    run = get_run(project, run_id, sync=True)
    if run.run_id not in project.refs.lifecycle_state().deleted_runs:
        raise InvalidInputError(f"run {run.run_id} is not deleted; nothing to restore")
    project.ensure_writable(admin_for="restoring runs")
    event = project.refs.lifecycle.append("restore", by=default_writer(), runs=[run.run_id])
    project.forget("deleted runs")
    project.catalog.invalidate()
    return event


def deleted_versions(project: Project) -> list[tuple[str, int, LifecycleEvent]]:
    """``(artifact, number, tombstone)`` of every deleted version, by name and number."""
    state = project.refs.lifecycle_state()
    return sorted((a, n, e) for a, by in state.deleted.items() for n, e in by.items())


def set_retention(project: Project, ttl: str | float | None,
                  artifact: str | None = None) -> LifecycleEvent:
    """Keep unaliased versions of ``artifact`` (default: of every artifact) for ``ttl``
    (``"30d"``, seconds; None removes it); gc deletes older ones."""
    seconds = None if ttl is None else parse_duration(ttl)
    project.ensure_writable(admin_for="setting a retention")
    return project.refs.lifecycle.append("retention", by=default_writer(), artifact=artifact,
                                         ttl=seconds)


def purge(project: Project, ref: str, *, reason: str, path: str | None = None,
          wait: bool = True, on_wait: WaitCallback | None = None) -> PurgeReport:
    """Takedown of ``ref`` (see :func:`purge_version`); with ``path``, a new version
    without that file is logged first and the old version is purged."""
    project.ensure_writable(admin_for="purging versions")
    if path is not None:
        drop_path(project, ref, path)
    return purge_version(project, ref, reason=reason, wait=wait, on_wait=on_wait)
