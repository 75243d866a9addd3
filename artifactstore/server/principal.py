"""Who is asking the team server, and the roles a project grants.

A :class:`Principal` is the caller of one request: anonymous (no sign-in), a user
signed in through the browser (a session), or a user or CI job holding an API token
(which may narrow what the user could do: :class:`TokenScope`). Roles are ordered:
each allows what the one below it allows, and more.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ANONYMOUS", "Principal", "Role", "TokenScope"]


class Role(enum.IntEnum):
    """What a project lets someone do (docs/server.md has the table).

    * ``READER``: read the project's records and objects;
    * ``WRITER``: also log versions, move aliases, record runs;
    * ``ADMIN``: also delete, restore and purge, run gc, manage members and keys.
    """

    NONE = 0
    READER = 1
    WRITER = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        """``"reader"``, ``"writer"`` or ``"admin"`` (ValueError otherwise)."""
        try:
            role = cls[text.strip().upper()]
        except KeyError:
            role = cls.NONE
        if role is cls.NONE:
            raise ValueError(f"unknown role {text!r}; use reader, writer or admin")
        return role

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class TokenScope:
    """What an API token allows at most: ``projects`` (None: every project the user
    has a role in) and the highest ``role`` it carries."""

    projects: frozenset[str] | None
    role: Role

    def allows(self, project: str, role: Role) -> bool:
        return role <= self.role and (self.projects is None or project in self.projects)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request.

    ``subject`` is the issuer-qualified user id (``<issuer>#<sub>``), None when
    anonymous; ``email``, ``name`` and ``groups`` are what the issuer said at
    sign-in; ``token_id`` names the API token used (None for a browser session);
    ``scope`` is that token's limit.
    """

    subject: str | None
    email: str | None = None
    name: str | None = None
    groups: frozenset[str] = frozenset()
    token_id: str | None = None
    scope: TokenScope | None = None

    @property
    def anonymous(self) -> bool:
        return self.subject is None

    @property
    def label(self) -> str:
        """How logs and the audit name this caller (never a secret)."""
        if self.subject is None:
            return "anonymous"
        who = self.email or self.subject
        return f"{who} (token {self.token_id})" if self.token_id else who


ANONYMOUS = Principal(subject=None)
