"""Listings of a project's versions and alias events for screens that show them all,
read from the local catalog (one query, not one store request per version).

Vocabulary: a version's **state** is ``live``; ``deleted`` or ``purged`` (a lifecycle
event, design §14, tombstoned it, and ``event`` is that event); or ``missing`` (its
record has vanished from the store since the catalog read it). Only a live version has
aliases, and ``latest`` names the newest live version of each artifact, as
:meth:`Refs.aliases_of` says.
"""

from __future__ import annotations

from dataclasses import dataclass

from artifactstore.model.names import LATEST, validate_artifact_name
from artifactstore.records.aliases import AliasEvent
from artifactstore.records.lifecycle import LifecycleEvent
from artifactstore.records.versions import VersionRecord
from artifactstore.repository.project import Project

__all__ = ["VersionState", "alias_events", "version_states"]


@dataclass(frozen=True, slots=True)
class VersionState:
    """One version of a listing: its record, state and current aliases."""

    record: VersionRecord
    state: str
    aliases: tuple[str, ...]
    event: LifecycleEvent | None = None


def version_states(project: Project, artifact: str | None = None, *,
                   sync: bool | None = None) -> list[VersionState]:
    """Every version the catalog knows (of ``artifact`` if given), by name and number,
    deleted, purged and missing ones included."""
    if artifact is not None:
        validate_artifact_name(artifact)
    catalog = project.catalog
    catalog.ensure_fresh(sync)
    lifecycle = catalog.lifecycle_state()
    current = catalog.current_aliases()
    found: list[tuple[VersionRecord, str, LifecycleEvent | None]] = []
    for record, gone in catalog.versions():
        if artifact is not None and record.artifact != artifact:
            continue
        event = lifecycle.tombstone(record.artifact, record.number)
        state = ("purged" if event.action == "purge" else "deleted") if event is not None \
            else "missing" if gone else "live"
        found.append((record, state, event))
    newest = {r.artifact: r.number for r, state, _ in found if state == "live"}
    listing = []
    for record, state, event in found:
        names: list[str] = []
        if state == "live":
            names = list(current.get((record.artifact, record.number), []))
            if newest.get(record.artifact) == record.number:
                names.insert(0, LATEST)
        listing.append(VersionState(record, state, tuple(names), event))
    return listing


def alias_events(project: Project, artifact: str, *,
                 sync: bool | None = None) -> list[AliasEvent]:
    """Every event of every alias of ``artifact``, by alias then ``seq``."""
    validate_artifact_name(artifact)
    project.catalog.ensure_fresh(sync)
    return project.catalog.alias_events(artifact)
