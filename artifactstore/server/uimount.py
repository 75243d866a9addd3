"""The web UI (:mod:`artifactstore.ui`) served by the team server, behind sign-in.

The server opens the projects itself, over its backing store, with the library (the
UI reads through :class:`artifactstore.Store` as a script would). So the UI does not
pass through the object routes' per-key checks: this gate decides each page instead,
from the project in its path (``/p/<project>/...``, ``/api/p/<project>/...``) and the
caller's role there (``authorizer.role``, token scope applied):

- at least reader: the page;
- no role and not signed in: a redirect to ``/signin?next=<this page>``;
- signed in without a role: a 403 page (nothing about the project is shown);
- a credential that does not hold (an expired token): the sign-in redirect too.

The projects list (``/projects``) names only the projects the caller may read. ``/``
goes to it. A public project opens with no identity; a private one only if the server
process holds an identity that is a member (``server_identity``: the folder given as
the server's ``ARTIFACTSTORE_CONFIG_DIR``, docs/server.md, with its trade-off: that
server can then decrypt the project); otherwise its pages say it is locked. The UI's
own URL-token rule is off here: sign-in replaces it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from artifactstore.core.errors import ArtifactStoreError
from artifactstore.server.gate import Authenticator, Authorizer
from artifactstore.server.principal import Principal, Role

__all__ = ["UiGate", "project_of", "server_ui"]

#: paths of the UI that name no project, open to anyone (scripts and styles)
OPEN_PREFIXES: Final = ("/static/",)
PROJECT_LISTS: Final = frozenset({"/projects", "/api/projects"})


def project_of(path: str) -> str | None:
    """The project a UI path is about (``/p/<name>/...`` or ``/api/p/<name>/...``).
    ``path`` is the ASGI path, already percent-decoded once, as the UI's routes see it:
    decoding it again would let ``%2541`` name one project here and another there."""
    rest = path.removeprefix("/api")
    if not rest.startswith("/p/"):
        return None
    return rest[3:].split("/", 1)[0] or None


def _refusal(status: int, title: str, text: str, api: bool) -> Response:
    if api:
        code = "not_signed_in" if status == 401 else "not_authorized"
        return JSONResponse({"error": code, "message": text}, status_code=status)
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        '<form method=post action="/signout"><button>Sign out</button></form>',
        status_code=status, headers={"Content-Security-Policy": "default-src 'none'; "
                                     "form-action 'self'"})


class UiGate:
    """Pure ASGI: decide each UI request, then hand it to the UI app."""

    def __init__(self, ui: ASGIApp, authenticator: Authenticator,
                 authorizer: Authorizer) -> None:
        self.ui = ui
        self.authenticator = authenticator
        self.authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.ui(scope, receive, send)
            return
        # deciding may read the store (a token's record): off the event loop
        response = await run_in_threadpool(self.decide, HTTPConnection(scope))
        if response is not None:
            await response(scope, receive, send)
            return
        await self.ui(scope, receive, send)

    def decide(self, request: HTTPConnection) -> Response | None:
        """None to serve the page, else the refusal or redirect."""
        path = request.url.path
        if path.startswith(OPEN_PREFIXES):
            return None
        if path == "/":
            return RedirectResponse("/projects", status_code=302)
        api = path.startswith("/api/")
        back = path + (f"?{request.url.query}" if request.url.query else "")
        to_signin = "/signin?" + urlencode({"next": back})
        try:
            principal = self.authenticator.principal(request)
        except ArtifactStoreError as exc:
            if api:
                return _refusal(401, "Sign in", str(exc), api)
            return RedirectResponse(to_signin, status_code=302)
        request.scope.setdefault("state", {})["principal"] = principal.label
        if not principal.anonymous:  # the pages show who is signed in, and a sign-out
            request.scope["artifactstore.user"] = principal.email or principal.label
        if path in PROJECT_LISTS:
            request.scope["artifactstore.readable"] = self._readable(principal)
            return None
        project = project_of(path)
        if project is None:
            return _refusal(404, "Not found", "no such page", api)
        if self.authorizer.role(principal, project) >= Role.READER:
            return None
        if principal.anonymous:
            if api:
                return _refusal(401, "Sign in", "sign in to see this project", api)
            return RedirectResponse(to_signin, status_code=302)
        return _refusal(403, "Not allowed", f"{principal.label} has no role in this "
                        "project; ask one of its admins", api)

    def _readable(self, principal: Principal) -> Any:
        def readable(project: str) -> bool:
            return self.authorizer.role(principal, project) >= Role.READER
        return readable


def server_ui(store_url: str, authenticator: Authenticator, authorizer: Authorizer,
              store_options: Mapping[str, Any] | None = None) -> tuple[UiGate, Any]:
    """The gated UI over the store at ``store_url`` (its default project opened
    read-only, with the server's ``store_options``), and the opened store to close
    when the server stops."""
    import artifactstore
    from artifactstore.ui.app import create_app

    store = artifactstore.open(store_url, create=False, **(store_options or {}))
    app = create_app(store)  # no URL token, no loopback rule: the gate signs people in
    return UiGate(app, authenticator, authorizer), store
