"""The team server's Starlette app: the object protocol, health, readiness, whoami, and
an access log line per request.

:func:`create_server_app` puts together the backing store (opened from the settings
unless given), the gate (authenticator, authorizer, audit trail; without them the
settings must say ``[roles] everyone = "..."``, an open server, see :mod:`.opengate`)
and the routes of :mod:`.objects`. The app keeps no state of its own between requests
but short-lived listing pages, so any number of instances can serve one store.

The access log is one JSON object per line on the logger ``artifactstore.server.access``
(``artifactstore serve`` prints it on stderr): ``time``, ``method``, ``path`` (with the
key), ``query`` (of listings only), ``status``, ``bytes`` sent, ``ms``, ``principal`` (who, as
:attr:`~.principal.Principal.label` says it) and ``client`` (the peer's address; behind
a proxy on this machine, the one its ``X-Forwarded-For`` names). Never a header, a
token, a cookie or a body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artifactstore.backends import open_backend_stack, redact_url
from artifactstore.backends.base import Backend
from artifactstore.core.errors import ArtifactStoreError, ConfigurationError
from artifactstore.objects.layout import CONFIG_KEY
from artifactstore.server.audit import StoreAuditTrail, audit_route
from artifactstore.server.authmount import add_sign_in, add_web_ui, sign_in_authenticator
from artifactstore.server.authn import ServerAuthenticator
from artifactstore.server.authz import KeyPolicy
from artifactstore.server.gate import AuditTrail, Authenticator, Authorizer
from artifactstore.server.objects import ObjectRoutes, error_response
from artifactstore.server.opengate import (
    BearerAuthenticator,
    HostCheck,
    NoAudit,
    OpenAuthorizer,
    open_hosts,
    open_role,
)
from artifactstore.server.principal import Principal
from artifactstore.server.settings import ServerSettings
from artifactstore.server.uploads import UploadBudget

__all__ = ["ACCESS_LOG", "create_server_app"]

ACCESS_LOG: Final = "artifactstore.server.access"
_log = logging.getLogger("artifactstore.server")

#: the projects and roles whoami reports for a caller (None: the authorizer's roles
#: are not enumerable, whoami says {})
RolesOf = Callable[[Principal], Mapping[str, str]]


def create_server_app(settings: ServerSettings, *, backend: Backend | None = None,
                      authenticator: Authenticator | None = None,
                      authorizer: Authorizer | None = None,
                      audit: AuditTrail | None = None,
                      roles_of: RolesOf | None = None,
                      routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The app over ``backend`` (default: ``settings.store_url``, opened here and closed
    when the app stops). ConfigurationError when no gate is given and the settings do
    not open the server to everyone. ``routes`` are served too, after the protocol's
    (sign-in, tokens, the web UI); a route sets ``request.state.principal`` to the
    caller's label for the access log. ``roles_of`` answers whoami's ``roles``."""
    # AUTH: with [[issuers]] and no open role, the [roles] table decides (below)
    signed_in = authorizer is None and bool(settings.issuers) \
        and open_role(settings.roles) is None
    if authorizer is None and not signed_in:
        role = open_role(settings.roles)
        if role is None:
            raise ConfigurationError(
                "this server has no sign-in configured: set [roles] everyone = \"reader\" "
                "(or writer, admin) in its settings for an open server")
        authorizer = OpenAuthorizer(role)
        _log.warning("OPEN SERVER: everyone, signed in or not, is %s in every project of "
                     "%s; serve it only to people you trust", role.label,
                     redact_url(settings.store_url))
        if roles_of is None:
            roles_of = _everyone(role.label)
        hosts: frozenset[str] | None = open_hosts(settings.public_url)
    else:
        hosts = None
    if roles_of is None:  # whoami's roles: the authorizer's (server.authz) if it says
        roles_of = getattr(authorizer, "roles", None)
    owned = backend is None
    store = (open_backend_stack(settings.store_url, **settings.store_options)
             if backend is None else backend)
    # -- AUTH (server/authmount.py): with [[issuers]], API tokens and browser sessions --
    if authenticator is None and settings.issuers:
        authenticator = sign_in_authenticator(settings, store)
    gate_in = authenticator or BearerAuthenticator()
    ui_stores: list[Any] = []
    extra = list(routes)
    if authorizer is None:  # signed_in: KeyPolicy (server/authz.py) and the audit log
        policy = KeyPolicy.from_settings(settings, store)
        authorizer = policy
        roles_of = roles_of or policy.roles
        audit = audit or StoreAuditTrail(store)
        extra.append(audit_route(gate_in, policy.server_admin, store))
    # -- end AUTH --
    objects = ObjectRoutes(store, authenticator=gate_in, authorizer=authorizer,
                           audit=audit or NoAudit(), max_bytes=settings.max_object_bytes,
                           budget=UploadBudget(settings.upload_buffer_bytes
                                               or 4 * settings.max_object_bytes))

    async def healthz(request: Request) -> Response:
        del request
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        del request
        try:
            ready = await run_in_threadpool(store.exists, CONFIG_KEY)
        except ArtifactStoreError as exc:
            return error_response(exc, hide=store.url)
        if not ready:
            return JSONResponse({"error": "unavailable", "message": "the server's store has "
                                 "no config; create it with 'artifactstore init'"},
                                status_code=503)
        return JSONResponse({"ok": True})

    async def whoami(request: Request) -> Response:
        try:
            who = await run_in_threadpool(gate_in.principal, request)
        except ArtifactStoreError as exc:
            return error_response(exc)
        request.state.principal = who.label
        roles = dict(roles_of(who)) if roles_of is not None else {}
        return JSONResponse({"user": who.subject, "email": who.email, "name": who.name,
                             "token": who.token_id, "roles": roles})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        try:
            yield
        finally:
            for opened in ui_stores:  # AUTH: the web UI's store
                opened.close()
            if owned:
                store.close()

    async def library_error(request: Request, exc: Exception) -> Response:
        del request
        return error_response(exc, hide=store.url)

    async def http_error(request: Request, exc: Exception) -> Response:
        del request
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "bad_request")
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return JSONResponse({"error": code, "message": str(detail)}, status_code=status)

    served = [Route("/healthz", healthz, methods=["GET", "HEAD"]),
              Route("/readyz", readyz, methods=["GET", "HEAD"]),
              Route("/v1/whoami", whoami, methods=["GET"]), *objects.routes(), *extra]
    app = Starlette(routes=served, lifespan=lifespan,
                    exception_handlers={ArtifactStoreError: library_error,
                                        HTTPException: http_error})
    # -- AUTH: sign-in and token routes, the session cookie, the web UI (router default) --
    if isinstance(gate_in, ServerAuthenticator):
        add_sign_in(app, settings, gate_in, authorizer)
    ui_store = add_web_ui(app, settings, gate_in, authorizer)
    if ui_store is not None:
        ui_stores.append(ui_store)
    # -- end AUTH --
    if hosts is not None:  # an open server: no DNS rebinding (opengate.py)
        app.add_middleware(HostCheck, hosts=hosts)
    app.add_middleware(AccessLog)
    app.state.objects = objects
    return app


def _everyone(label: str) -> RolesOf:
    return lambda principal: {"*": label}


class AccessLog:
    """One JSON line per request on :data:`ACCESS_LOG` (pure ASGI: bodies stream)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOG)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        seen = {"status": 500, "bytes": 0, "logged": False}

        def log() -> None:
            seen["logged"] = True
            entry = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "method": scope["method"], "path": scope["path"],
                "status": seen["status"], "bytes": seen["bytes"],
                "ms": round((time.perf_counter() - began) * 1000, 1),
                "principal": state.get("principal", "anonymous"),
                "client": (scope.get("client") or ("-",))[0],
            }
            query = scope.get("query_string", b"")
            if query and scope["path"] == "/v1/list":  # only a listing's: other queries
                # (a sign-in callback's one-time code, a state) are never logged
                entry["query"] = query.decode("latin-1")[:400]
            self.log.info(json.dumps(entry, ensure_ascii=False))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    log()  # before the last bytes go, so ms is the server's time
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if not seen["logged"]:  # the app failed before it finished an answer
                log()
