"""Purging a run: the takedown of its media, then its deletion (docs/design.md §12.7, §16).

A run's media files are versions of its artifact ``media-<run id>``. Purging the run
tombstones every version of that artifact, wipes every blob no live version needs
with one commit-window wait per key domain (not one per version), proves them gone as
a purge does (:func:`artifactstore.maintenance.lifecycle.wipe_blobs`), records one
purge event for the versions (sync carries it to copies) and deletes the run. The
run's other outputs (models, datasets) are not touched: purge them by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.maintenance.gc import version_blobs
from artifactstore.maintenance.lifecycle import PurgeReport, delete_all, wipe_blobs
from artifactstore.model.entries import FileEntry
from artifactstore.model.names import version_label
from artifactstore.model.tree import iter_entries
from artifactstore.objects.store import ObjectStore
from artifactstore.objects.window import WaitCallback
from artifactstore.records.refs import VersionRecord
from artifactstore.records.versions import default_writer
from artifactstore.repository.cachedfiles import forget_cached, forget_purged
from artifactstore.repository.project import Project
from artifactstore.runs.mediastage import media_artifact
from artifactstore.runs.queries import get_run

__all__ = ["RunPurgeReport", "purge_run"]


@dataclass
class RunPurgeReport:
    """What purging a run wiped, and the proof that it is gone."""

    run_id: str
    reason: str
    #: the media versions purged, ``media-<run id>:vN``
    versions: list[str] = field(default_factory=list)
    blobs_wiped: int = 0
    bytes_wiped: int = 0
    packs_rewritten: int = 0
    cache_entries_removed: int = 0
    indexes_checked: int = 0
    packs_checked: int = 0
    #: no index object or pack of the domains lists a wiped blob
    absent: bool = True
    run_deleted: bool = False

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def purge_run(project: Project, run_id: str, *, reason: str, wait: bool = True,
              on_wait: WaitCallback | None = None) -> RunPurgeReport:
    """Purge every version of the run's media artifact and delete the run."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("a purge needs a reason (--reason \"...\"): it is recorded")
    run = get_run(project, run_id, sync=True)
    project.ensure_writable(admin_for="purging runs")
    report = RunPurgeReport(run.run_id, reason)
    name = media_artifact(run.run_id)
    try:
        records = project.refs.versions(name, include_deleted=True)
    except NotFoundError:
        records = []
    state = project.refs.lifecycle_state()
    todo = [r for r in records
            if (t := state.tombstone(name, r.number)) is None or t.action != "purge"]
    live = [r.number for r in todo if state.tombstone(name, r.number) is None]
    if live:
        delete_all(project, {name: live}, force=True, reason=f"purge of run: {reason}")
    by_domain: dict[str, tuple[ObjectStore, set[bytes], list[FileEntry]]] = {}
    for record in todo:
        objects = project.objects_for(record)
        _, blobs, files = by_domain.setdefault(objects.domain, (objects, set(), []))
        _collect(record, objects, blobs, files)
    wiped_files: list[FileEntry] = []
    for objects, blobs, files in by_domain.values():
        part = PurgeReport(ref=f"run:{run.run_id}", reason=reason)
        kept = wipe_blobs(project, objects, blobs, part, wait=wait, on_wait=on_wait)
        report.blobs_wiped += part.blobs_wiped
        report.bytes_wiped += part.bytes_wiped
        report.packs_rewritten += part.packs_rewritten
        report.indexes_checked += part.indexes_checked
        report.packs_checked += part.packs_checked
        report.absent = report.absent and part.absent
        wiped_files += [e for e in files if not {c.id.raw for c in e.chunks} <= kept]
    report.cache_entries_removed = forget_cached(project, sorted({e.digest for e in wiped_files},
                                                                 key=lambda d: d.raw))
    if todo:
        project.refs.lifecycle.append(
            "purge", by=default_writer(), artifact=name, numbers=[r.number for r in todo],
            reason=f"purge of run {run.run_id}: {reason} (wiped {report.blobs_wiped} blobs, "
                   f"{report.bytes_wiped} bytes)")
    report.versions = [f"{name}:{version_label(r.number)}" for r in todo]
    report.cache_entries_removed += forget_purged(project)
    if run.run_id not in project.refs.lifecycle_state().deleted_runs:
        delete_all(project, {}, force=True, reason=f"purge: {reason}", runs=[run.run_id])
    report.run_deleted = True
    project.forget("deleted runs")
    project.catalog.invalidate()
    return report


def _collect(record: VersionRecord, objects: ObjectStore, blobs: set[bytes],
             files: list[FileEntry]) -> None:
    """The blobs and files of ``record`` that can still be named (a deleted version gc
    reclaimed in part gives what is left: the rest was freed by that gc)."""
    try:
        blobs.update(version_blobs(record, objects))
        files.extend(_files(iter_entries(record.digest, objects.read_blob)))
    except NotFoundError:
        return


def _files(entries: Iterable[object]) -> list[FileEntry]:
    return [e for e in entries if isinstance(e, FileEntry)]
