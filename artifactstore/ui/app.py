"""The web UI as a Starlette app over one opened :class:`artifactstore.Store`.

Routes (each page has a JSON twin, at ``?format=json`` or under ``/api``):

- ``/`` and ``/api/runs``: the runs table; query arguments ``status``, ``tag``,
  ``job_type`` filter it, ``sort=<column>`` (``sort=config.lr``) and ``order=desc``
  order it (:mod:`artifactstore.ui.views`);
- ``/runs/<id>`` and ``/api/runs/<id>``: one run (a unique prefix of its id is enough),
  with a downsampled series per metric;
- ``/static/<asset>``: our script and style and the vendored libraries, from the package.

Pages are Jinja2 templates with autoescape on; data a script needs travels as JSON in a
``<script type="application/json">`` element (``tojson`` escapes ``<``, ``>``, ``&``),
and the scripts put user text in the page with ``textContent`` only, so a hostile run
name is shown, never run. Every request passes :mod:`artifactstore.ui.access` first.

The store is read only through its public API, one request at a time (a lock): the
handlers are plain functions Starlette runs in its thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import artifactstore
from artifactstore.core.errors import ArtifactStoreError, InvalidInputError, NotFoundError
from artifactstore.ui import views
from artifactstore.ui.access import COOKIE, token_ok
from artifactstore.ui.assets import asset_text

__all__ = ["create_app"]

MEDIA_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
#: our pages load only our own files; uPlot sets element styles from script
CSP: Final = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' "
              "'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})

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
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if self.token is not None and given:
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict")
        return response


def _arg(request: Request, name: str) -> str | None:
    return request.query_params.get(name) or None


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.query_params.get("format") == "json"


def create_app(store: artifactstore.Store, *, token: str | None = None,
               loopback: bool = False) -> Starlette:
    """The app over ``store`` (opened by the caller, who closes it). With ``token``,
    every request must carry it; with ``loopback``, the Host header must name
    127.0.0.1, localhost or ::1 (the server is bound there)."""
    env = Environment(loader=PackageLoader("artifactstore.ui", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    lock = threading.Lock()
    project = store.project

    def page(request: Request, template: str, data: dict[str, Any]) -> Response:
        if _wants_json(request):
            return JSONResponse(data)
        html = env.get_template(template).render(project=project, url=store.url, **data)
        return HTMLResponse(html)

    def failed(request: Request, exc: ArtifactStoreError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else \
            400 if isinstance(exc, InvalidInputError) else 500
        message = " ".join(str(exc).split())
        if _wants_json(request):
            return JSONResponse({"error": type(exc).__name__, "message": message},
                                status_code=status)
        html = env.get_template("error.html").render(project=project, message=message,
                                                     status=status)
        return HTMLResponse(html, status_code=status)

    def runs(request: Request) -> Response:
        order = _arg(request, "order")
        try:
            if order not in (None, "asc", "desc"):
                raise InvalidInputError(f"order is asc or desc, not {order!r:.40}")
            with lock:
                data = views.runs_table(store, status=_arg(request, "status"),
                                        tag=_arg(request, "tag"),
                                        job_type=_arg(request, "job_type"),
                                        sort=_arg(request, "sort"), descending=order == "desc")
        except ArtifactStoreError as exc:
            return failed(request, exc)
        return page(request, "runs.html", data)

    def run(request: Request) -> Response:
        try:
            with lock:
                data = views.run_page(store, request.path_params["run_id"])
        except ArtifactStoreError as exc:
            return failed(request, exc)
        return page(request, "run.html", data)

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

    routes = [
        Route("/", runs), Route("/api/runs", runs),
        Route("/runs/{run_id}", run), Route("/api/runs/{run_id}", run),
        Route("/static/{name:path}", static),
    ]
    hosts = LOOPBACK_HOSTS if loopback else None
    return Starlette(routes=routes, middleware=[Middleware(_Guard, token=token, hosts=hosts)])
