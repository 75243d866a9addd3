"""Lineage questions about one project: every query and its resolution, in one place.

The whole graph is built from the local catalog (:mod:`artifactstore.lineage.graph`)
and kept until the catalog changes; upstream, downstream and impact of one node are
walked in the catalog instead (:mod:`artifactstore.lineage.walk`: the same subgraph,
read node by node). A ref names a node (``name:vN``, an alias, or ``run:<id>``),
deleted and purged versions and runs included, since lineage and audits answer for
them. The file index behind :func:`where_used` is filled lazily from version trees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from artifactstore.core.digest import Digest
from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.lineage.graph import FileUse, build_graph, run_node, version_node
from artifactstore.lineage.walk import Lineage, has_node, resolve, walk
from artifactstore.repository.project import Project
from artifactstore.runs.queries import get_run, this_host

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["downstream", "impact", "lineage", "lineage_node", "neighbours", "upstream",
           "where_used"]


def lineage(project: Project, *, sync: bool | None = None) -> nx.DiGraph:
    """The project's lineage graph (a copy; see :mod:`artifactstore.lineage.graph`)."""
    project.catalog.ensure_fresh(sync)
    copied: nx.DiGraph = _graph(project).copy()
    return copied


def lineage_node(project: Project, ref: str, *, sync: bool | None = None) -> str:
    """The graph id ``ref`` names (``name:vN`` or ``run:<id>``): deleted and purged
    versions and runs included, as lineage and audits must answer for them."""
    return _node(project, ref, sync)


def neighbours(project: Project, ref: str, depth: int | None = None, *, upstream: bool,
               sync: bool | None = None) -> Lineage:
    """:func:`upstream` or :func:`downstream` without networkx (what the CLI draws)."""
    node = _node(project, ref, sync)
    return walk(project.catalog, node, upstream=upstream, depth=_depth(depth),
                host=this_host())


def upstream(project: Project, ref: str, depth: int | None = None, *,
             sync: bool | None = None) -> nx.DiGraph:
    """``ref`` and everything it was made from: runs, their inputs, and so on."""
    return neighbours(project, ref, depth, upstream=True, sync=sync).to_networkx()


def downstream(project: Project, ref: str, depth: int | None = None, *,
               sync: bool | None = None) -> nx.DiGraph:
    """``ref`` and everything made from it."""
    return neighbours(project, ref, depth, upstream=False, sync=sync).to_networkx()


def impact(project: Project, ref: str, *, sync: bool | None = None) -> list[str]:
    """Every version derived from ``ref``, transitively (what a takedown must consider)."""
    node = _node(project, ref, sync)
    sub = walk(project.catalog, node, upstream=False, host=this_host())
    return sorted(
        (n for n, data in sub.nodes.items() if data.get("kind") == "version" and n != node),
        key=_ref_order,
    )


def where_used(project: Project, file_digest: str | Digest, *,
               sync: bool | None = None) -> FileUse:
    """Versions that hold a file with this content (plain BLAKE3) and runs that used them."""
    digest = file_digest if isinstance(file_digest, Digest) else Digest.from_hex(file_digest)
    catalog = project.catalog
    catalog.ensure_fresh(sync)
    _index_files(project)
    holders = catalog.files_with(digest.raw)
    versions = tuple(sorted(((version_node(a, n), p) for a, n, p in holders),
                            key=lambda vp: (_ref_order(vp[0]), vp[1])))
    held = {(a, n) for a, n, _ in holders}
    runs = sorted({run_id for run_id, direction, a, n, _, _ in catalog.edges()
                   if direction == "use" and (a, n) in held})
    gone = catalog.lifecycle_state()
    states = tuple(sorted(
        (version_node(a, n), "purged" if event.action == "purge" else "deleted")
        for a, n in held if (event := gone.tombstone(a, n)) is not None
    ))  # fmt: skip
    return FileUse(digest.hex, versions, tuple(runs), states)


def _graph(project: Project) -> nx.DiGraph:
    catalog = project.catalog
    return project.memo("lineage graph", catalog.generation,
                        lambda: build_graph(catalog, catalog.runs(host=this_host())))


def _node(project: Project, ref: str, sync: bool | None) -> str:
    catalog = project.catalog
    catalog.ensure_fresh(sync)
    if ref.startswith("run:"):
        node = run_node(get_run(project, ref[4:], sync=False).run_id)
    else:  # from the catalog alone (no request) when it can tell
        node = resolve(catalog, ref) or _resolve_in_store(project, ref)
    if not has_node(catalog, node):  # committed after our last sync
        catalog.sync()
    return node


def _resolve_in_store(project: Project, ref: str) -> str:
    # imported here: a warm ``lineage REF`` resolves from the catalog (issue 20)
    from artifactstore.repository.version import find_version

    version = find_version(project, ref)
    return version_node(version.name, version.number)


def _index_files(project: Project) -> None:
    """Index the files of versions not indexed yet (a version with known content is copied)."""
    from artifactstore.model.tree import FileEntry, iter_entries  # only the file queries

    catalog = project.catalog
    by_digest: dict[bytes, tuple[str, int]] = {}
    gone = catalog.lifecycle_state()
    for artifact, number, raw in catalog.unindexed():
        earlier = by_digest.get(raw)
        if earlier is None:
            earlier = catalog.indexed_version_with(raw)
        if earlier is not None and catalog.copy_index_from(artifact, number, earlier):
            continue
        tombstone = gone.tombstone(artifact, number)
        record = project.refs.version(artifact, number, include_deleted=True)
        try:
            files = [
                (e.path, e.digest.raw)
                for e in iter_entries(record.digest, project.objects_for(record).read_blob)
                if isinstance(e, FileEntry)
            ]
        except NotFoundError:
            if tombstone is None:
                raise  # a live version lost data: verify/repair's business, not ours
            files = []  # purged, or reclaimed by gc: no file of it is anywhere now
        catalog.index_files(artifact, number, iter(files))
        by_digest[raw] = (artifact, number)


def _depth(depth: int | None) -> int | None:
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise InvalidInputError(f"depth must be an int >= 0 or None, got {depth!r:.40}")
    return depth


def _ref_order(ref: str) -> tuple[str, int]:
    name, _, label = ref.rpartition(":v")
    return name, int(label)
