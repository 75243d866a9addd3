"""The web UI as a Starlette app over one opened :class:`artifactstore.Store`.

Routes: ``/`` sends to the runs table of the project the UI was started on; every page
of a project lives under ``/p/<project>/`` and has a JSON twin under ``/api/p/<project>/``
(or at ``?format=json``), see :mod:`.web`; the page modules in :data:`PAGES` give them:

- :mod:`.runpages`: ``/p/<project>/`` the runs table (``status``, ``tag``, ``job_type``
  filter it; ``sort=<column>``, ``order=desc`` order it), ``/p/<project>/runs/<id>``
  (and its ``/diff-code?other=<id>``) and ``/p/<project>/compare?runs=ID1,ID2,...``;
- :mod:`.projectpages`: ``/projects`` (JSON ``/api/projects``), the store's projects;
- ``/static/<asset>``: our scripts and styles and the vendored libraries, from the package.

Pages are Jinja2 templates with autoescape on; data a script needs travels as JSON in a
``<script type="application/json">`` element (``tojson`` escapes ``<``, ``>``, ``&``),
and the scripts put user text in the page with ``textContent`` only, so a hostile run
name is shown, never run. Every request passes :mod:`artifactstore.ui.access` first and
gets a Content-Security-Policy that allows only this origin's scripts.

The store is read only through its public API, one request at a time (:mod:`.web`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

import artifactstore
from artifactstore.core.errors import NotFoundError
from artifactstore.ui import artifactpages, lineagepages, mediapages, projectpages, runpages
from artifactstore.ui.access import COOKIE, token_ok
from artifactstore.ui.assets import asset_text
from artifactstore.ui.web import Site, project_base
from artifactstore.ui.workspace import Opener, Workspace

__all__ = ["create_app"]

MEDIA_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
#: our pages load only our own files; uPlot sets element styles from script
CSP: Final = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' "
              "'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
#: the page modules: each gives its routes (``routes(site)``), see :mod:`.web`
PAGES: Final = (runpages, mediapages, artifactpages, lineagepages, projectpages)

Call = Callable[[Request], Awaitable[Response]]


class _Guard(BaseHTTPMiddleware):
    """The token rule (access.py) and, on loopback, the Host check: a page of another
    site that rebinds its DNS name to 127.0.0.1 must not read the store."""

    def __init__(self, app: Any, token: str | None, hosts: frozenset[str] | None) -> None:
        super().__init__(app)
        self.token = token
        self.hosts = hosts

    async def dispatch(self, request: Request, call_next: Call) -> Response:
        if self.hosts is not None:
            host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
            if host not in self.hosts:
                return PlainTextResponse("this UI answers only at 127.0.0.1", status_code=403)
        given = request.query_params.get("token")
        if not token_ok(self.token, given or request.cookies.get(COOKIE)):
            return PlainTextResponse("open the URL with its ?token=... as "
                                     "'artifactstore ui' printed it", status_code=403)
        response = await call_next(request)
        # a stored HTML or SVG file keeps its own policy, web.SANDBOXED_FILE (stricter
        # than the pages': no script at all, nothing loaded), and can be framed by them
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if self.token is not None and given:
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict")
        return response


def create_app(store: artifactstore.Store, *, token: str | None = None,
               loopback: bool = False, opener: Opener | None = None) -> Starlette:
    """The app over ``store`` (opened by the caller, who closes it; the other projects
    of its store are opened on first use by ``opener``, see :mod:`.workspace`, and
    closed when the app stops). With ``token``, every request must carry it; with
    ``loopback``, the Host header must name 127.0.0.1, localhost or ::1 (the server is
    bound there)."""
    workspace = Workspace(store, opener)
    site = Site(workspace)

    def home(request: Request) -> Response:
        del request
        return RedirectResponse(project_base(store.project) + "/", status_code=302)

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        suffix = name[name.rfind("."):]
        if suffix not in MEDIA_TYPES:
            return PlainTextResponse("not found", status_code=404)
        try:
            text = asset_text(name)
        except NotFoundError:
            return PlainTextResponse("not found", status_code=404)
        return Response(text, media_type=MEDIA_TYPES[suffix])

    routes = [Route("/", home), Route("/static/{name:path}", static)]
    for module in PAGES:
        routes += module.routes(site)
    hosts = LOOPBACK_HOSTS if loopback else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        try:
            yield
        finally:
            workspace.close()

    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(_Guard, token=token, hosts=hosts)])
