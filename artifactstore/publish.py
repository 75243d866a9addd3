"""Publishing one version of a project into a public project (docs/guide.md §8).

Vocabulary: the **source** is a version of the project a :class:`Store` has open
(private or public); the **target** is a public project of the store at ``to``
(the source's project name unless another is given), created public if missing;
the store itself must exist. The **published copy** is a new version of the
target, re-logged there in plaintext and signed by the publisher (who must be
allowed to write the target, as for any write), through the same path as
re-logging (:func:`artifactstore.transfer.relog.materialized`).

With **lineage**, the run that made the source version is restored in the target
as an import restores it (:mod:`artifactstore.transfer.importing`): its name, job type,
config, summary (metrics) and code state, its tags plus
``imported_from=<run id>`` and ``published_from=<project>/<name:vN>``, and its
inputs as versions known by name, number, type and digest (linked to a target
version with the same digest when there is one, else shown as missing by
lineage). With **ancestors** (which implies lineage), every version upstream of
it (the inputs of its run, their runs' inputs, and so on) is published first the
same way, so the published inputs link to published copies by content digest.
Nothing else of the source project is written: no other version, artifact, alias,
run or key.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from artifactstore.backends import redact_url
from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.maintenance.projects import create_project, show_project
from artifactstore.model.names import validate_project_name
from artifactstore.objects.store import Progress
from artifactstore.transfer.exporting import build_manifest
from artifactstore.transfer.importing import ImportedInput, _log, _match_inputs, _restored_run
from artifactstore.transfer.relog import materialized

if TYPE_CHECKING:
    from artifactstore.api.store import Store

__all__ = ["PUBLISHED_FROM", "PublishReport", "publish"]

PUBLISHED_FROM = "published_from"
"""Tag of a published run: ``published_from=<project>/<name:vN>``."""


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What a publish wrote into the target."""

    source: str  # project/name:vN
    destination: str  # the target store's URL
    project: str  # the target project
    ref: str  # the published copy, name:vN
    digest: str
    created: bool  # False when the target's latest version held the same content
    created_project: bool
    run_id: str | None  # the restored run (with lineage), else None
    original_run_id: str | None
    inputs: tuple[ImportedInput, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "destination": self.destination, "project": self.project,
            "ref": self.ref, "digest": self.digest, "created": self.created,
            "created_project": self.created_project, "run_id": self.run_id,
            "original_run_id": self.original_run_id,
            "inputs": [i.as_dict() for i in self.inputs],
        }  # fmt: skip


def publish(src: Store, ref: str, to: str | os.PathLike[str], project: str | None = None, *,
            with_lineage: bool = False, with_ancestors: bool = False,
            progress: Progress | None = None,
            cache_dir: str | os.PathLike[str] | None = None,
            **backend_options: Any) -> PublishReport:
    """Copy version ``ref`` of ``src`` into public ``project`` of the store at ``to``.

    ``with_lineage`` also restores the run that made it (config, metrics, code,
    inputs); ``with_ancestors`` also publishes, first, every version upstream of it,
    each with its run. ``progress`` counts the bytes logged into the target.
    Returns the report of ``ref``'s copy (its ancestors' copies are its inputs).
    """
    if with_ancestors:
        done: set[str] = set()
        for ancestor in _ancestors(src, ref):
            if ancestor not in done:
                done.add(ancestor)
                publish(src, ancestor, to, project, with_lineage=True, progress=progress,
                        cache_dir=cache_dir, **backend_options)
        with_lineage = True
    import artifactstore.api.store  # the API layer above the object store

    url = os.fspath(to)
    target = validate_project_name(project or src.project)
    version = src.artifact(ref)
    source = f"{src.project}/{version.ref}"
    options = {**src.backend_options, **backend_options}
    # create=False: the target store must exist (a mistyped URL makes nothing).
    with artifactstore.api.store.open(url, target, create=False, file_cache=False,
                                  cache_dir=cache_dir, **options) as probe:
        if (probe.url, target) == (src.url, src.project):
            raise InvalidInputError(f"{source} is already in project {target} of "
                                    f"{redact_url(url)}; publish into another project "
                                    "with --to-project")
    created_project = _ensure_public(url, target, options)
    manifest = build_manifest(src, version)
    if not with_lineage:
        manifest = dataclasses.replace(manifest, run_id=None, run=None)
    elif manifest.run is not None:
        mark = f"{PUBLISHED_FROM}={source}"
        manifest = dataclasses.replace(
            manifest, run=dataclasses.replace(manifest.run, tags=(*manifest.run.tags, mark)))
    with artifactstore.api.store.open(url, target, file_cache=False, cache_dir=cache_dir,
                                  **options) as dst, \
            materialized(src, version.record) as artifact:
        dst._ensure_writable()  # a write entry point of the target
        inputs = _match_inputs(dst, manifest, artifact.name) if with_lineage else ()
        run = _restored_run(dst, manifest)
        copy = _log(dst, artifact, (), run, manifest, inputs, progress)
    return PublishReport(source, redact_url(url), target, copy.ref, copy.digest, copy.created,
                         created_project, None if run is None else run.id,
                         manifest.run_id, inputs)


def _ancestors(src: Store, ref: str) -> list[str]:
    """The live versions upstream of ``ref`` in ``src``, each after its own inputs
    (a purged or deleted ancestor is not published: its run names it as missing)."""
    graph = src.upstream(ref, sync=True)
    me = src.lineage_node(ref)
    order = [n for n in _topological(graph) if n != me]
    return [str(n) for n in order
            if graph.nodes[n].get("kind") == "version"
            and graph.nodes[n].get("state", "live") == "live"]


def _topological(graph: Any) -> list[Any]:
    import networkx as nx  # the lineage graph's library

    return list(nx.topological_sort(graph))


def _ensure_public(url: str, project: str, options: dict[str, Any]) -> bool:
    """Create ``project`` public if missing (True), refuse it unless public."""
    try:
        summary = show_project(project, url, **options)
    except NotFoundError:
        create_project(project, url, visibility="public", **options)
        return True
    if summary.visibility != "public":
        # Why: publishing means anyone may read the copy; re-logging into a private
        # project is 'sync --to-project', not a publication.
        raise InvalidInputError(
            f"project {project!r} at {redact_url(url)} is {summary.visibility}, not public: "
            "publish into a public project with --to-project, or copy with "
            "'sync --to-project'")
    return False
