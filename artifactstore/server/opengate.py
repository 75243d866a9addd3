"""The gate of an *open* server: no sign-in, one role for everybody.

``[roles] everyone = "admin"`` (or ``"writer"``, ``"reader"``) in ``server.toml`` is a
real mode: a single-user server, or one on a trusted network where every caller may do
what that role allows in every project. :func:`open_gate` builds it, and
``artifactstore serve`` says so loudly at start. Tokens are not accepted (there is no
token store to check them against): a request carrying one is refused with 401, so a
client that believes it is signed in learns it is not. Servers with sign-in use the
authenticators of :mod:`.authn` and the authorizer of :mod:`.authz` instead.

Keys under ``server/`` (tokens, audit) are never served, whatever the role.

An open server answers only requests whose ``Host`` is a loopback name or the host of
the settings' ``public_url`` (:class:`HostCheck`). Why: with nobody signed in, a web
page any user of the machine (or of the LAN) visits could otherwise **DNS-rebind** its
own name to the server's address and then read, overwrite and delete through the
user's browser with no cross-origin check in the way. A server with sign-in needs no
such rule: a rebound name carries none of the server's cookies, and tokens never sit
in a browser.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from artifactstore.core.errors import ConfigurationError, NotAuthorizedError, NotSignedInError
from artifactstore.server.gate import Action
from artifactstore.server.principal import ANONYMOUS, Principal, Role

__all__ = ["LOOPBACK_NAMES", "SERVER_PREFIX", "BearerAuthenticator", "HostCheck", "NoAudit",
           "OpenAuthorizer", "open_hosts", "open_role"]

#: the server's own keys in the backing store: never read or written by clients
SERVER_PREFIX: Final = "server/"
LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_NEEDS: Final = {Action.READ: Role.READER, Action.LIST: Role.READER,
                 Action.CREATE: Role.WRITER, Action.PUT: Role.WRITER,
                 Action.DELETE: Role.ADMIN}


def open_role(roles: Mapping[str, Any]) -> Role | None:
    """The role ``[roles] everyone = "..."`` grants everybody; None if the table does not
    say (then the server needs sign-in and the real authorizer)."""
    value = roles.get("everyone")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError('[roles] everyone must be "reader", "writer" or "admin"')
    try:
        return Role.parse(value)
    except ValueError as exc:
        raise ConfigurationError(f"[roles] everyone: {exc}") from None


class BearerAuthenticator:
    """Everybody is anonymous; a request carrying a token or a session is refused."""

    def principal(self, request: HTTPConnection) -> Principal:
        if request.headers.get("authorization"):
            raise NotSignedInError("this server has no sign-in: it accepts no token; "
                                   "unset ARTIFACTSTORE_TOKEN or run 'artifactstore logout URL'")
        return ANONYMOUS


class OpenAuthorizer:
    """Everybody holds ``role`` in every project."""

    def __init__(self, role: Role) -> None:
        self.granted = role

    def check(self, principal: Principal, action: Action, key: str) -> None:
        if key.startswith(SERVER_PREFIX):
            raise NotAuthorizedError(f"{key!r} is the server's own data; nobody reads or "
                                     "writes it through the object protocol")
        if self.granted < _NEEDS[action]:
            raise NotAuthorizedError(
                f"{action.value} {key!r}: everyone is {self.granted.label} on this server "
                f"and this needs {_NEEDS[action].label}; ask its operator")

    def visible(self, principal: Principal, keys: Iterable[str]) -> Iterator[str]:
        return (key for key in keys if not key.startswith(SERVER_PREFIX))

    def role(self, principal: Principal, project: str) -> Role:
        return self.granted


class NoAudit:
    """No audit trail (the access log still has every request)."""

    def record(self, principal: Principal, action: Action, key: str, status: int) -> None:
        return None


def open_hosts(public_url: str | None) -> frozenset[str]:
    """The host names an open server answers: loopback ones and ``public_url``'s."""
    host = urlsplit(public_url).hostname if public_url else None
    return LOOPBACK_NAMES | ({host.lower()} if host else set())


class HostCheck:
    """ASGI middleware: 403 ``not_authorized`` for a ``Host`` outside ``hosts``."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            try:
                host = (urlsplit("//" + raw).hostname or "").lower()
            except ValueError:
                host = ""
            if host not in self.hosts:
                body = json.dumps({"error": "not_authorized", "message": (
                    f"this open server answers only {', '.join(sorted(self.hosts))}: set "
                    "public_url in its settings to the address people use")}).encode()
                await send({"type": "http.response.start", "status": 403, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
