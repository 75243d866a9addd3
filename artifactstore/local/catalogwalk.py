"""The catalog's SQL for walking lineage one node at a time (issue 20).

``lineage.walk`` answers ``upstream`` / ``downstream`` of one node from these indexed
look-ups (a version's edges by ``run_edges_version``, a run's by its primary key, the
versions a run made by ``versions_run``) instead of reading every version and run of
the project into a graph. Each function is one or two queries over the catalog's
tables (:mod:`artifactstore.local.catalog`, which owns the schema).
"""

from __future__ import annotations

from artifactstore.local.catalog import Catalog, RunInfo

__all__ = [
    "aliases_of", "live_numbers", "made_by", "producer", "run_edges", "run_info", "run_known",
    "version_edges", "version_state",
]  # fmt: skip


def run_known(catalog: Catalog, run_id: str) -> bool:
    """Whether the run has a start record or any recorded edge (a node of the graph)."""
    return bool(catalog.query(
        "SELECT 1 FROM runs WHERE run_id=? UNION ALL "
        "SELECT 1 FROM run_edges WHERE run_id=? LIMIT 1", (run_id, run_id)))


def version_state(catalog: Catalog, artifact: str, number: int) -> bool | None:
    """True: its record is known and still stored; False: known but gone, or only named
    by a run's edge (a *missing* node); None: no node at all."""
    rows = catalog.query("SELECT gone FROM versions WHERE artifact=? AND number=?",
                         (artifact, number))
    if rows:
        return not rows[0][0]
    named = catalog.query("SELECT 1 FROM run_edges WHERE artifact=? AND number=? LIMIT 1",
                          (artifact, number))
    return False if named else None


def version_edges(catalog: Catalog, artifact: str, number: int) -> list[tuple[str, str, bool]]:
    """``(run_id, direction, created)`` of the edges that name this version."""
    return [(r[0], r[1], r[2] is None or bool(r[2])) for r in catalog.query(
        "SELECT run_id, direction, created FROM run_edges WHERE artifact=? AND number=? "
        "ORDER BY run_id, seq", (artifact, number))]


def run_edges(catalog: Catalog, run_id: str) -> list[tuple[str, str, int, bool]]:
    """``(direction, artifact, number, created)`` of one run's edges, in order."""
    return [(r[0], r[1], r[2], r[3] is None or bool(r[3])) for r in catalog.query(
        "SELECT direction, artifact, number, created FROM run_edges WHERE run_id=? "
        "ORDER BY seq", (run_id,))]


def made_by(catalog: Catalog, run_id: str) -> list[tuple[str, int]]:
    """Versions whose record names this run as its producer."""
    return [(r[0], r[1]) for r in catalog.query(
        "SELECT artifact, number FROM versions WHERE run=? ORDER BY artifact, number",
        (run_id,))]


def producer(catalog: Catalog, artifact: str, number: int) -> str | None:
    rows = catalog.query("SELECT run FROM versions WHERE artifact=? AND number=?",
                         (artifact, number))
    return rows[0][0] if rows else None


def live_numbers(catalog: Catalog, artifact: str) -> list[int]:
    """Numbers of the artifact's versions whose record is still stored."""
    return [r[0] for r in catalog.query(
        "SELECT number FROM versions WHERE artifact=? AND gone=0", (artifact,))]


def aliases_of(catalog: Catalog, artifact: str) -> dict[int, list[str]]:
    """Version number -> the aliases of ``artifact`` that point at it now (sorted)."""
    rows = catalog.query(
        "SELECT alias, target FROM alias_events AS e WHERE artifact=? AND seq = "
        "(SELECT MAX(seq) FROM alias_events WHERE artifact=e.artifact AND alias=e.alias)",
        (artifact,))
    found: dict[int, list[str]] = {}
    for alias, target in rows:
        if target is not None:
            found.setdefault(target, []).append(alias)
    return {k: sorted(v) for k, v in found.items()}


def run_info(catalog: Catalog, run_id: str, host: str | None) -> RunInfo | None:
    """The run as :meth:`Catalog.runs` describes it, or None without a start record."""
    found = catalog.runs(host, prefix=run_id, exact=True)
    return found[0] if found else None
