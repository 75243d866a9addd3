"""The projects page of the web UI: ``/projects`` (JSON twin ``/api/projects``), every
project of the store the UI reads, with its visibility, whether this user can open it
(a private project the user is not a member of is listed as locked) and its counts of
runs and artifacts; each readable one links to its runs table ``/p/<project>/``."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from artifactstore.core.errors import ArtifactStoreError
from artifactstore.ui.web import TIMING, Site, project_base

__all__ = ["routes"]


def routes(site: Site) -> list[Route]:
    def projects(request: Request) -> Response:
        started = time.perf_counter()
        default = site.workspace.default
        try:
            with site.lock:
                found = default.projects()
        except ArtifactStoreError as exc:
            return site.failed(request, exc)
        # the team server (server/uimount.py) lists only what the caller may read
        readable = request.scope.get("artifactstore.readable")
        rows = [{**p.as_dict(), "base": project_base(p.project),
                 "current": p.project == default.project} for p in found
                if readable is None or readable(p.project)]
        response = site.render(request, "projects.html", {"projects": rows})
        response.headers[TIMING] = f"handler;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return [Route("/projects", projects), Route("/api/projects", projects)]
