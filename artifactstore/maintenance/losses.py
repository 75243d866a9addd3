"""Missing records a project's other records reveal (docs/design.md §18, "Loss").

Vocabulary:

- **log**: records numbered 0, 1, … with ``put_if_absent`` and never deleted: the
  versions of an artifact, the events of an alias, the lifecycle log, the events of a
  run. A number below the highest one listed that has no record is a **gap**.
- **reference**: a record naming a version: an alias event (its target, or the
  ``previous`` target it replaced), a lifecycle event, a run's input or output edge,
  or this client's catalog, which remembers every version record it read.
- a **missing record** is a gap, or a version some reference names that has no
  record. Each is reported with its key and what it takes with it.

Nothing here writes. The listings are of the project's ``artifacts/``, ``lifecycle/``
and ``runs/`` keys; records are read through the local catalog (§12.6), so a second
check reads only what is new. Private projects' keys hold tags: findings name the
artifact and alias by the names in neighbouring records, else by the tag.
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Final

from artifactstore.backends import Backend
from artifactstore.core.errors import ArtifactStoreError
from artifactstore.local.catalog import Catalog
from artifactstore.records.aliases import alias_event_key
from artifactstore.records.lifecycle import LifecycleEvent, lifecycle_prefix
from artifactstore.records.refs import Refs
from artifactstore.records.runs import event_key, parse_run_key, runs_prefix
from artifactstore.records.versions import artifacts_prefix, version_key

__all__ = ["MissingRecord", "missing_records"]

_REF_KEY: Final = re.compile(r"([^/]+)/(?:versions|aliases/([^/]+))/([0-9]{10})")


@dataclass(frozen=True, slots=True)
class MissingRecord:
    """The record that should be stored at ``key``; ``affects`` says what is lost with it."""

    key: str
    what: str
    affects: tuple[str, ...] = ()

    def __str__(self) -> str:
        lost = f": {'; '.join(self.affects)}" if self.affects else ""
        return f"{self.what} is missing ({self.key}){lost}"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "what": self.what, "affects": list(self.affects)}


def _gaps(numbers: set[int]) -> list[int]:
    return sorted(set(range(max(numbers))) - numbers) if numbers else []


def missing_records(backend: Backend, refs: Refs,
                    catalog: Catalog | None = None) -> list[MissingRecord]:
    """Every record of ``refs``' project that the rest of the store shows is missing.

    ``backend`` is listed (the store's, not one that checks marks: loss is reported
    here, not refused); ``catalog`` (default: one in memory) reads the records.
    """
    own = catalog is None
    if catalog is None:
        catalog = Catalog(backend, refs.project, None, codec=refs.codec)
    try:
        return _Finder(backend, refs, catalog).find()
    finally:
        if own:
            catalog.close()


class _Finder:
    def __init__(self, backend: Backend, refs: Refs, catalog: Catalog) -> None:
        self._backend = backend
        self._refs = refs
        self._project = refs.project
        self._catalog = catalog
        self._names: dict[str, str] = {}  # segment -> artifact name
        self._alias_names: dict[tuple[str, str], str] = {}
        #: artifact name -> number -> what names that version
        self._uses: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))

    def find(self) -> list[MissingRecord]:
        project = self._project
        versions: dict[str, set[int]] = defaultdict(set)
        aliases: dict[tuple[str, str], set[int]] = defaultdict(set)
        prefix = artifacts_prefix(project)
        for key in self._backend.list(prefix):
            found = _REF_KEY.fullmatch(key[len(prefix):])
            if found is None:
                continue
            segment, alias, number = found[1], found[2], int(found[3])
            if alias is None:
                versions[segment].add(number)
            else:
                aliases[(segment, alias)].add(number)
                versions.setdefault(segment, set())
        with_lifecycle = self._lifecycle()
        self._read_catalog()
        missing = [*with_lifecycle]
        for segment, numbers in sorted(versions.items()):
            name = self._names.get(segment, segment)
            named = set(self._uses.get(name, {}))
            for number in sorted(set(_gaps(numbers)) | (named - numbers)):
                missing.append(MissingRecord(
                    version_key(project, segment, number), f"version record {name}:v{number}",
                    tuple(self._uses.get(name, {}).get(number, ()))
                    or ("the version and its files can no longer be read",)))
        for (segment, alias_segment), seqs in sorted(aliases.items()):
            name = self._names.get(segment, segment)
            alias = self._alias_names.get((segment, alias_segment), alias_segment)
            for seq in _gaps(seqs):
                missing.append(MissingRecord(
                    alias_event_key(project, segment, alias_segment, seq),
                    f"event {seq} of alias {name}:{alias}",
                    (self._alias_gap(name, alias, seq),)))
        missing += self._run_gaps()
        return missing

    def _lifecycle(self) -> list[MissingRecord]:
        prefix = lifecycle_prefix(self._project)
        seqs = {int(k[len(prefix):]) for k in self._backend.list(prefix)
                if k[len(prefix):].isdigit() and len(k) - len(prefix) == 10}
        for seq in sorted(seqs):
            try:
                event: LifecycleEvent = self._refs.lifecycle.read(seq)
            except ArtifactStoreError:
                continue  # unreadable: verify's record check names it
            if event.artifact is not None:
                self._name(event.artifact)
                for number in event.numbers:
                    self._uses[event.artifact][number].append(
                        f"lifecycle event {seq} ({event.action}) names it")
        return [MissingRecord(f"{prefix}{seq:010d}", f"lifecycle event {seq}",
                              ("a delete, restore, purge or retention change is lost: "
                               "versions it deleted may show as live",))
                for seq in _gaps(seqs)]

    def _read_catalog(self) -> None:
        catalog = self._catalog
        # An unreadable record stops the sync: verify names it; use what the catalog holds.
        with contextlib.suppress(ArtifactStoreError):
            catalog.sync(full=True)  # a full listing: records gone behind our back
        for record, gone in catalog.versions():
            self._name(record.artifact)
            if gone:
                self._uses[record.artifact][record.number].insert(
                    0, f"this client read it before: its files ({record.files}, "
                       f"{record.size} bytes) can no longer be read")
        for artifact, alias, seq, target, previous in catalog.alias_moves():
            self._name(artifact)
            self._alias_names[(self._refs.codec.segment(artifact),
                               self._refs.codec.segment(alias))] = alias
            if target is not None:
                self._uses[artifact][target].append(f"event {seq} of alias {alias} "
                                                    "points at it")
            if previous is not None:
                self._uses[artifact][previous].append(f"alias {alias} pointed at it "
                                                      f"before event {seq}")
        for run_id, direction, artifact, number, _role, _created in catalog.edges():
            self._name(artifact)
            verb = "used" if direction == "use" else "logged"
            self._uses[artifact][number].append(f"run {run_id} {verb} it (a lineage edge)")

    def _name(self, artifact: str) -> None:
        self._names.setdefault(self._refs.codec.segment(artifact), artifact)

    def _alias_gap(self, artifact: str, alias: str, seq: int) -> str:
        previous = self._catalog.alias_previous(artifact, alias, seq + 1)
        if previous is not None:
            return f"it set the alias to v{previous} (event {seq + 1} says so)"
        return "who moved the alias, and where to, is lost from its history"

    def _run_gaps(self) -> list[MissingRecord]:
        prefix = runs_prefix(self._project)
        events: dict[str, set[int]] = defaultdict(set)
        for key in self._backend.list(prefix):
            found = parse_run_key(prefix, key)
            if found is not None and found[1] == "events" and found[2] is not None:
                events[found[0]].add(found[2])
        return [MissingRecord(event_key(self._project, run_id, seq),
                              f"event {seq} of run {run_id}",
                              ("an input or output of the run (a lineage edge) or its end "
                               "is lost",))
                for run_id, seqs in sorted(events.items()) for seq in _gaps(seqs)]
