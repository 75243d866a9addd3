"""The gate of an *open* server: no sign-in, one role for everybody.

``[roles] everyone = "admin"`` (or ``"writer"``, ``"reader"``) in ``server.toml`` is a
real mode: a single-user server, or one on a trusted network where every caller may do
what that role allows in every project. :func:`open_gate` builds it, and
``artifactstore serve`` says so loudly at start. Tokens are not accepted (there is no
token store to check them against): a request carrying one is refused with 401, so a
client that believes it is signed in learns it is not. Servers with sign-in use the
authenticators of :mod:`.authn` and the authorizer of :mod:`.authz` instead.

Keys under ``server/`` (tokens, audit) are never served, whatever the role.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from starlette.requests import HTTPConnection

from artifactstore.core.errors import ConfigurationError, NotAuthorizedError, NotSignedInError
from artifactstore.server.gate import Action
from artifactstore.server.principal import ANONYMOUS, Principal, Role

__all__ = ["SERVER_PREFIX", "BearerAuthenticator", "NoAudit", "OpenAuthorizer", "open_role"]

#: the server's own keys in the backing store: never read or written by clients
SERVER_PREFIX: Final = "server/"
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
