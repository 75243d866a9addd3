"""Sync: copy what one store lacks from another, verbatim (docs/design.md, "Sync").

Vocabulary:

- **source** (SRC) and **destination** (DST): two stores; sync never writes to the
  source (it is opened read-only) and never deletes or overwrites at the
  destination, except heartbeats. While it writes there it holds DST's gc lock,
  so no gc sweeps blobs its records are about to name.
- **verbatim**: keys and bytes are copied unchanged, so signatures, encryption and
  content ids stay valid; the destination holds the same project under the same
  keys. (Moving versions into a project with other keys is re-logging:
  :mod:`artifactstore.transfer.relog`.)
- **record**: any object under ``projects/<p>/`` (project record, members, key
  epochs, version records, alias events, runs, lifecycle events, ...). All are
  create-only except a run's **heartbeat**.
- **log**: the records sharing one parent whose last segment is 10 digits (the
  versions of an artifact, the events of an alias or a run, the member events).
  A log is copied in order, one record at a time, so at the destination it is
  always a prefix of the source's log.
- **conflict**: the destination holds other bytes than the source at a record
  key the sync compares or would write: the stores diverged. Nothing is
  overwritten; the conflicting log (for a version log: the whole artifact; for a
  project record: the whole project) is left alone, everything else is copied,
  and the report lists it.

Order (design §7 at the destination): the project listings first, then per key
domain the index and pack listings; packs are copied, then index objects, then
records, tier by tier (:func:`record_tier`), so an interrupted sync leaves at
most unreferenced packs and a consistent prefix of every log, and the next sync
completes it.

Length: one algorithm (the verbatim copy: key tiers, per-project order, domain
checks, conflicts and the carried purges' report) that reads top to bottom.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from artifactstore.backends import open_backend_stack
from artifactstore.backends.base import Backend
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import (
    ArtifactStoreError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.maintenance.takedown import Takedown, carry_purges
from artifactstore.model.names import validate_project_name
from artifactstore.model.tree import FileEntry, iter_entries
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.gcrecords import GcLock
from artifactstore.objects.index import decode_index
from artifactstore.objects.layout import CONFIG_KEY, PLAIN_DOMAIN, pack_prefix, parse_id_key
from artifactstore.objects.packs import TAIL_SIZE, trailer_length
from artifactstore.objects.store import ObjectStore, Progress
from artifactstore.objects.window import WaitCallback
from artifactstore.records.projects import ProjectKeys
from artifactstore.records.versions import VersionLog, require_atomic_create

__all__ = ["Conflict", "SyncReport", "Transfer", "record_tier", "sync", "sync_backends"]

T = TypeVar("T")
R = TypeVar("R")

#: first segments (of the store, or of a project) that are bookkeeping, not format
#: (journal entries are hints with the source's times: design §12.8)
SKIPPED_SEGMENTS: Final = frozenset({"gc", "locks", "journal", "journal-head"})
#: bytes of packs in flight at most (each worker holds one whole pack)
_MEMORY_BUDGET: Final = 256 << 20
_LOG_NAME = re.compile(r"[0-9]{10}")


@dataclass
class Transfer:
    """Objects of one kind: copied (and their bytes), and found already present."""

    copied: int = 0
    bytes: int = 0
    present: int = 0

    def add(self, other: Transfer) -> None:
        self.copied += other.copied
        self.bytes += other.bytes
        self.present += other.present


@dataclass(frozen=True, slots=True)
class Conflict:
    """A destination key holding other bytes than the source: the stores diverged."""

    key: str
    reason: str
    #: records of the source left uncopied because of it
    skipped: int = 0


@dataclass
class SyncReport:
    """What one sync copied, found present, and could not copy."""

    source: str
    destination: str
    project: str | None
    config_copied: bool = False
    packs: Transfer = field(default_factory=Transfer)
    index: Transfer = field(default_factory=Transfer)
    records: Transfer = field(default_factory=Transfer)
    conflicts: list[Conflict] = field(default_factory=list)
    #: versions whose blobs the source lacks (purged, or damage): their records are
    #: copied as they are, their blobs cannot be
    incomplete: list[str] = field(default_factory=list)
    #: keys under objects/ and projects/ that are not part of the format (gc, locks)
    ignored: int = 0
    #: purges of the source carried to the destination, wiped or not (§17 "Purges")
    takedowns: list[Takedown] = field(default_factory=list)
    #: projects whose source has lifecycle events (purges to look for)
    with_lifecycle: list[str] = field(default_factory=list)
    #: the error that stopped the copy, kept so the purges can still be reported
    failure: ArtifactStoreError | None = None

    @property
    def objects_copied(self) -> int:
        return (self.packs.copied + self.index.copied + self.records.copied
                + int(self.config_copied))

    @property
    def bytes_copied(self) -> int:
        return self.packs.bytes + self.index.bytes + self.records.bytes

    @property
    def not_wiped(self) -> list[Takedown]:
        """Purged versions the destination still holds (or may hold)."""
        return [t for t in self.takedowns if not t.wiped]

    @property
    def ok(self) -> bool:
        return not self.conflicts and not self.not_wiped and self.failure is None

    @property
    def exit_code(self) -> int:
        """0, or the code of what went wrong first: the copy, a conflict, a takedown."""
        if self.failure is not None:
            return self.failure.exit_code
        if self.conflicts:
            return ConflictError.exit_code
        return next((t.exit_code or 1 for t in self.not_wiped), 0)

    def raise_for_conflicts(self) -> None:
        """``ConflictError`` (exit 10) naming the first conflict, if there is one."""
        if self.conflicts:
            first = self.conflicts[0]
            raise ConflictError(
                f"{len(self.conflicts)} conflict(s): {first.key}: {first.reason}; the stores "
                "diverged, nothing was overwritten (everything else was copied)"
            )

    def as_dict(self) -> dict[str, Any]:
        def kind(t: Transfer) -> dict[str, int]:
            return {"copied": t.copied, "bytes": t.bytes, "present": t.present}

        return {
            "source": self.source, "destination": self.destination, "project": self.project,
            "config_copied": self.config_copied, "packs": kind(self.packs),
            "index": kind(self.index), "records": kind(self.records),
            "objects_copied": self.objects_copied, "bytes_copied": self.bytes_copied,
            "conflicts": [{"key": c.key, "reason": c.reason, "skipped": c.skipped}
                          for c in self.conflicts],
            "incomplete": list(self.incomplete), "ignored": self.ignored,
            "takedowns": [t.as_dict() for t in self.takedowns],
            "error": None if self.failure is None else type(self.failure).__name__,
            "message": None if self.failure is None else str(self.failure),
            "exit_code": self.exit_code,
        }  # fmt: skip


def sync(
    src_url: str,
    dst_url: str,
    project: str | None = None,
    progress: Progress | None = None,
    *,
    concurrency: int = 8,
    cache_dir: str | os.PathLike[str] | None = None,
    src_options: Mapping[str, Any] | None = None,
    dst_options: Mapping[str, Any] | None = None,
    takedowns: bool = True,
    wait: bool = True,
    on_wait: WaitCallback | None = None,
    check: bool = True,
    **backend_options: Any,
) -> SyncReport:
    """Copy everything the store at ``dst_url`` lacks from ``src_url``, then wipe there
    what the source purged.

    Without ``project``: every key domain and project (a whole-store backup).
    With it: that project's records and blobs. ``backend_options`` go to both
    backends, ``src_options``/``dst_options`` to one (e.g. an S3 endpoint).
    Conflicts and takedowns are in the report (:attr:`SyncReport.not_wiped`,
    :attr:`SyncReport.ok`); ``takedowns=False`` copies only (a purge the source made
    then stays readable at the destination until a later sync carries it).
    A wipe waits out the destination's commit window like a purge, telling
    ``on_wait`` the seconds left (``wait=False``: tests with a quiet store only).
    An error that stops the copy is raised after the takedowns were tried; with
    ``check=False`` it is returned in :attr:`SyncReport.failure` instead (the CLI
    prints the whole report).
    """
    if project is not None:
        validate_project_name(project)
    if concurrency < 1:  # before opening: opening a local destination creates it
        raise InvalidInputError(f"concurrency must be at least 1, not {concurrency}")
    # The source is never written, not even a folder; the destination is created if empty.
    src = ReadOnlyBackend(
        open_backend_stack(src_url, **{**backend_options, **(src_options or {})}))
    try:
        dst = open_backend_stack(dst_url, create=True,
                                 **{**backend_options, **(dst_options or {})})
    except BaseException:
        src.close()
        raise
    try:
        report = sync_backends(src, dst, project=project, progress=progress,
                               concurrency=concurrency, cache_dir=cache_dir, check=False)
    finally:
        src.close()
        dst.close()
    if takedowns and report.with_lifecycle:
        # After the copy, which brought the purge records: the destination wipes on
        # its own (signed) records, never on the source's say-so.
        report.takedowns = carry_purges(
            src_url, dst_url, report.with_lifecycle, cache_dir=cache_dir, wait=wait,
            on_wait=on_wait,
            src_options={**backend_options, **(src_options or {})},
            dst_options={**backend_options, **(dst_options or {})})
    if check and report.failure is not None:
        raise report.failure
    return report


def sync_backends(
    src: Backend,
    dst: Backend,
    *,
    project: str | None = None,
    progress: Progress | None = None,
    concurrency: int = 8,
    cache_dir: str | os.PathLike[str] | None = None,
    check: bool = True,
) -> SyncReport:
    """:func:`sync` between two open backends (the caller closes them), the copy only:
    purges are carried by :func:`sync`, which can open both stores."""
    if src.url == dst.url:
        raise InvalidInputError(f"source and destination are the same store ({src.url})")
    if concurrency < 1:
        raise InvalidInputError(f"concurrency must be at least 1, not {concurrency}")
    # Why: records are claimed with put-if-absent; without an atomic create a
    # concurrent writer at the destination could be silently overwritten.
    require_atomic_create(dst)
    with _Syncer(src, dst, project, progress, concurrency, cache_dir) as syncer:
        report = syncer.run()
    if check and report.failure is not None:
        raise report.failure
    return report


# -- keys ----------------------------------------------------------------------------


VERSIONS_TIER: Final = 6
HEARTBEAT_TIER: Final = 10


def record_tier(rest: str) -> int:
    """The copy tier of a record, by its key below ``projects/<p>/``.

    A record is copied only after every tier before its own is complete, so
    what it refers to is already there: the project, its members and keys
    (signatures and slots are checked against them), run starts (versions name
    their run), versions, alias events (they name versions), run events and
    metrics (they name versions), anything else (lifecycle events name versions
    and runs), and heartbeats last.
    """
    parts = rest.split("/")
    head = parts[0]
    if rest == "project":
        return 0
    if rest == "recovery":
        return 1
    if head == "members":
        return 2
    if head == "keys":
        return 3 if parts[-1] == "info" else 4
    if head == "runs" and len(parts) == 3 and parts[2] == "start":
        return 5
    if head == "artifacts" and len(parts) >= 3 and parts[2] == "versions":
        return VERSIONS_TIER
    if head == "artifacts":
        return 7
    if head == "runs" and len(parts) == 3 and parts[2] == "heartbeat":
        return HEARTBEAT_TIER
    if head == "runs":
        return 8
    return 9



def _log_of(rest: str) -> str | None:
    """The log a record belongs to (its parent), or None for a standalone record."""
    parent, _, name = rest.rpartition("/")
    return parent if parent and _LOG_NAME.fullmatch(name) else None


def _artifact_of(rest: str) -> str | None:
    parts = rest.split("/")
    return parts[1] if parts[0] == "artifacts" and len(parts) > 2 else None


@dataclass
class _Project:
    """One project's record keys (below ``projects/<p>/``) on both sides."""

    name: str
    src: list[str] = field(default_factory=list)
    dst: set[str] = field(default_factory=set)
    #: keys not to copy because of a conflict (by prefix below the project)
    blocked: list[str] = field(default_factory=list)

    def key(self, rest: str) -> str:
        return f"projects/{self.name}/{rest}"

    def is_blocked(self, rest: str) -> bool:
        return any(_under(rest, b) for b in self.blocked)


def _under(rest: str, prefix: str) -> bool:
    """``rest`` is ``prefix`` or below it ("" is the whole project)."""
    return not prefix or rest == prefix or rest.startswith(prefix + "/")


@dataclass
class _Domain:
    """The packs and index objects of one key domain to copy."""

    name: str
    packs: list[str] = field(default_factory=list)
    index: list[str] = field(default_factory=list)


def _object_key(key: str) -> tuple[str, str] | None:
    """``(domain, "packs" | "index")`` of a pack or index key, None for a foreign key."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != "objects" or parts[1] in SKIPPED_SEGMENTS:
        return None
    try:
        pack_prefix(parts[1])  # checks the domain name
    except InvalidInputError:
        return None
    name = parse_id_key(key)
    if name is None:
        return None
    if len(parts) == 5 and parts[2] == "packs" and parts[3] == parts[4][:2]:
        return parts[1], "packs"
    if len(parts) == 4 and parts[2] == "index":
        return parts[1], "index"
    return None


# -- the copy --------------------------------------------------------------------------


_Tiers = dict[int, dict[tuple[str, str], list[str]]]
"""tier -> (project, log or standalone key) -> keys to copy"""
_Check = tuple[_Project, str, str]
"""(project, record compared, what a difference blocks: "" is the whole project)"""


@dataclass
class _LogResult:
    moved: Transfer = field(default_factory=Transfer)
    conflict: Conflict | None = None


class _Syncer:
    """One sync run: plans from listings, then copies on a bounded pool."""

    def __init__(self, src: Backend, dst: Backend, project: str | None,
                 progress: Progress | None, concurrency: int,
                 cache_dir: str | os.PathLike[str] | None) -> None:
        self.src = src
        self.dst = dst
        self.project = project
        self.progress = progress
        self.concurrency = concurrency
        self.cache_dir = cache_dir
        self.report = SyncReport(src.url, dst.url, project)
        self.config: StoreConfig | None = None
        self._pool = ThreadPoolExecutor(max_workers=concurrency,
                                        thread_name_prefix="artifactstore-sync")
        self._workers = concurrency

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self) -> SyncReport:
        try:
            config_bytes = self.src.get(CONFIG_KEY)
        except NotFoundError:
            raise NotFoundError(f"no artifactstore at {self.src.url}: nothing to sync") from None
        # Records are listed before objects: a record listed now was written after
        # the blobs it names, so those are in the object listings that follow.
        projects = self._list_projects("src")
        self.report.with_lifecycle = sorted(
            p.name for p in projects.values() if any(r.startswith("lifecycle/") for r in p.src))
        try:  # from the first look at DST on: an unreachable one still gets its report
            self._list_projects("dst", projects)
            self._copy(config_bytes, projects)
        except ArtifactStoreError as exc:
            self.report.failure = exc  # the caller raises it, after the takedowns
        return self.report

    def _copy(self, config_bytes: bytes, projects: dict[str, _Project]) -> None:
        self.config = self._sync_config(config_bytes)
        # Memory: every worker holds one whole pack.
        biggest = self.config.pack_target + self.config.largest_chunk + (1 << 20)
        self._workers = max(1, min(self.concurrency, _MEMORY_BUDGET // biggest))
        self._check(self._project_checks(projects))
        self._check(self._log_checks(projects))
        domains = self._plan_objects(projects)
        tiers, heartbeats = self._plan_records(projects)
        if tiers or any(d.packs or d.index for d in domains):
            # Why: gc at the destination marks its live set, then sweeps; records
            # landing in between could name blobs it is deleting (§15). gc holds this
            # lock from mark to sweep, so holding it while writing excludes that.
            lock = GcLock(self.dst)
            lock.acquire()
            try:
                self._copy_objects(domains, "packs", self.report.packs, self._copy_pack)
                self._copy_objects(domains, "index", self.report.index, self._copy_index)
                self._copy_records(tiers)
            except BaseException:
                with contextlib.suppress(Exception):  # the first error is the one to see
                    lock.release()
                raise
            lock.release()
        for moved in self._each(self._copy_heartbeat, heartbeats):
            self._count(moved)  # they name no blob: no lock needed

    # -- config --------------------------------------------------------------------

    def _sync_config(self, data: bytes) -> StoreConfig:
        config = StoreConfig.from_bytes(data, where=self.src.url)
        try:
            present = self.dst.get(CONFIG_KEY)  # a read, not a conditional PUT, when present
        except NotFoundError:
            if self.dst.put_if_absent(CONFIG_KEY, data):
                self.report.config_copied = True
                return config
            present = self.dst.get(CONFIG_KEY)
        theirs = StoreConfig.from_bytes(present, where=self.dst.url)
        if theirs.chunker != config.chunker:
            # Why: copied blobs would never deduplicate against the destination's own.
            raise ConfigurationError(
                f"the store at {self.dst.url} chunks with {theirs.chunker.to_dict()}, the "
                f"source with {config.chunker.to_dict()}: sync into an empty location, or "
                "one made by an earlier sync of this store"
            )
        return config

    # -- planning ------------------------------------------------------------------

    def _list_projects(self, side: str,
                       projects: dict[str, _Project] | None = None) -> dict[str, _Project]:
        """The project keys of one side (the source's first, then the destination's)."""
        prefix = "projects/" if self.project is None else f"projects/{self.project}/"
        projects = {} if projects is None else projects
        backend = self.src if side == "src" else self.dst
        for key in backend.list(prefix):
            name, _, rest = key[len("projects/"):].partition("/")
            segment = rest.split("/")[0]
            if not rest or segment in SKIPPED_SEGMENTS:
                # a journal entry per record is expected, not worth a count (§12.8)
                self.report.ignored += side == "src" and not segment.startswith("journal")
                continue
            p = projects.get(name)
            if p is None:
                if side == "dst":
                    continue  # only at the destination: nothing to copy
                p = projects[name] = _Project(name)
            if side == "src":
                p.src.append(rest)
            else:
                p.dst.add(rest)
        if side == "src" and self.project is not None and self.project not in projects:
            # name the projects it holds here (what 'artifactstore project ls' lists)
            held = ", ".join(sorted({k[len("projects/"):].partition("/")[0]
                                     for k in self.src.list("projects/")})) or "none"
            raise NotFoundError(f"project {self.project!r} is not in the store at "
                                f"{self.src.url}; pass one it holds ({held})")
        return projects

    # Present keys are otherwise trusted unread (create-only keys hold the same bytes
    # wherever a sync put them). Compared, two small GETs each and never a pack:
    # the project record, then the newest common version of each artifact and the
    # newest common record of every log the sync appends to.

    @staticmethod
    def _project_checks(projects: dict[str, _Project]) -> list[_Check]:
        return [(p, "project", "") for p in projects.values()
                if "project" in p.dst and "project" in p.src]

    @staticmethod
    def _log_checks(projects: dict[str, _Project]) -> list[_Check]:
        checks: list[_Check] = []
        for p in projects.values():
            if p.is_blocked(""):
                continue
            common: dict[str, str] = {}  # log -> its newest record on both sides
            appended: set[str] = set()  # logs with records to copy
            for rest in p.src:
                log = _log_of(rest)
                if log is None:
                    continue
                if rest in p.dst:
                    common[log] = max(rest, common.get(log, rest))
                else:
                    appended.add(log)
            for log, newest in common.items():
                versions = log.startswith("artifacts/") and log.endswith("/versions")
                if versions or log in appended:
                    blocks = f"artifacts/{_artifact_of(log)}" if versions else log
                    checks.append((p, newest, blocks))
        return checks

    def _check(self, checks: list[_Check]) -> None:
        """Compare each check's record on both sides; a difference blocks what it names."""

        def same(check: _Check) -> tuple[_Check, bool]:
            key = check[0].key(check[1])
            return check, self.src.get(key) == self.dst.get(key)

        for (p, rest, blocks), equal in self._each(same, checks):
            if equal:
                continue
            what = ("another project of the same name" if rest == "project" else
                    "a different history of the same log")
            skipped = [r for r in p.src if r not in p.dst and _under(r, blocks)]
            p.blocked.append(blocks)
            self.report.conflicts.append(Conflict(
                p.key(rest), f"the destination holds {what}", len(skipped)))

    def _plan_objects(self, projects: dict[str, _Project]) -> list[_Domain]:
        if self.project is None:
            return self._plan_domains("objects/", None)
        p = projects[self.project]
        if p.is_blocked(""):
            return []  # the destination's project is another one: its blobs are not ours
        info = ProjectKeys(self.src, self.project, None).info()
        if info is not None and info.encrypted:
            return self._plan_domains(None, self._project_domains())
        return self._plan_public(p)

    def _project_domains(self) -> list[str]:
        """The key domains of a private project: one per key epoch, named by key id.

        Epochs are not judged here (readers at DST do that): a planted one could
        only add a domain of SRC's bytes to the copy."""
        assert self.project is not None
        keys = ProjectKeys(self.src, self.project, None)
        return [key_id.hex() for _, key_id in sorted(keys.key_ids().items())]

    def _listed(self, prefixes: Iterable[str]) -> tuple[dict[str, _Domain], dict[str, set[str]]]:
        """Source domains (every pack and index key) and destination keys, by domain."""
        src: dict[str, _Domain] = {}
        dst: dict[str, set[str]] = {}
        for prefix in prefixes:
            # index/ sorts before packs/: an index object listed names packs written
            # before it, which the rest of the same listing then shows
            for key in self.src.list(prefix):
                found = _object_key(key)
                if found is None:
                    self.report.ignored += 1
                    continue
                d = src.setdefault(found[0], _Domain(found[0]))
                (d.packs if found[1] == "packs" else d.index).append(key)
            for key in self.dst.list(prefix):
                found = _object_key(key)
                if found is not None:
                    dst.setdefault(found[0], set()).add(key)
        return src, dst

    def _plan_domains(self, prefix: str | None, names: list[str] | None) -> list[_Domain]:
        prefixes = [prefix] if prefix is not None else [f"objects/{n}/" for n in names or []]
        src, dst = self._listed(prefixes)
        plans = []
        for d in src.values():
            present = dst.get(d.name, set())
            plan = _Domain(d.name, [k for k in d.packs if k not in present],
                           [k for k in d.index if k not in present])
            self.report.packs.present += len(d.packs) - len(plan.packs)
            self.report.index.present += len(d.index) - len(plan.index)
            plans.append(plan)
        return plans

    def _plan_public(self, p: _Project) -> list[_Domain]:
        """The packs holding the blobs of ``p``'s versions missing at the destination,
        and index objects to list them: whole packs, and whole index objects (one per
        flush), which may carry other public projects' blobs too."""
        missing = [r for r in p.src if record_tier(r) == VERSIONS_TIER and r not in p.dst
                   and _log_of(r) is not None and not p.is_blocked(r)]
        if not missing:
            return []  # every version at DST came with its blobs
        src, dst = self._listed([f"objects/{PLAIN_DOMAIN}/"])
        domain = src.get(PLAIN_DOMAIN, _Domain(PLAIN_DOMAIN))
        present = dst.get(PLAIN_DOMAIN, set())
        needed = self._packs_of_versions(p.name, missing)
        prefix = pack_prefix(PLAIN_DOMAIN)
        wanted = {f"{prefix}{pid.hex[:2]}/{pid.hex}" for pid in needed}
        # Index objects missing at the destination that list a wanted pack are copied,
        # with every pack they list, so no index object names a missing pack (§7).
        listing = dict(self._each(self._index_packs, [k for k in domain.index
                                                      if k not in present]))
        chosen: set[str] = set()
        grew = True
        while grew:
            grew = False
            for key, listed in listing.items():
                if key not in chosen and not listed.isdisjoint(wanted):
                    chosen.add(key)
                    wanted |= listed
                    grew = True
        packs = sorted(k for k in wanted if k not in present)
        self.report.packs.present += len(wanted) - len(packs)
        return [_Domain(PLAIN_DOMAIN, packs, sorted(chosen))]

    def _index_packs(self, key: str) -> tuple[str, frozenset[str]]:
        index_id = parse_id_key(key)
        assert index_id is not None
        prefix = pack_prefix(PLAIN_DOMAIN)
        return key, frozenset(f"{prefix}{pid.hex[:2]}/{pid.hex}"
                              for pid, _ in decode_index(index_id, self.src.get(key)))

    def _packs_of_versions(self, project: str, version_keys: list[str]) -> set[Digest]:
        """Packs holding every blob of these versions (manifest, tree nodes, chunk
        lists, chunks, and the bases of delta chunks); a version with a blob the source
        lacks is reported."""
        assert self.config is not None
        objects = ObjectStore(self.src, self.config, cache_dir=self.cache_dir,
                              concurrency=self.concurrency)
        try:
            index = objects.index
            log = VersionLog(self.src, project)
            packs: set[Digest] = set()
            walked: set[Digest] = set()

            def locate(blob_id: Digest) -> None:
                location = index.lookup(blob_id)
                if location is None:
                    raise NotFoundError(f"blob {blob_id.hex} is not in the source's index")
                packs.add(location.pack)
                # Why: a delta never arrives without its bases (design §17)
                for base in index.bases(blob_id, location):
                    locate(base)

            def get_blob(blob_id: Digest) -> bytes:
                locate(blob_id)
                return objects.read_blob(blob_id)

            for rest in version_keys:
                record = log.read_key(f"projects/{project}/{rest}")
                try:
                    locate(record.manifest)
                    if record.digest in walked:
                        continue
                    for entry in iter_entries(record.digest, get_blob):
                        if isinstance(entry, FileEntry):
                            for chunk in entry.chunks:
                                locate(chunk.id)
                    walked.add(record.digest)
                except NotFoundError:
                    self.report.incomplete.append(f"{project}/{record.ref}")
            return packs
        finally:
            objects.close()

    # -- copying -------------------------------------------------------------------

    def _copy_objects(self, domains: list[_Domain], kind: str, counts: Transfer,
                      copy: Callable[[str], int]) -> None:
        keys = [k for d in domains for k in (d.packs if kind == "packs" else d.index)]
        for size in self._each(copy, keys, window=self._workers):
            counts.copied += 1
            counts.bytes += size
            if self.progress is not None:
                self.progress(size)

    def _copy_pack(self, key: str) -> int:
        data = self.src.get(key)
        pack_id = parse_id_key(key)
        assert pack_id is not None
        # Why: a sync must not spread damage; the trailer hash is the pack's id (§5).
        try:
            end = len(data) - TAIL_SIZE
            start = end - trailer_length(data[-TAIL_SIZE:], len(data), what=f"pack {key}")
            ok = hash_bytes(memoryview(data)[start:end]) == pack_id
        except IntegrityError:
            ok = False
        if not ok:
            raise IntegrityError(f"pack {key} of {self.src.url} does not match its id: the "
                                 "source is damaged; run 'artifactstore verify' on it")
        self.dst.put(key, data)
        return len(data)

    def _copy_index(self, key: str) -> int:
        data = self.src.get(key)
        if hash_bytes(data) != parse_id_key(key):
            raise IntegrityError(f"index object {key} of {self.src.url} does not match its "
                                 "id: the source is damaged; run 'artifactstore verify' on it")
        self.dst.put(key, data)
        return len(data)

    def _plan_records(self, projects: dict[str, _Project]) -> tuple[_Tiers, list[tuple[str, bool]]]:
        """Records to copy, by tier and log; heartbeats with whether DST has one."""
        tiers: _Tiers = {}
        heartbeats: list[tuple[str, bool]] = []
        for p in projects.values():
            for rest in p.src:
                if p.is_blocked(rest):
                    continue
                tier = record_tier(rest)
                if tier == HEARTBEAT_TIER:
                    heartbeats.append((p.key(rest), rest in p.dst))
                elif rest in p.dst:
                    self.report.records.present += 1
                else:
                    group = (p.name, _log_of(rest) or rest)
                    tiers.setdefault(tier, {}).setdefault(group, []).append(p.key(rest))
        return tiers, heartbeats

    def _copy_records(self, tiers: _Tiers) -> None:
        for tier in sorted(tiers):
            logs = [sorted(keys) for keys in tiers[tier].values()]
            for result in self._each(self._copy_log, logs):
                self._count(result.moved)
                if result.conflict is not None:
                    self.report.conflicts.append(result.conflict)

    def _count(self, moved: Transfer) -> None:
        self.report.records.add(moved)
        if self.progress is not None and moved.bytes:
            self.progress(moved.bytes)

    def _copy_log(self, keys: list[str]) -> _LogResult:
        """Create-only records of one log, in order; stops at a conflict."""
        result = _LogResult()
        for i, key in enumerate(keys):
            data = self.src.get(key)
            if self.dst.put_if_absent(key, data):
                result.moved.copied += 1
                result.moved.bytes += len(data)
            elif self.dst.get(key) == data:
                result.moved.present += 1  # another sync copied it meanwhile
            else:
                result.conflict = Conflict(key, "the destination holds other bytes here "
                                           "(written there since the listing)",
                                           len(keys) - i)
                break
        return result

    def _copy_heartbeat(self, item: tuple[str, bool]) -> Transfer:
        """The one mutable record: copied when missing or different."""
        key, present = item
        data = self.src.get(key)
        if present:
            try:
                if self.dst.get(key) == data:
                    return Transfer(present=1)
            except NotFoundError:
                pass
        self.dst.put(key, data)
        return Transfer(copied=1, bytes=len(data))

    def _each(self, fn: Callable[[T], R], items: Iterable[T], *,
              window: int | None = None) -> Iterator[R]:
        """``fn`` over ``items`` on the pool, results as they finish.

        At most ``window`` calls are queued or running, so memory stays bounded;
        on an error the rest is cancelled, running calls end, and it is raised.
        """
        limit = window or 2 * self.concurrency
        pending: set[Future[R]] = set()
        try:
            for item in items:
                pending.add(self._pool.submit(fn, item))
                if len(pending) >= limit:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()
            wait(pending)
