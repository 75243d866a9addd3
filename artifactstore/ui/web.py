"""What every page module of the web UI shares: the :class:`Site` (templates, the
projects, the read lock) and the plumbing of one page.

Vocabulary:

- **page**: a handler ``(site, request, store) -> dict`` returning what the page shows
  as plain data; :meth:`Site.routes` serves it twice, as HTML rendered from a template
  at ``/p/<project>/...`` and as JSON at ``/api/p/<project>/...`` (also ``?format=json``).
- **project path**: every page of a project lives under ``/p/<project>/``; templates
  build links with ``base`` (that prefix, given to every template), scripts read it from
  ``document.body.dataset.base``.

Errors of the library become pages with the right status (404 not found, 400 bad
input, 403 access denied, else 500) and one line; nothing else is caught. The store is
read one request at a time (a lock): handlers are plain functions Starlette runs in its
thread pool, and the library's objects are not shared between threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

import artifactstore
from artifactstore.core.errors import (
    AccessDeniedError,
    ArtifactStoreError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.ui.workspace import Workspace

__all__ = ["SANDBOXED_FILE", "Handler", "Site", "arg", "project_base", "wants_json"]

Handler = Callable[["Site", Request, artifactstore.Store], dict[str, Any]]
#: response header naming how long the handler took (read by the benchmark and the
#: browser's devtools: the W3C Server-Timing header)
TIMING: Final = "Server-Timing"
#: the policy of a stored file that may hold script (HTML, SVG) served by the app: a
#: unique origin that runs no script and loads nothing but inline data
SANDBOXED_FILE: Final = ("sandbox; default-src 'none'; img-src data:; media-src data:; "
                         "font-src data:; style-src 'unsafe-inline'")


def arg(request: Request, name: str) -> str | None:
    """A query argument, None when absent or empty."""
    return request.query_params.get(name) or None


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.query_params.get("format") == "json"


def project_base(project: str) -> str:
    """The path prefix of a project's pages (``/p/<project>``)."""
    return "/p/" + quote(project, safe="")


class Site:
    """The templates, the projects and the read lock of one app."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.lock = threading.Lock()
        self.env = Environment(loader=PackageLoader("artifactstore.ui", "templates"),
                               autoescape=select_autoescape(default=True,
                                                            default_for_string=True))

    def render(self, request: Request, template: str, data: dict[str, Any], *,
               project: str | None = None, status: int = 200) -> Response:
        """``data`` as JSON (a JSON request) or as ``template`` rendered with it."""
        if wants_json(request):
            return JSONResponse(data, status_code=status)
        project = project or self.workspace.default.project
        # the team server (server/uimount.py) names the signed-in user: a sign-out button
        user = request.scope.get("artifactstore.user")
        html = self.env.get_template(template).render(
            project=project, base=project_base(project), url=self.workspace.url,
            user=user, **data)
        return HTMLResponse(html, status_code=status)

    def failed(self, request: Request, exc: ArtifactStoreError,
               project: str | None = None) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else \
            400 if isinstance(exc, InvalidInputError) else \
            403 if isinstance(exc, AccessDeniedError) else 500
        message = " ".join(str(exc).split())
        if wants_json(request):
            return JSONResponse({"error": type(exc).__name__, "message": message},
                                status_code=status)
        return self.render(request, "error.html", {"message": message, "status": status},
                           project=project, status=status)

    def run(self, request: Request, handler: Handler, template: str) -> Response:
        """Call ``handler`` for the request's project under the lock; render its data."""
        project = request.path_params.get("project") or self.workspace.default.project
        started = time.perf_counter()
        try:
            with self.lock:
                store = self.workspace.store(project)
                data = handler(self, request, store)
        except ArtifactStoreError as exc:
            return self.failed(request, exc, project)
        took = (time.perf_counter() - started) * 1000
        response = self.render(request, template, data, project=project)
        response.headers[TIMING] = f"handler;dur={took:.1f}"
        return response

    def routes(self, path: str, handler: Handler, template: str) -> list[Route]:
        """The HTML route ``/p/{project}<path>`` and its JSON twin under ``/api``."""
        def endpoint(request: Request) -> Response:
            return self.run(request, handler, template)

        full = "/p/{project}" + path
        return [Route(full, endpoint, name=f"{template}:{path}"),
                Route("/api" + full, endpoint)]
