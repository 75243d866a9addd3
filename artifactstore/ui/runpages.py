"""The runs pages of the web UI: the runs table (``/p/<project>/``), one run
(``/p/<project>/runs/<id>``, a unique prefix of the id is enough; ``?since=<step>``
asks only for what a live page has not drawn yet), the code diff of two runs
(``/p/<project>/runs/<id>/diff-code?other=<id>``) and the runs compared
(``/p/<project>/compare?runs=ID1,ID2,...``); what they show is computed in
:mod:`artifactstore.ui.views`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

import artifactstore
from artifactstore.core.errors import InvalidInputError
from artifactstore.ui import views
from artifactstore.ui.web import Site, arg

__all__ = ["routes"]


def runs_table(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    order = arg(request, "order")
    if order not in (None, "asc", "desc"):
        raise InvalidInputError(f"order is asc or desc, not {order!r:.40}")
    return views.runs_table(store, status=arg(request, "status"), tag=arg(request, "tag"),
                            job_type=arg(request, "job_type"), sort=arg(request, "sort"),
                            descending=order == "desc",
                            offset=_count(request, "offset", 0),
                            limit=_count(request, "limit", views.PAGE_ROWS),
                            where=arg(request, "where"))


def _count(request: Request, name: str, default: int) -> int:
    text = arg(request, name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidInputError(f"{name} is a number of rows, not {text!r:.40}")
    return int(text)


def run_page(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    since = arg(request, "since")
    if since is not None and not since.isdigit():
        raise InvalidInputError(f"since is a step number, not {since!r:.40}")
    return views.run_page(store, request.path_params["run_id"],
                          since=None if since is None else int(since))


def diff_code(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    other = arg(request, "other")
    if other is None:
        raise InvalidInputError("name the run to compare with: ?other=<run id>")
    # git diff asks the repository of the directory the UI was started in, as the
    # command 'runs diff-code' does; the diff's notes say when it does not hold both
    diff = store.diff_code(request.path_params["run_id"], other)
    return {"diff": views.plain(diff.as_dict())}


def compare(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    return views.compare_page(store, views.run_ids(arg(request, "runs")))


def routes(site: Site) -> list[Route]:
    return [*site.routes("/", runs_table, "runs.html"),
            *site.routes("/runs/{run_id}", run_page, "run.html"),
            *site.routes("/runs/{run_id}/diff-code", diff_code, "code_diff.html"),
            *site.routes("/compare", compare, "compare.html")]
