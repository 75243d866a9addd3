"""Re-encrypting a private project under its newest key epoch (docs/design.md §13.4).

Vocabulary: after ``project rekey`` starts a new epoch, **re-encryption** moves
everything written under older epochs into the new one, so that old epoch keys
(held by removed members) open nothing left in the bucket:

- every version whose blobs are in an old epoch's domain is copied file by file
  (chunks decrypted, stored under the new epoch with new keyed ids, same cut
  points), its trees rebuilt, and its record overwritten in place, signed by the
  rekeying member (the record keeps who signed the original);
- every other ref encrypted under an old epoch is re-sealed in place with its
  signed payload unchanged, so its signature still verifies;
- record bundles (§12.9) hold copies of records as first sealed: they are deleted,
  and written anew from the re-sealed records once the rest is done;
- then gc empties the old epochs' domains (nothing live names them any more).

It runs under the gc lock. A writer that still held an old epoch while it ran
may leave records behind; the report counts them (run rekey again).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from artifactstore.core import encoding
from artifactstore.core.errors import AccessDeniedError, IntegrityError
from artifactstore.maintenance.gc import collect_garbage
from artifactstore.model.entries import Entry, FileEntry
from artifactstore.model.tree import build_tree, iter_entries
from artifactstore.objects.envelope import Kind
from artifactstore.objects.gcrecords import GcLock
from artifactstore.objects.layout import pack_prefix
from artifactstore.objects.store import Progress
from artifactstore.objects.window import WaitCallback
from artifactstore.records.bundles import bundles_prefix, write_bundles
from artifactstore.records.codec import reseal, sealing_key_id
from artifactstore.records.versions import VersionRecord
from artifactstore.repository.project import Project

__all__ = ["ReencryptReport", "reencrypt_project"]

@dataclass
class ReencryptReport:
    versions_rewritten: int = 0
    records_resealed: int = 0
    bytes_copied: int = 0
    #: old epochs' domains, and whether gc emptied them
    old_domains: dict[str, bool] = field(default_factory=dict)
    #: refs still encrypted under an old epoch afterwards (a concurrent writer)
    left_behind: list[str] = field(default_factory=list)
    #: record bundles deleted (they held records as first sealed), records bundled anew
    bundles_deleted: int = 0
    records_bundled: int = 0


def reencrypt_project(project: Project, progress: Progress | None = None, *,
                      on_wait: WaitCallback | None = None) -> ReencryptReport:
    """Move ``project`` entirely under its current epoch; see the module.

    The final gc waits out the commit window; ``on_wait`` is told the seconds left."""
    ring = project.refs.codec.ring
    if ring is None:
        raise AccessDeniedError(f"project {project.name!r} is not encrypted: nothing to "
                                "re-encrypt")
    current = ring.current
    old = {k.domain for k in ring.epochs.values() if k.key_id != current.key_id}
    report = ReencryptReport(old_domains=dict.fromkeys(sorted(old), False))
    lock = GcLock(project.objects.backend)
    lock.acquire()
    try:
        purged = project.refs.lifecycle_state()
        for artifact in project.refs.artifacts(include_deleted=True):
            for number in project.refs.version_numbers(artifact):
                record = project.refs.version(artifact, number, include_deleted=True)
                tomb = purged.tombstone(artifact, number)
                if record.signature.key_id == current.key_id or (
                        tomb is not None and tomb.action == "purge"):
                    continue  # a purged version's blobs are gone: its record is re-sealed
                _rewrite_version(project, record, report, progress)
        prefix = f"projects/{project.name}/"
        backend = project.objects.backend
        for key in list(backend.list(prefix)):
            sealed = reseal(project.refs.codec, key, backend.get(key))
            if sealed is not None:
                backend.put(key, sealed)
                report.records_resealed += 1
        for name in list(backend.list(bundles_prefix(project.name))):
            backend.delete(name)  # copies under the old epochs (readers skip a gone one)
            report.bundles_deleted += 1
    finally:
        lock.release()
    # nothing live names the old domains any more
    collect_garbage(project, grace=0, domains=old, on_wait=on_wait)
    project.catalog.invalidate()
    backend = project.objects.backend
    for domain in old:
        report.old_domains[domain] = not any(True for _ in backend.list(pack_prefix(domain)))
    for key in backend.list(f"projects/{project.name}/"):
        sealed_by = sealing_key_id(backend.get(key))
        if sealed_by is not None and sealed_by != current.key_id:
            report.left_behind.append(key)
    if report.bundles_deleted:  # the project had bundles: keep its first syncs fast
        report.records_bundled = write_bundles(backend, project.name)
    project.catalog.invalidate()
    return report


def _rewrite_version(project: Project, record: VersionRecord, report: ReencryptReport,
                     progress: Progress | None) -> None:
    source = project.objects_for(record)
    target = project.objects
    entries: list[Entry] = []
    for entry in iter_entries(record.digest, source.read_blob):
        if isinstance(entry, FileEntry):
            chunks = target.write_chunks(
                (data for _, data in source.read_blobs(c.id for c in entry.chunks)), progress)
            report.bytes_copied += entry.size
            entry = FileEntry(entry.path, entry.size, entry.digest, chunks, entry.mode,
                              entry.media_type)
        entries.append(entry)
    summary = build_tree(entries, target.put_blob)
    if (summary.size, summary.files) != (record.size, record.files):
        raise IntegrityError(f"{record.ref} re-read as {summary.files} files of "
                             f"{summary.size} bytes, its record says {record.files} of "
                             f"{record.size}; nothing was changed: run 'artifactstore verify'")
    manifest = target.put_blob(Kind.MANIFEST, encoding.pack({
        "version": 1, "tree": summary.id.raw, "size": summary.size, "files": summary.files,
    }))
    target.flush()  # blobs before the record that names them
    project.refs.reencrypt_version(record, manifest, summary.id)
    report.versions_rewritten += 1
