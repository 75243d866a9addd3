"""Rebuilding index objects from pack trailers (docs/design.md, "Verify and repair").

Vocabulary: a pack is *fully listed* when readable index objects list every
blob its trailer does; otherwise its trailer is read (a range read of the
pack's tail, never the whole pack), checked against the pack id, and the pack
is listed again in new index objects. Packs whose trailer does not check are
named and left out: an index never lists what cannot be read back. Unreadable
index objects are removed, only after their replacements are written, and
only if they are still unreadable when read again. A rebuild holds the gc lock,
so no sweep deletes a pack between its trailer being read and its listing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from artifactstore.backends.base import Backend
from artifactstore.core.digest import Digest
from artifactstore.core.errors import IntegrityError, NotFoundError
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.gcrecords import GcLock
from artifactstore.objects.index import decode_index, encode_indexes
from artifactstore.objects.layout import index_key
from artifactstore.objects.packs import TAIL_SIZE, BlobEntry, read_tail, trailer_length
from artifactstore.objects.scan import DomainScan, scan_domain
from artifactstore.objects.store import ObjectStore
from artifactstore.repository.domains import open_domains

__all__ = ["RepairReport", "StoreRepairReport", "rebuild_index", "repair_index"]

#: first read of a pack's tail: a 16 MiB pack of 64 KiB chunks has a ~13 KiB trailer
_TAIL_READ = 32 << 10


@dataclass
class RepairReport:
    """What rebuilding one domain's index did."""

    domain: str
    packs: int = 0  # on the backend
    trailers_read: int = 0
    #: packs the new index objects list
    packs_indexed: list[str] = field(default_factory=list)
    blobs_indexed: int = 0
    index_objects_written: list[str] = field(default_factory=list)
    #: packs whose trailer does not check ("key: why"): not indexed, restore them
    damaged_packs: list[str] = field(default_factory=list)
    #: unreadable index objects, removed after their replacements were written
    removed_index_objects: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.index_objects_written or self.removed_index_objects)


def rebuild_index(objects: ObjectStore,
                  progress: Callable[[int], None] | None = None) -> RepairReport:
    """List again every pack of ``objects``' domain that no readable index object
    fully lists; idempotent: a second run writes nothing. ``progress`` gets the
    bytes of trailers read."""
    lock = GcLock(objects.backend)
    lock.acquire()
    try:
        return _rebuild(objects, progress)
    finally:
        lock.release()


def _rebuild(objects: ObjectStore, progress: Callable[[int], None] | None) -> RepairReport:
    backend, domain, keys = objects.backend, objects.domain, objects.keys
    scan = scan_domain(backend, domain, keys)
    report = RepairReport(domain, packs=len(scan.packs))
    found: list[tuple[Digest, tuple[BlobEntry, ...]]] = []
    for pack_id, key in sorted(scan.packs.items()):
        if scan.fully_listed(pack_id):
            continue
        try:
            entries, size = _read_trailer(backend, key, pack_id, keys)
        except NotFoundError:
            continue  # deleted since the listing
        except IntegrityError as exc:
            report.damaged_packs.append(f"{key}: {exc}")
            continue
        report.trailers_read += 1
        if progress is not None:
            progress(size)
        if not _listed(scan, pack_id, entries):
            found.append((pack_id, entries))
            report.packs_indexed.append(key)
            report.blobs_indexed += len(entries)
    # Packs before index (design §7): every pack listed here exists and checked.
    for index_id, data in encode_indexes(found, objects.config.compression, keys):
        backend.put(index_key(domain, index_id), data)
        report.index_objects_written.append(index_key(domain, index_id))
    for key in sorted(scan.damaged_indexes):
        if _still_unreadable(backend, key, keys):
            backend.delete(key)
            report.removed_index_objects.append(key)
    return report


def _read_trailer(backend: Backend, key: str, pack_id: Digest,
                  keys: DomainKeys | None) -> tuple[tuple[BlobEntry, ...], int]:
    """A pack's checked blob list from range reads of its tail, and the bytes read."""
    size = backend.stat(key).size
    what = f"pack {key}"
    tail = _range(backend, key, size, min(size, _TAIL_READ), what)
    wanted = trailer_length(tail, size, what=what) + TAIL_SIZE
    if wanted > len(tail):  # a big trailer: read exactly it
        tail = _range(backend, key, size, wanted, what)
    return read_tail(tail, pack_id, size, what=what, keys=keys), len(tail)


def _range(backend: Backend, key: str, size: int, length: int, what: str) -> bytes:
    data = backend.get_range(key, size - length, length)
    if len(data) != length:
        raise IntegrityError(f"{what} is shorter than its listed size {size}")
    return data


def _listed(scan: DomainScan, pack_id: Digest, entries: tuple[BlobEntry, ...]) -> bool:
    listed = scan.entries.get(pack_id, {})
    return all(listed.get(e.id.raw) == e for e in entries)


def _still_unreadable(backend: Backend, key: str, keys: DomainKeys | None) -> bool:
    # Read once more before deleting: a flaky read must not cost an index object.
    index_id = Digest.from_hex(key.rsplit("/", 1)[-1])
    try:
        decode_index(index_id, backend.get(key), keys)
    except NotFoundError:
        return False
    except IntegrityError:
        return True
    return False


@dataclass
class StoreRepairReport:
    """:func:`rebuild_index` over every key domain this user can open."""

    domains: dict[str, RepairReport] = field(default_factory=dict)
    #: encrypted domains of other projects (or epochs this identity lacks): not read
    skipped_domains: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        reports = self.domains.values()
        return {
            "domains": sorted(self.domains), "skipped_domains": self.skipped_domains,
            "packs": sum(r.packs for r in reports),
            "trailers_read": sum(r.trailers_read for r in reports),
            "packs_indexed": [k for r in reports for k in r.packs_indexed],
            "blobs_indexed": sum(r.blobs_indexed for r in reports),
            "index_objects_written": [k for r in reports for k in r.index_objects_written],
            "removed_index_objects": [k for r in reports for k in r.removed_index_objects],
            "damaged_packs": [k for r in reports for k in r.damaged_packs],
        }


def repair_index(url: str | None = None, project: str | None = None,
                 progress: Callable[[int], None] | None = None, *,
                 cache_dir: str | os.PathLike[str] | None = None,
                 **backend_options: Any) -> StoreRepairReport:
    """Rebuild the index of the plain domain and, when ``project`` is private and
    this identity a member, of its key domains."""
    report = StoreRepairReport()
    with open_domains(url, project, cache_dir=cache_dir, **backend_options) as found:
        report.skipped_domains = found.skipped
        for domain, keys in found.keys.items():
            objects = ObjectStore(found.backend, found.config, domain=domain, keys=keys,
                                  cache_dir=cache_dir, concurrency=1)
            try:
                report.domains[domain] = rebuild_index(objects, progress)
            finally:
                objects.close()
    return report
