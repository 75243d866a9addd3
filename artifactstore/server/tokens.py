"""API tokens of the team server: create, verify, list, revoke; kept in the backing store.

A token is the string ``ast1_<id>_<secret>`` (the prefix makes leaked tokens easy to
find with grep or a secret scanner). The store keeps, under ``server/tokens/<id>``, a
JSON record: who it acts for (``subject``, ``email``, ``name``, ``groups`` as the
issuer said at sign-in), its ``scope`` (``projects``: a list or null for every project
the user has a role in; ``role``: the highest role it carries), ``created``,
``expires`` (unix seconds) and ``mac``: an HMAC-SHA256 of the id and the secret under
the server secret (``ARTIFACTSTORE_SERVER_SECRET``). The secret itself is never stored:
a copy of the bucket does not give working tokens, and a token is verified by any
instance that shares the server secret. Revoking a token writes ``server/revoked/<id>``
(create-only, so it is never undone); records are kept, so the audit can name them.

Verification reads both keys and caches the answer for at most :data:`CACHE_SECONDS`
per instance: a token revoked through another instance still works there for up to
10 s; revoked through this one, it stops at once. Expiry is checked on every request.
Keys under ``server/`` are never served to clients (the object routes refuse them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from artifactstore.backends.base import Backend
from artifactstore.core.errors import (
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
)
from artifactstore.server.principal import Principal, Role, TokenScope

__all__ = ["CACHE_SECONDS", "PREFIX", "TokenRecord", "TokenStore", "looks_like_token"]

PREFIX: Final = "ast1_"
TOKENS: Final = "server/tokens/"
REVOKED: Final = "server/revoked/"
CACHE_SECONDS: Final = 10.0
_TOKEN = re.compile(r"ast1_([0-9a-f]{16})_([A-Za-z0-9_-]{32,64})")
_ID = re.compile(r"[0-9a-f]{16}")
_NAME = re.compile(r"[\w .@:/+-]{1,80}")
_MAC_CONTEXT: Final = b"artifactstore api token v1\0"

#: the caller's role in a project (the Authorizer's ``role``), to narrow new tokens
RoleOf = Callable[[Principal, str], Role]


def looks_like_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What ``server/tokens/<id>`` holds (never the secret)."""

    id: str
    name: str
    subject: str
    email: str | None
    user_name: str | None
    groups: tuple[str, ...]
    projects: tuple[str, ...] | None
    role: Role
    created: int
    expires: int
    mac: str

    def to_json(self) -> bytes:
        return json.dumps({
            "id": self.id, "name": self.name, "subject": self.subject,
            "email": self.email, "user_name": self.user_name, "groups": list(self.groups),
            "scope": {"projects": None if self.projects is None else list(self.projects),
                      "role": self.role.label},
            "created": self.created, "expires": self.expires, "mac": self.mac,
        }, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenRecord:
        d = json.loads(raw)
        scope = d["scope"]
        projects = scope["projects"]
        return cls(
            id=str(d["id"]), name=str(d["name"]), subject=str(d["subject"]),
            email=d.get("email"), user_name=d.get("user_name"),
            groups=tuple(str(g) for g in d.get("groups", [])),
            projects=None if projects is None else tuple(str(p) for p in projects),
            role=Role.parse(scope["role"]), created=int(d["created"]),
            expires=int(d["expires"]), mac=str(d["mac"]))

    def public(self, revoked: bool = False) -> dict[str, Any]:
        """The record as the API lists it (no MAC)."""
        return {"id": self.id, "name": self.name, "subject": self.subject,
                "email": self.email, "projects": None if self.projects is None
                else list(self.projects), "role": self.role.label,
                "created": self.created, "expires": self.expires, "revoked": revoked}

    def principal(self) -> Principal:
        scope = TokenScope(None if self.projects is None else frozenset(self.projects),
                           self.role)
        return Principal(subject=self.subject, email=self.email, name=self.user_name,
                         groups=frozenset(self.groups), token_id=self.id, scope=scope)


class TokenStore:
    """The tokens of one backing store, for one server instance (thread-safe)."""

    def __init__(self, backend: Backend, secret: bytes, *, token_days: int = 90,
                 clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self._secret = secret
        self.token_days = token_days
        self._clock = clock
        #: how long a verified answer is reused (module docstring); tests may lower it
        self.cache_seconds = CACHE_SECONDS
        self._cache: dict[str, tuple[float, TokenRecord | None, bool]] = {}
        self._lock = threading.Lock()

    def _mac(self, token_id: str, secret: str) -> str:
        msg = _MAC_CONTEXT + token_id.encode() + b"\0" + secret.encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    # -- create ----------------------------------------------------------------------

    def create(self, user: Principal, *, name: str, projects: list[str] | None = None,
               role: Role = Role.ADMIN, days: int | None = None,
               role_of: RoleOf | None = None) -> tuple[str, TokenRecord]:
        """A new token acting for ``user``; (the token string, shown once; its record).

        A token only narrows: with ``projects``, ``user`` must hold ``role`` in each
        (``role_of``); a token made with a token stays within that token's scope.
        """
        if user.anonymous or user.subject is None:
            raise NotSignedInError("sign in to create a token: artifactstore login URL")
        if not _NAME.fullmatch(name):
            raise InvalidInputError("a token name is 1 to 80 letters, digits, spaces "
                                    "or . @ : / + - _")
        days = self.token_days if days is None else days
        if not 1 <= days <= self.token_days:
            raise InvalidInputError(f"a token lives 1 to {self.token_days} days on this "
                                    "server")
        if projects is not None:
            projects = sorted(set(projects))
            if not projects or any(not p or len(p) > 200 for p in projects):
                raise InvalidInputError("name at least one project, or none for all")
        scope = user.scope  # created with a token: stay within it
        if scope is not None and (role > scope.role or (scope.projects is not None and (
                projects is None or not set(projects) <= scope.projects))):
            raise NotAuthorizedError("a token can only make tokens within its own "
                                         "scope; name fewer projects or a lower role")
        for project in projects or ():
            held = role_of(user, project) if role_of is not None else Role.NONE
            if held < role:
                raise NotAuthorizedError(f"you are not {role.label} of project "
                                         f"{project!r:.80}; ask for a lower role")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = int(self._clock())
        record = TokenRecord(
            id=token_id, name=name, subject=user.subject, email=user.email,
            user_name=user.name, groups=tuple(sorted(user.groups)),
            projects=None if projects is None else tuple(projects), role=role,
            created=now, expires=now + days * 86400, mac=self._mac(token_id, secret))
        if not self.backend.put_if_absent(TOKENS + token_id, record.to_json()):
            raise RuntimeError("a fresh random token id already exists")  # 2^-64
        return f"{PREFIX}{token_id}_{secret}", record

    # -- verify ----------------------------------------------------------------------

    def _lookup(self, token_id: str) -> tuple[TokenRecord | None, bool]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token_id)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1], hit[2]
        try:
            record: TokenRecord | None = TokenRecord.from_json(
                self.backend.get(TOKENS + token_id))
        except FileNotFoundError:
            return None, False  # not cached: a token made elsewhere a moment ago works
        except (ValueError, KeyError, TypeError):
            record = None  # a damaged record never authenticates anyone
        revoked = self.backend.exists(REVOKED + token_id)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token_id] = (now, record, revoked)
        return record, revoked

    def verify(self, token: str) -> Principal:
        """The principal ``token`` acts for; NotSignedInError when it is malformed,
        unknown, forged (wrong secret), expired or revoked (one message for all but
        expiry, so probing learns nothing)."""
        match = _TOKEN.fullmatch(token.strip())
        refused = NotSignedInError("this token is not valid on this server; sign in "
                                   "again with artifactstore login URL or make a new token")
        if match is None:
            raise refused
        token_id, secret = match.groups()
        record, revoked = self._lookup(token_id)
        if record is None or revoked or record.id != token_id:
            raise refused
        if not hmac.compare_digest(record.mac, self._mac(token_id, secret)):
            raise refused
        if self._clock() >= record.expires:
            raise NotSignedInError("this token has expired; sign in again with "
                                   "artifactstore login URL or make a new token")
        return record.principal()

    # -- list and revoke -------------------------------------------------------------

    def records(self, subject: str | None = None) -> list[tuple[TokenRecord, bool]]:
        """Every token record (``subject``'s only when given) with whether it is revoked,
        oldest first."""
        revoked = {k.removeprefix(REVOKED) for k in self.backend.list(REVOKED)}
        found = []
        for key in self.backend.list(TOKENS):
            try:
                record = TokenRecord.from_json(self.backend.get(key))
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                continue
            if subject is None or record.subject == subject:
                found.append((record, record.id in revoked))
        return sorted(found, key=lambda item: (item[0].created, item[0].id))

    def revoke(self, token_id: str, by: Principal, *, admin: bool = False) -> TokenRecord:
        """Revoke ``token_id`` (``by`` must own it, or be a server admin)."""
        if not _ID.fullmatch(token_id):
            raise InvalidInputError("a token id is 16 hexadecimal characters "
                                    "(artifactstore token list shows them)")
        try:
            record = TokenRecord.from_json(self.backend.get(TOKENS + token_id))
        except FileNotFoundError:
            raise NotFoundError(f"no token {token_id} on this server") from None
        if not admin and record.subject != by.subject:
            # the same answer as an unknown id: others' token ids are not disclosed
            raise NotFoundError(f"no token {token_id} on this server")
        stamp = json.dumps({"by": by.subject, "at": int(self._clock())}).encode()
        self.backend.put_if_absent(REVOKED + token_id, stamp)
        with self._lock:
            self._cache.pop(token_id, None)
        return record
