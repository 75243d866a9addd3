"""The lineage graph: artifact versions and runs, and who used or produced what.

Vocabulary:

- **node**: a version (id ``"name:vN"``) or a run (id ``"run:<run id>"``); the
  attributes are listed in :mod:`artifactstore.lineage.formats`.
- **edge**: ``version -> run`` (the run used the version) or ``run -> version``
  (the run produced it), from the runs' ``use``/``output`` events and the
  version records' ``run`` field.
- **upstream / downstream**: every node a version comes from / feeds, as a
  subgraph; ``depth`` counts generations of versions (one generation is a run
  and the versions on its other side).
- **impact**: every version derived from a version, transitively.
- **state** of a node: ``live``; ``deleted`` or ``purged`` (a lifecycle event, design
  §14, tombstoned it: the node keeps its place and edges, with ``state_at``,
  ``state_by`` and ``state_reason`` from that event); ``missing`` (a run names a
  version whose record is gone from the store). Only live versions carry aliases or
  ``latest``: a deleted version is never shown as an alias target.

The graph is built from the local catalog (:mod:`artifactstore.local.catalog`), never
by listing the store per query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from artifactstore.local.catalog import Catalog, RunInfo
from artifactstore.model.names import version_label
from artifactstore.records.lifecycle import LifecycleEvent

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "EXPORT_FORMATS", "STATES", "FileUse", "build_graph", "describe_state", "neighbourhood",
    "reach", "run_node", "state_attrs", "version_node",
]  # fmt: skip

#: the formats of :mod:`artifactstore.lineage.formats` (here so that listing them, as
#: the CLI's parser does, does not import networkx: ~0.2 s on every command)
EXPORT_FORMATS: Final = ("json", "graphml", "dot", "mermaid")
#: the values of a node's ``state`` attribute (see the module docstring)
STATES: Final = ("live", "deleted", "purged", "missing")


def version_node(artifact: str, number: int) -> str:
    return f"{artifact}:{version_label(number)}"


def run_node(run_id: str) -> str:
    return f"run:{run_id}"


@dataclass(frozen=True, slots=True)
class FileUse:
    """Where a file content appears: versions holding it and runs that read them."""

    digest: str
    versions: tuple[tuple[str, str], ...]  # (version ref, path), sorted
    runs: tuple[str, ...]  # run ids that used one of those versions, sorted
    #: (version ref, state) of the versions above that are not live (deleted, purged)
    states: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, object]:
        states = dict(self.states)
        return {
            "digest": self.digest,
            "versions": [{"version": v, "path": p, "state": states.get(v, "live")}
                         for v, p in self.versions],
            "runs": list(self.runs),
        }


def state_attrs(event: LifecycleEvent | None, *, missing: bool = False) -> dict[str, object]:
    """A node's ``state`` attributes from its tombstone (None: live, or missing)."""
    if event is None:
        state = "missing" if missing else "live"
        return {"state": state, "state_at": None, "state_by": None, "state_reason": None,
                "missing": missing, "deleted": False}
    state = "purged" if event.action == "purge" else "deleted"
    return {"state": state, "state_at": event.at, "state_by": event.by,
            "state_reason": event.reason, "missing": missing, "deleted": True}


def describe_state(node: str, attrs: Mapping[str, Any]) -> str | None:
    """One line on a node that is not live (None when it is): what, when, who, why."""
    state = attrs.get("state", "live")
    if state == "live":
        return None
    if state == "missing":
        return f"{node}: its record is gone from the store"
    when = str(attrs.get("state_at") or "?")[:19]
    why = attrs.get("state_reason")
    return (f"{node} was {state} on {when} by {attrs.get('state_by') or '?'}"
            + (f": {why}" if why else " (no reason given)"))


def build_graph(catalog: Catalog, runs: list[RunInfo]) -> nx.DiGraph:
    """The whole project's lineage graph from the catalog."""
    import networkx as nx  # only lineage queries pay its import time

    graph = nx.DiGraph()
    aliases = catalog.current_aliases()
    lifecycle = catalog.lifecycle_state()
    versions = catalog.versions()
    latest: dict[str, int] = {}
    for record, gone in versions:
        if not gone and lifecycle.tombstone(record.artifact, record.number) is None:
            latest[record.artifact] = max(record.number, latest.get(record.artifact, -1))
    producers: list[tuple[str, str]] = []
    for record, gone in versions:
        tombstone = lifecycle.tombstone(record.artifact, record.number)
        # A deleted or purged version is nobody's target, whatever an alias event says.
        names = [] if tombstone else list(aliases.get((record.artifact, record.number), []))
        if latest.get(record.artifact) == record.number:
            names.insert(0, "latest")
        node = version_node(record.artifact, record.number)
        graph.add_node(
            node,
            kind="version",
            artifact=record.artifact,
            number=record.number,
            type=record.type,
            # The content digest (design §11.1); a record older than it shows its tree
            # digest here (computing it would read the tree of every old version).
            digest=(record.content or record.digest).hex,
            created_at=record.created_at,
            aliases=names,
            **state_attrs(tombstone, missing=gone),
        )
        if record.run is not None:
            producers.append((run_node(record.run), node))
    for run in runs:
        graph.add_node(
            run_node(run.run_id),
            kind="run",
            run_id=run.run_id,
            name=run.name,
            job_type=run.job_type,
            status=run.status,
            started_at=run.started_at,
            ended_at=run.ended_at,
            git_commit=run.git_commit,
            git_dirty=run.git_dirty,
            **state_attrs(lifecycle.deleted_runs.get(run.run_id)),
        )
    edges = catalog.edges()
    used = {(run_id, artifact, number) for run_id, d, artifact, number, _, _ in edges
            if d == "use"}
    for run_id, direction, artifact, number, _role, created in edges:
        if direction == "output" and not created and (run_id, artifact, number) in used:
            # The run logged back content it had read: it did not make that version,
            # and an edge would close a loop (version -> run -> same version).
            continue
        vnode, rnode = version_node(artifact, number), run_node(run_id)
        if vnode not in graph:  # the run names a version whose record is gone
            graph.add_node(
                vnode,
                kind="version",
                artifact=artifact,
                number=number,
                type=None,
                digest=None,
                created_at=None,
                aliases=[],
                **state_attrs(lifecycle.tombstone(artifact, number), missing=True),
            )
        if direction == "use":
            graph.add_edge(vnode, rnode, kind="used")
        else:
            graph.add_edge(rnode, vnode, kind="produced")
    for rnode, vnode in producers:
        if rnode in graph:
            graph.add_edge(rnode, vnode, kind="produced")
    return graph


def neighbourhood(
    graph: nx.DiGraph, start: str, *, upstream: bool, depth: int | None = None
) -> nx.DiGraph:
    """The subgraph of ``start`` and what it comes from (upstream) or feeds."""
    step: Callable[[str], Iterable[str]] = graph.predecessors if upstream else graph.successors
    sub: nx.DiGraph = graph.subgraph(reach(start, step, depth)).copy()
    return sub


def reach(start: str, step: Callable[[str], Iterable[str]], depth: int | None) -> set[str]:
    """``start`` and every node ``step`` leads to, breadth first, up to ``depth``
    generations of versions (two steps each: version -> run -> version)."""
    hops = None if depth is None else 2 * depth
    seen = {start}
    frontier = [start]
    level = 0
    while frontier and (hops is None or level < hops):
        following = []
        for node in frontier:
            for other in step(node):
                if other not in seen:
                    seen.add(other)
                    following.append(other)
        frontier = following
        level += 1
    return seen
