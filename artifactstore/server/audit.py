"""The team server's append-only audit log: who wrote, overwrote or deleted which key.

Every write request (create, put, delete) that reaches the object routes is recorded,
allowed or refused, as ONE object ``server/audit/<ms:015d>-<random>`` in the backing
store (``put_if_absent``: entries are never replaced; several instances append side by
side without coordination, their names sort by time). An entry is a small JSON map::

    {"at": 1765054201.123, "user": "bob@example.com (token t1)", "subject": "company#bob",
     "token": "t1", "action": "create", "key": "projects/vis/members/0000000002",
     "kind": "membership", "status": 201, "instance": "host-1:4711"}

``kind`` sorts the key: ``membership`` (member events: who joined or left),
``keys`` (key epochs and slots), ``lifecycle`` (delete, restore, purge, retention),
``project`` (the project record), ``records`` (versions, aliases, runs), ``objects``
(packs, index objects), ``gc``, ``config``, ``other``. Entries never hold request
bodies, tokens or cookies: the key and the caller's label only (a private project's
keys name no artifact, design §13.3).

Keys under ``server/`` are never served to clients (server/keyrules.py); server admins
read the log with ``GET /v1/audit`` (:func:`audit_route`) or ``artifactstore
server-audit URL``. Whoever holds the bucket itself can still delete entries: keep the
bucket's own object versioning or an object lock on ``server/audit/`` for a log that
even a storage admin cannot rewrite (docs/server.md, "Roles").
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from artifactstore.backends import Backend
from artifactstore.core.errors import (
    ArtifactStoreError,
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
)
from artifactstore.server.gate import Action, Authenticator
from artifactstore.server.principal import Principal

__all__ = ["AUDIT_PREFIX", "AuditEntry", "StoreAuditTrail", "audit_route", "read_audit"]

AUDIT_PREFIX: Final = "server/audit/"
#: the most entries one ``GET /v1/audit`` answers (the client pages with ``after``)
PAGE_LIMIT: Final = 1000

log = logging.getLogger("artifactstore.server")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded request; ``name`` is its object's name under ``server/audit/``."""

    at: float
    user: str
    subject: str | None
    token: str | None
    action: str
    key: str
    kind: str
    status: int
    instance: str
    name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def kind_of(key: str) -> str:
    """The ``kind`` of an entry for ``key`` (see the module docstring)."""
    parts = key.split("/")
    if parts[0] == "projects" and len(parts) >= 3:
        section = parts[2]
        if section == "members":
            return "membership"
        if section in ("keys", "recovery"):
            return "keys"
        if section == "lifecycle":
            return "lifecycle"
        if section == "project":
            return "project"
        return "records"
    if parts[0] in ("objects", "gc") or key == "config":
        return parts[0]
    return "other"


class StoreAuditTrail:
    """:class:`~artifactstore.server.gate.AuditTrail` writing to the backing store.

    ``record`` raises what the store raises (the route decides what a lost entry
    means); reads and listings are not recorded.
    """

    def __init__(self, backend: Backend, *, instance: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._backend = backend
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self._clock = clock

    def record(self, principal: Principal, action: Action, key: str, status: int) -> None:
        if not action.writes:
            return
        at = self._clock()
        body = {"at": round(at, 3), "user": principal.label, "subject": principal.subject,
                "token": principal.token_id, "action": action.value, "key": key,
                "kind": kind_of(key), "status": status, "instance": self.instance}
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        while not self._backend.put_if_absent(_entry_key(at), data):
            pass  # 64 random bits collided with another entry of the same millisecond


def _entry_key(at: float) -> str:
    return f"{AUDIT_PREFIX}{int(at * 1000):015d}-{secrets.token_hex(8)}"


def _listing_prefix(since: float | None, until: float | None) -> str:
    """The longest key prefix every entry between ``since`` and ``until`` shares."""
    if since is None or until is None:
        return AUDIT_PREFIX
    low, high = f"{int(since * 1000):015d}", f"{int(until * 1000):015d}"
    same = next((i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a != b),
                len(low))
    return AUDIT_PREFIX + low[:same]


def read_audit(backend: Backend, *, since: float | None = None, until: float | None = None,
               after: str | None = None, limit: int | None = None) -> list[AuditEntry]:
    """Entries recorded from ``since`` (inclusive) to ``until`` (exclusive), seconds
    since the epoch, oldest first; ``after`` (an entry's ``name``) resumes a page."""
    found: list[AuditEntry] = []
    for name in _names(backend, since, until, after):
        try:
            entry = _parse(name, backend.get(AUDIT_PREFIX + name))
        except NotFoundError:
            continue
        if entry is None:
            log.warning("audit entry %s is not an audit entry (damaged or planted)", name)
            continue
        found.append(entry)
        if limit is not None and len(found) >= limit:
            break
    return found


def _names(backend: Backend, since: float | None, until: float | None,
           after: str | None) -> Iterator[str]:
    low = None if since is None else f"{int(since * 1000):015d}"
    high = None if until is None else f"{int(until * 1000):015d}"
    for key in backend.list(_listing_prefix(since, until)):
        name = key[len(AUDIT_PREFIX):]
        stamp = name.partition("-")[0]
        if (low is not None and stamp < low) or (after is not None and name <= after):
            continue
        if high is not None and stamp >= high:
            break
        yield name


def _parse(name: str, data: bytes) -> AuditEntry | None:
    try:
        body = json.loads(data)
        entry = AuditEntry(
            at=float(body["at"]), user=str(body["user"]), subject=body.get("subject"),
            token=body.get("token"), action=str(body["action"]), key=str(body["key"]),
            kind=str(body.get("kind") or kind_of(str(body["key"]))),
            status=int(body["status"]), instance=str(body.get("instance", "")), name=name)
    except (ValueError, KeyError, TypeError):
        return None
    return entry


# -- GET /v1/audit -----------------------------------------------------------------------


def _number(request: Request, name: str) -> float | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < 1e11:  # also refuses nan and inf
        raise InvalidInputError(f"{name} must be seconds since 1970 (a number), not "
                                f"{text[:40]!r}")
    return value


def audit_route(authenticator: Authenticator, is_server_admin: Callable[[Principal], bool],
                backend: Backend) -> Route:
    """``GET /v1/audit?since=&until=&after=&limit=`` for server admins: ``{"entries":
    [...], "next": name or null}``. ``is_server_admin`` is
    :meth:`KeyPolicy.server_admin <artifactstore.server.authz.KeyPolicy.server_admin>`."""

    def endpoint(request: Request) -> JSONResponse:
        try:
            principal = authenticator.principal(request)
            if principal.anonymous:
                raise NotSignedInError("reading the audit log needs a server admin: sign in "
                                       "with 'artifactstore login URL'")
            if not is_server_admin(principal):
                raise NotAuthorizedError(f"{principal.label} is not a server admin; reading "
                                         "the audit log needs admin ([roles] admins)")
            limit_text = request.query_params.get("limit") or str(PAGE_LIMIT)
            if not limit_text.isdigit() or not 1 <= int(limit_text) <= PAGE_LIMIT:
                raise InvalidInputError(f"limit must be a whole number from 1 to {PAGE_LIMIT}")
            after = request.query_params.get("after") or None
            entries = read_audit(backend, since=_number(request, "since"),
                                 until=_number(request, "until"), after=after,
                                 limit=int(limit_text))
        except ArtifactStoreError as exc:
            return _error(exc)
        full = len(entries) == int(limit_text)
        return JSONResponse({"entries": [e.as_dict() for e in entries],
                             "next": entries[-1].name if full else None},
                            headers={"Cache-Control": "no-store"})

    return Route("/v1/audit", endpoint, methods=["GET"])


def _error(exc: ArtifactStoreError) -> JSONResponse:
    status, code = {NotSignedInError: (401, "not_signed_in"),
                    NotAuthorizedError: (403, "not_authorized"),
                    InvalidInputError: (400, "bad_request")}.get(
        type(exc), (503, "unavailable"))
    message = " ".join(str(exc).split())
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers={"Cache-Control": "no-store"})
