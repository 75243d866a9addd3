"""The three questions every request to the team server answers, as contracts.

1. **Who is asking?** an :class:`Authenticator` turns a request's ``Authorization:
   Bearer`` token or session cookie into a :class:`~.principal.Principal`
   (``signin``/``tokens`` implement it). No credential at all is the anonymous
   principal; a credential that is wrong, expired or revoked raises NotSignedInError.
2. **May they?** an :class:`Authorizer` decides an :class:`Action` on a key from the
   key alone and the caller's roles (``authz`` implements it): it raises
   NotSignedInError when signing in could help (anonymous), NotAuthorizedError when
   it would not (a reader writing).
3. **What happened?** an :class:`AuditTrail` records every write, delete and
   membership change with the caller, whatever the outcome (``audit``).

The object routes (``objects``) and the web UI ask them in that order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import Protocol

from starlette.requests import HTTPConnection

from artifactstore.server.principal import Principal, Role

__all__ = ["Action", "AuditTrail", "Authenticator", "Authorizer"]


class Action(enum.Enum):
    """What a request does to one key (the object protocol's verbs, design §8)."""

    READ = "read"  # get, ranged get, stat/exists
    LIST = "list"  # list keys under a prefix (results are filtered by READ)
    CREATE = "create"  # put_if_absent
    PUT = "put"  # put that may replace an existing object
    DELETE = "delete"

    @property
    def writes(self) -> bool:
        return self in (Action.CREATE, Action.PUT, Action.DELETE)


class Authenticator(Protocol):
    def principal(self, request: HTTPConnection) -> Principal:
        """The caller; ANONYMOUS without credentials; NotSignedInError for a bad one."""
        ...


class Authorizer(Protocol):
    def check(self, principal: Principal, action: Action, key: str) -> None:
        """Return if allowed; raise NotSignedInError or NotAuthorizedError otherwise."""
        ...

    def visible(self, principal: Principal, keys: Iterable[str]) -> Iterator[str]:
        """The keys of a listing this caller may READ (others are left out silently)."""
        ...

    def role(self, principal: Principal, project: str) -> Role:
        """The caller's role in ``project`` (token scope applied); Role.NONE if none."""
        ...


class AuditTrail(Protocol):
    def record(self, principal: Principal, action: Action, key: str, status: int) -> None:
        """Append one entry (who, what, which key, the HTTP status it got)."""
        ...
