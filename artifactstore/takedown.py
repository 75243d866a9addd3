"""Carrying purges to the copies a sync makes (docs/design.md §16, §17 "Purges").

Vocabulary:

- **takedown**: wiping at a sync destination (DST) the versions the source (SRC)
  purged, with the steps and the proof of the purge itself (§16 steps 3 to 5:
  mark, purge condemnation, commit window, sweep with threshold 0, every index
  object and unindexed pack read, this machine's file cache). It is the
  destination's own store doing it, on the destination's own records: a version
  is wiped only when DST's lifecycle log (copied verbatim, signed by a member)
  says it was purged, never on the word of SRC alone.
- **pending**: a version SRC purged whose record DST holds and whose blobs DST
  may still hold (its manifest is in DST's index, or a purge condemnation is
  waiting there from a wipe that was interrupted).
- **not wiped**: a pending version the sync could not wipe: DST unreachable or
  read-only, the purge record did not reach DST (a conflict, or a failed copy),
  the project cannot be read (not a member), or the proof found a blob.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import artifactstore.api.store as store_module
from artifactstore.api.store import Store
from artifactstore.core.digest import Digest
from artifactstore.core.errors import ArtifactStoreError, ConflictError, NotFoundError
from artifactstore.maintenance.gc import version_blobs
from artifactstore.maintenance.lifecycle import (
    PurgeReport,
    forget_cached,
    forget_purged,
    wipe_blobs,
)
from artifactstore.model.entries import FileEntry
from artifactstore.model.names import version_label
from artifactstore.model.tree import iter_entries
from artifactstore.objects.gcrecords import condemnations
from artifactstore.objects.store import ObjectStore
from artifactstore.objects.window import WaitCallback
from artifactstore.records.refs import VersionRecord

__all__ = ["Takedown", "carry_purges"]


@dataclass
class Takedown:
    """Purged versions of one project (and key domain) at one destination: wiped or not."""

    project: str
    versions: list[str] = field(default_factory=list)
    wiped: bool = False
    #: why they are not wiped (None when wiped), and the exit code of that error
    error: str | None = None
    exit_code: int = 0
    blobs_wiped: int = 0
    bytes_wiped: int = 0
    packs_rewritten: int = 0
    #: the proof, as for a purge: index objects and packs read, no wiped blob found
    indexes_checked: int = 0
    packs_checked: int = 0
    absent: bool = False
    cache_entries_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project, "versions": list(self.versions), "wiped": self.wiped,
            "error": self.error, "exit_code": self.exit_code, "blobs_wiped": self.blobs_wiped,
            "bytes_wiped": self.bytes_wiped, "packs_rewritten": self.packs_rewritten,
            "indexes_checked": self.indexes_checked, "packs_checked": self.packs_checked,
            "absent": self.absent, "cache_entries_removed": self.cache_entries_removed,
        }  # fmt: skip


def carry_purges(
    src_url: str, dst_url: str, projects: list[str], *,
    cache_dir: str | os.PathLike[str] | None = None,
    src_options: Mapping[str, Any] | None = None,
    dst_options: Mapping[str, Any] | None = None,
    wait: bool = True,
    on_wait: WaitCallback | None = None,
) -> list[Takedown]:
    """Wipe at ``dst_url`` the versions of ``projects`` that ``src_url`` purged.

    Only what needs doing is reported: a version already wiped at DST (or never
    copied there) is not listed. Errors are caught per project and reported as
    not wiped, so one project's failure still lets the others be wiped. ``wait`` and
    ``on_wait`` are those of :func:`artifactstore.maintenance.lifecycle.wipe_blobs`.
    """
    found: list[Takedown] = []
    for project in projects:
        try:
            purged = _purged_at_source(src_url, project, cache_dir, src_options or {})
        except ArtifactStoreError as exc:
            # Why: a takedown that cannot be checked must not pass for one that is done.
            found.append(Takedown(project, ["*"], error=f"the source's purges cannot be "
                                  f"read: {exc}", exit_code=exc.exit_code))
            continue
        if purged:
            found.extend(_wipe_project(dst_url, project, purged, cache_dir,
                                       dst_options or {}, wait, on_wait))
    return found


def _purged_at_source(src_url: str, project: str, cache_dir: str | os.PathLike[str] | None,
                      options: Mapping[str, Any]) -> list[tuple[str, int]]:
    with store_module.open(src_url, project, create=False, file_cache=False,
                           cache_dir=cache_dir, **options) as src:
        state = src.refs.lifecycle_state()
        return sorted((artifact, number) for artifact, numbers in state.deleted.items()
                      for number, event in numbers.items() if event.action == "purge")


def _wipe_project(dst_url: str, project: str, purged: list[tuple[str, int]],
                  cache_dir: str | os.PathLike[str] | None, options: Mapping[str, Any],
                  wait: bool, on_wait: WaitCallback | None) -> list[Takedown]:
    labels = [f"{a}:{version_label(n)}" for a, n in purged]
    try:
        dst = store_module.open(dst_url, project, create=False, cache_dir=cache_dir, **options)
    except ArtifactStoreError as exc:
        return [Takedown(project, labels, error=f"the destination cannot be opened: {exc}",
                         exit_code=exc.exit_code)]
    with dst:
        try:
            return list(_wipe_in(dst, project, purged, wait, on_wait))
        except ArtifactStoreError as exc:
            return [Takedown(project, labels, error=str(exc), exit_code=exc.exit_code)]


def _wipe_in(dst: Store, project: str, purged: list[tuple[str, int]],
             wait: bool, on_wait: WaitCallback | None) -> Iterator[Takedown]:
    state = dst.refs.lifecycle_state()
    # key domain -> (its object store, pending records)
    batches: dict[str, tuple[ObjectStore, list[VersionRecord]]] = {}
    interrupted: dict[str, bool] = {}  # domain -> a purge condemnation is pending there
    for artifact, number in purged:
        try:
            record = dst.refs.version(artifact, number, include_deleted=True)
        except NotFoundError:
            continue  # never copied here: nothing of it to wipe
        objects = dst.objects_for(record)
        held = objects.index.lookup(record.manifest) is not None
        tombstone = state.tombstone(artifact, number)
        if tombstone is None or tombstone.action != "purge":
            if held:
                yield Takedown(project, [record.ref], error=(
                    "the purge record has not reached the destination (see the conflicts "
                    "or errors above); sync again once they are resolved"),
                    exit_code=ConflictError.exit_code)
            continue
        if objects.domain not in interrupted:
            interrupted[objects.domain] = any(
                r.purge for r in condemnations(objects.backend, objects.domain))
        if held or interrupted[objects.domain]:
            batches.setdefault(objects.domain, (objects, []))[1].append(record)
    for objects, records in batches.values():
        yield _wipe(dst, project, objects, records, wait, on_wait)


def _wipe(dst: Store, project: str, objects: ObjectStore, records: list[VersionRecord],
          wait: bool, on_wait: WaitCallback | None) -> Takedown:
    result = Takedown(project, [r.ref for r in records])
    mine: set[bytes] = set()
    files: list[FileEntry] = []
    for record in records:
        mine |= _what_is_left(record, objects, files)
    proof = PurgeReport(ref=", ".join(result.versions), reason="")
    try:
        live = wipe_blobs(dst, objects, mine, proof, wait=wait, on_wait=on_wait)
    except ArtifactStoreError as exc:
        result.error, result.exit_code = str(exc), exc.exit_code
        return result
    result.wiped = result.absent = proof.absent
    for name in ("blobs_wiped", "bytes_wiped", "packs_rewritten", "indexes_checked",
                 "packs_checked"):
        setattr(result, name, getattr(proof, name))
    dropped: list[Digest] = [e.digest for e in files
                             if not {c.id.raw for c in e.chunks} <= live]
    result.cache_entries_removed = forget_cached(dst, dropped) + forget_purged(dst)
    return result


def _what_is_left(record: VersionRecord, objects: ObjectStore,
                  files: list[FileEntry]) -> set[bytes]:
    """The blob ids of ``record`` DST can still name (a wipe interrupted after it removed
    a tree node leaves its children to the purge condemnation that listed them)."""
    blobs: set[bytes] = set()
    try:
        blobs.update(version_blobs(record, objects))
        files.extend(e for e in iter_entries(record.digest, objects.read_blob)
                     if isinstance(e, FileEntry))
    except NotFoundError:
        blobs.add(record.manifest.raw)
    return blobs
