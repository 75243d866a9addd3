"""Whole-store verification: every version's structure, and optionally the data.

Implements docs/design.md, "Verify and repair". Vocabulary:

- the **structure check** (always): every index object reads, every pack an
  index lists exists, and every version of the project resolves: its manifest,
  tree nodes and chunk lists read and verify, and each chunk of each file is
  listed in a pack that exists. No other pack data is read.
- **read data**: also re-hash whole packs, every one or a :class:`Subset`.
- an **affected** file is a (version, path) a reader can no longer get, with
  the broken object that causes it; ``path`` is None when the version's file
  list itself cannot be read. Found while walking the versions, so a clean
  store costs no extra pass.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from artifactstore.backends.temps import stale_temps
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import (
    AccessDeniedError,
    ArtifactStoreError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.maintenance.losses import MissingRecord, missing_records
from artifactstore.model.contentid import content_digest
from artifactstore.model.manifest import Manifest
from artifactstore.model.names import validate_project_name
from artifactstore.model.tree import Entry, FileEntry, iter_entries
from artifactstore.objects.check import Damage, DamageSummary, DomainReport, check_domain
from artifactstore.objects.envelope import Kind
from artifactstore.objects.scan import DomainScan, scan_domain
from artifactstore.objects.store import ObjectStore, Progress
from artifactstore.records.projectcheck import check_project
from artifactstore.records.refs import VersionRecord
from artifactstore.repository.discovery import discover
from artifactstore.repository.domains import Domains, open_domains
from artifactstore.repository.project import Project

__all__ = ["ALL_PACKS", "Affected", "StoreReport", "Subset", "verify_objects", "verify_store"]

_SUBSET_SALT = b"artifactstore verify subset v1"
_CACHE_BYTES = 64 << 20  # tree nodes kept while walking: versions share most of them


@dataclass(frozen=True, slots=True)
class Subset:
    """Which packs to re-hash: a ``fraction`` chosen by a hash seeded with ``seed``
    (the same packs for the same seed and store), or ``group`` n of m: the packs
    whose id's first 8 bytes are n-1 modulo m, so n = 1..m cover every pack once."""

    fraction: float = 1.0
    group: tuple[int, int] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.group is not None:
            n, m = self.group
            if not 1 <= n <= m:
                raise InvalidInputError(f"subset {n}/{m}: n/m needs 1 <= n <= m")
        elif not 0 < self.fraction <= 1:
            raise InvalidInputError(f"subset {self.fraction!r}: the share must be in (0, 1]")
        if not -(1 << 63) <= self.seed < 1 << 63:
            raise InvalidInputError("the subset seed must fit in 64 bits")

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Subset:
        """``10%``, ``0.1`` or ``1/5``; InvalidInputError (one line) for anything else."""
        value = text.strip()
        try:
            if "/" in value:
                n, m = (int(part) for part in value.split("/"))
                if 1 <= n <= m:
                    return cls(group=(n, m), seed=seed)
            else:
                share = float(value[:-1]) / 100 if value.endswith("%") else float(value)
                if 0 < share <= 1:
                    return cls(fraction=share, seed=seed)
        except ValueError:
            pass
        raise InvalidInputError(
            f"read-data subset {text!r} is not valid: give a percentage in (0, 100] such as "
            "10%, a fraction in (0, 1] such as 0.1, or n/m with 1 <= n <= m such as 1/5"
        )

    def choose(self, packs: Iterable[Digest]) -> list[Digest]:
        """The chosen packs, in id order."""
        ordered = sorted(packs)
        if self.group is not None:
            n, m = self.group
            return [p for p in ordered if int.from_bytes(p.raw[:8], "little") % m == n - 1]
        if self.fraction >= 1:
            return ordered
        salt = _SUBSET_SALT + self.seed.to_bytes(8, "little", signed=True)
        ranked = sorted(ordered, key=lambda p: hash_bytes(salt + p.raw).raw)
        return sorted(ranked[: math.ceil(self.fraction * len(ordered))])

    def describe(self) -> str:
        if self.group is not None:
            return f"pack group {self.group[0]} of {self.group[1]}"
        if self.fraction >= 1:
            return "all packs"
        return f"{self.fraction:.4g} of packs (seed {self.seed})"


ALL_PACKS = Subset()


@dataclass(frozen=True, slots=True)
class Affected:
    """A file of a version (``path`` None: its whole file list) lost to ``object``."""

    ref: str
    path: str | None
    object: str


@dataclass
class StoreReport(DamageSummary):
    """What :func:`verify_store` found."""

    project: str | None = None
    domains: dict[str, DomainReport] = field(default_factory=dict)
    #: encrypted domains of other projects (or epochs this identity lacks): not read
    skipped_domains: list[str] = field(default_factory=list)
    read_data: Subset | None = None
    versions: int = 0
    files: int = 0
    #: versions under a key epoch this identity does not hold: not walked
    skipped_versions: list[str] = field(default_factory=list)
    #: damage found while walking versions (missing blobs, damaged structure blobs)
    found: list[Damage] = field(default_factory=list)
    affected: list[Affected] = field(default_factory=list)
    #: temp files of interrupted writes older than the commit window (gc removes
    #: them): counted, not damage
    stale_temps: int = 0
    #: records the project's other records show are missing (losses.py)
    missing: list[MissingRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damage and not self.missing

    @property  # derived here, a field in DomainReport
    def damage(self) -> list[Damage]:  # type: ignore[override]
        return [d for r in self.domains.values() for d in r.damage] + self.found

    def total(self, attribute: str) -> int:
        return sum(int(getattr(r, attribute)) for r in self.domains.values())

    def damage_lines(self, limit: int = 20) -> list[str]:
        """One line per broken object with the versions and files it affects."""
        uses: dict[str, dict[str, list[str]]] = {}
        for a in self.affected:
            uses.setdefault(a.object, {}).setdefault(a.ref, []).append(a.path or "file list")
        lines = []
        damage = self.damage
        for d in damage[:limit]:
            refs = uses.get(d.object)
            if refs:
                lines.append(f"{d}: affects " + ", ".join(
                    f"{ref} ({', '.join(paths[:3])}{', …' if len(paths) > 3 else ''})"
                    for ref, paths in refs.items()))
            elif self.project is not None and d.kind not in ("project", "project record"):
                lines.append(f"{d}: no version of project {self.project!r} uses it")
            else:
                lines.append(str(d))
        if len(damage) > limit:
            lines.append(f"… and {len(damage) - limit} more damaged objects (--json lists all)")
        lines += [str(m) for m in self.missing[:limit]]
        if len(self.missing) > limit:
            lines.append(f"… and {len(self.missing) - limit} more missing records "
                         "(--json lists all)")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "project": self.project,
            "read_data": None if self.read_data is None else self.read_data.describe(),
            "packs": self.total("packs_checked"), "blobs": self.total("blobs_checked"),
            "bytes": self.total("bytes_checked"), "packs_total": self.total("packs"),
            "index_objects": self.total("index_objects"), "versions": self.versions,
            "files": self.files, "domains": sorted(self.domains),
            "skipped_domains": self.skipped_domains, "skipped_versions": self.skipped_versions,
            "unindexed_packs": [p for r in self.domains.values() for p in r.unindexed_packs],
            "damaged": [d.as_dict() for d in self.damage],
            "affected": [{"ref": a.ref, "path": a.path, "object": a.object}
                         for a in self.affected],
            "stale_temps": self.stale_temps,
            "missing": [m.as_dict() for m in self.missing],
        }


def verify_store(url: str | None = None, project: str | None = None,
                 progress: Callable[[int], None] | None = None, *,
                 read_data: Subset | bool = True,
                 cache_dir: str | os.PathLike[str] | None = None,
                 **backend_options: Any) -> StoreReport:
    """Check the plain domain, ``project``'s key domains and every version of it.

    ``read_data`` re-hashes every pack (True), a :class:`Subset`, or none
    (False: the structure check alone). ``progress`` gets bytes re-hashed.
    Damage is reported, not raised.
    """
    subset = ALL_PACKS if read_data is True else read_data or None
    with open_domains(url, project, cache_dir=cache_dir, **backend_options) as found:
        report = StoreReport(None if found.project is None else found.project.name,
                             skipped_domains=found.skipped, read_data=subset)
        scans: dict[str, DomainScan] = {}
        for domain, keys in found.keys.items():
            scan = scans[domain] = scan_domain(found.backend, domain, keys)
            read = () if subset is None else subset.choose(
                p for p in scan.entries if p in scan.packs)
            report.domains[domain] = check_domain(scan, read, progress)
        if found.project is not None:
            report.missing = missing_records(found.backend, found.project.refs,
                                             found.project.catalog)
            _Walk(scans, report).project(found.project)
        report.stale_temps = len(stale_temps(found.backend, found.config.commit_window))
        report.found += _project_damage(found, project, url)
    return report


def _project_damage(found: Domains, project: str | None, url: str | None) -> list[Damage]:
    """The project's records that are forged, planted, contradictory or missing
    (model/projectcheck.py), and why the project could not be opened as trusted."""
    name = found.project.name if found.project is not None else validate_project_name(
        project or discover(url).project or "default")
    damage = [Damage("project record", f.key, f"{f.problem}; {f.affects}")
              for f in check_project(found.backend, name)]
    if found.refused is not None:
        damage.append(Damage("project", name,
                             f"cannot be opened as trusted: {found.refused}"))
    return damage


class _Walk:
    """Walks every version, naming the broken object behind each unreadable blob."""

    def __init__(self, scans: dict[str, DomainScan], report: StoreReport) -> None:
        self._scans = scans
        self._report = report
        self._bad: dict[tuple[str, bytes], Damage] = {
            (d.domain, raw): d for d in report.damage for raw in d.blobs
        }
        self._found: dict[str, Damage] = {}
        self._seen: set[Affected] = set()
        self._cache: dict[tuple[str, bytes], bytes] = {}
        self._cached = 0

    def project(self, project: Project) -> None:
        try:
            names = list(project.refs.artifacts())
        except AccessDeniedError as exc:  # e.g. a key epoch's info is missing: named below
            names = []
            self._note(Damage("project", project.name, "has records this identity cannot "
                              "open", str(exc)))
        for name in names:
            try:
                records = project.refs.versions(name)
            except NotFoundError:
                continue  # deleted since the listing
            except ArtifactStoreError as exc:
                self._note(Damage("version", f"{name}:*", "has a record that cannot be read",
                                  str(exc)))
                continue
            for record in records:
                try:
                    domain = project.objects_for(record).domain
                except AccessDeniedError:
                    self._report.skipped_versions.append(record.ref)
                    continue
                self._version(record, self._scans[domain])
        self._report.found = list(self._found.values())

    def _version(self, record: VersionRecord, scan: DomainScan) -> None:
        self._report.versions += 1
        failed: list[Digest] = []

        def read(blob_id: Digest) -> bytes:
            try:
                return self._read(scan, blob_id)
            except ArtifactStoreError:
                failed.append(blob_id)
                raise

        try:
            Manifest.check(read(record.manifest), record.digest,
                           what=f"manifest {record.manifest.hex} of {record.ref}")
            listed: list[Entry] = []
            for entry in iter_entries(record.digest, read):
                self._report.files += 1
                listed.append(entry)
                if isinstance(entry, FileEntry):
                    for chunk in entry.chunks:
                        damage = self._culprit(scan, chunk.id, None)
                        location = scan.index.lookup(chunk.id)
                        if damage is None and location is not None \
                                and location.kind is Kind.CHUNK_DELTA:
                            for base in scan.index.bases(chunk.id, location):
                                # a delta reads only with its bases (design §4)
                                damage = damage or self._culprit(scan, base, None)
                        if damage is not None:
                            self._affect(record.ref, entry.path, damage)
            # Why: the content digest is what users compare across stores; a writer
            # could record one that its files do not have (design §11.1).
            if record.content is not None and content_digest(listed) != record.content:
                self._affect(record.ref, None, self._note(Damage(
                    "version", record.ref, "names a content digest its files do not have",
                    f"recorded {record.content.hex}, files give {content_digest(listed).hex}",
                    scan.domain)))
        except ArtifactStoreError as exc:
            culprit = self._culprit(scan, failed[-1], exc) if failed else None
            if culprit is None:
                culprit = self._note(Damage("version", record.ref,
                                            "has a manifest or tree that does not check",
                                            str(exc), scan.domain))
            self._affect(record.ref, None, culprit)

    def _read(self, scan: DomainScan, blob_id: Digest) -> bytes:
        key = (scan.domain, blob_id.raw)
        data = self._cache.get(key)
        if data is None:
            data = scan.read_blob(blob_id)
            if self._cached > _CACHE_BYTES:
                self._cache.clear()
                self._cached = 0
            self._cache[key] = data
            self._cached += len(data)
        return data

    def _culprit(self, scan: DomainScan, blob_id: Digest,
                 exc: ArtifactStoreError | None) -> Damage | None:
        """The damage that makes ``blob_id`` unreadable (``exc``: reading it failed)."""
        known = self._bad.get((scan.domain, blob_id.raw))
        if known is not None:
            return known
        location = scan.index.lookup(blob_id)
        if location is None:
            damage = Damage("blob", blob_id.hex, "is in no readable index object (if index "
                            "objects were lost, run 'artifactstore repair index')",
                            domain=scan.domain, blobs=frozenset({blob_id.raw}))
        elif exc is None:
            return None
        else:  # structure blobs are verified as they are read, also without --read-data
            problem = ("is damaged (a blob in it fails its check)"
                       if isinstance(exc, IntegrityError) else "cannot be read")
            damage = Damage("pack", scan.pack_key(location.pack), problem, str(exc),
                            scan.domain, frozenset({blob_id.raw}))
        damage = self._note(damage)
        self._bad[(scan.domain, blob_id.raw)] = damage
        return damage

    def _note(self, damage: Damage) -> Damage:
        """Record damage found while walking; a second blob of one pack joins the first."""
        earlier = self._found.get(damage.object)
        if earlier is not None:
            damage = replace(earlier, blobs=earlier.blobs | damage.blobs)
        self._found[damage.object] = damage
        return damage

    def _affect(self, ref: str, path: str | None, damage: Damage) -> None:
        affected = Affected(ref, path, damage.object)
        if affected not in self._seen:
            self._seen.add(affected)
            self._report.affected.append(affected)


def verify_objects(store: ObjectStore, progress: Progress | None = None) -> DomainReport:
    """Read every indexed pack of ``store``'s domain; check it and each blob in it.

    Damage is collected rather than raised so one report names every bad pack.
    Packs no index lists (left by an interrupted write) are reported, not errors.
    Whole stores, with the versions damage affects: :func:`verify_store`.
    """
    scan = scan_domain(store.backend, store.domain, store.keys)
    return check_domain(scan, list(scan.entries), progress)
