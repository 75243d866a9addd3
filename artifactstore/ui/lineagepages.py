"""The lineage pages of the web UI: ``/p/<project>/lineage`` (the whole project's graph,
or with ``?ref=<name:vN|run:id>`` the graph around that node, up- and downstream,
``?depth=N`` generations each way) and ``/p/<project>/audit/<ref>`` (the audit of a
version, ``?sample=0.1`` checks that fraction of its chunks).

Both draw the page data of :mod:`.reports` (the same as ``lineage --html`` and
``audit --html`` write) with the same script, ``static/graph.js``; the data carries the
project's ``base`` path, with which the script links versions and runs to their pages.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

import artifactstore
from artifactstore.core.errors import InvalidInputError
from artifactstore.ui import reports
from artifactstore.ui.views import plain
from artifactstore.ui.web import Site, arg, project_base

__all__ = ["routes"]


def _depth(request: Request) -> int | None:
    given = arg(request, "depth")
    if given is None:
        return None
    if not given.isdigit():
        raise InvalidInputError(f"depth is a number of generations (0, 1, 2, ...), "
                                f"not {given!r:.40}")
    return int(given)


def _sample(request: Request) -> float | None:
    given = arg(request, "sample")
    if given is None:
        return None
    try:
        return float(given)
    except ValueError:
        raise InvalidInputError(f"sample is a fraction in (0, 1], not {given!r:.40}") from None


def lineage_page(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    ref, depth = arg(request, "ref"), _depth(request)
    if ref is None:
        graph, focus = store.lineage(), None
        title = f"Lineage of project {store.project}"
    else:
        focus = store.lineage_node(ref)
        graph = store.upstream(focus, depth, sync=False)
        around = store.downstream(focus, depth, sync=False)
        graph.add_nodes_from(around.nodes(data=True))
        graph.add_edges_from(around.edges(data=True))
        title = f"Lineage around {focus}"
    data = reports.graph_data(store, graph, focus=focus, title=title)
    data.update(base=project_base(store.project), ref=ref, depth=depth)
    return {"graph": plain(data)}


def audit_page(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    report = store.audit(request.path_params["ref"], sample=_sample(request))
    data = reports.audit_data(store, report)
    data["base"] = project_base(store.project)
    return {"graph": plain(data), "ok": report.ok}


def routes(site: Site) -> list[Route]:
    return [*site.routes("/lineage", lineage_page, "lineage.html"),
            *site.routes("/audit/{ref}", audit_page, "audit.html")]
