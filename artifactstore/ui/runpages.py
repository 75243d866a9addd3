"""The runs pages of the web UI: the runs table (``/p/<project>/``) and one run
(``/p/<project>/runs/<id>``, a unique prefix of the id is enough); what they show is
computed in :mod:`artifactstore.ui.views`."""

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
                            limit=_count(request, "limit", views.PAGE_ROWS))


def _count(request: Request, name: str, default: int) -> int:
    text = arg(request, name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidInputError(f"{name} is a number of rows, not {text!r:.40}")
    return int(text)


def run_page(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    return views.run_page(store, request.path_params["run_id"])


def routes(site: Site) -> list[Route]:
    return [*site.routes("/", runs_table, "runs.html"),
            *site.routes("/runs/{run_id}", run_page, "run.html")]
