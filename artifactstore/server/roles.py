"""Who holds which role in which project: the ``[roles]`` table of ``server.toml``.

The format (docs/server.md, "Roles")::

    [roles]
    admins = ["alice@example.com"]        # admin of every project: the server admins
    signed_in = "none"                    # the role of any signed-in user, everywhere
    everyone = "none"                     # the role of every caller, anonymous included
    public_read = true                    # public projects: anyone may read them

    [roles.projects.vision]
    readers = ["group:ml", "bob@example.com"]
    writers = ["carol@example.com", "sub:company#1234"]
    admins = ["group:ml-leads"]

Vocabulary:

- **member entry**: how the table names people. ``name@domain`` is an e-mail address
  (compared case-insensitively with the one the issuer verified at sign-in);
  ``group:NAME`` a group the issuer said the user belongs to; ``sub:ISSUER#SUBJECT``
  one user by the issuer-qualified subject (:attr:`Principal.subject`), which never
  changes when the user changes address.
- **global role**: ``admins`` (server admins), ``signed_in`` and ``everyone`` apply to
  every project; a caller holds the highest role that any rule gives them.
- ``everyone = "admin"`` opens the whole server to anyone who reaches it: a real mode
  for a single-user server on 127.0.0.1 or behind a trusted proxy, and it is said in
  :attr:`RoleTable.warnings` (logged at start).

This module only reads the table; :mod:`artifactstore.server.authz` applies it to keys
and adds what the store says (public projects) and what a token allows (its scope).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from artifactstore.core.errors import ConfigurationError
from artifactstore.model.names import NAME_RE
from artifactstore.server.principal import Principal, Role

__all__ = ["ProjectGrants", "RoleTable", "parse_roles"]

_TOP: Final = frozenset({"admins", "signed_in", "everyone", "public_read", "projects"})
_PROJECT: Final = {"readers": Role.READER, "writers": Role.WRITER, "admins": Role.ADMIN}
_NAME: Final = re.compile(NAME_RE)
# e-mail: a local part and a domain with a dot, nothing that could be a second entry
_EMAIL: Final = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
_GROUP: Final = re.compile(r"group:[^\s,]{1,200}")
_SUBJECT: Final = re.compile(r"sub:[^\s#,]{1,200}#[^\s,]{1,500}")
_ENTRY_HELP: Final = "use an e-mail address, group:NAME or sub:ISSUER#SUBJECT"


def _entry(text: object, where: str) -> str:
    """One member entry, normalised (e-mail addresses lower-cased)."""
    if not isinstance(text, str):
        raise ConfigurationError(f"{where}: {text!r:.60} is not a string; {_ENTRY_HELP}")
    value = text.strip()
    if _GROUP.fullmatch(value) or _SUBJECT.fullmatch(value):
        return value
    if _EMAIL.fullmatch(value):
        return value.lower()
    raise ConfigurationError(f"{where}: {text!r:.60} names nobody; {_ENTRY_HELP}")


def _entries(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list):
        raise ConfigurationError(f"{where} must be a list of strings ({_ENTRY_HELP})")
    return frozenset(_entry(item, where) for item in value)


def _role(value: object, where: str) -> Role:
    if value == "none":
        return Role.NONE
    try:
        return Role.parse(value) if isinstance(value, str) else Role.parse("?")
    except ValueError:
        raise ConfigurationError(f"{where} = {value!r:.40}: use \"none\", \"reader\", "
                                 "\"writer\" or \"admin\"") from None


def matches(principal: Principal, entries: Iterable[str]) -> bool:
    """Whether any member entry names ``principal`` (anonymous matches none)."""
    if principal.anonymous:
        return False
    email = principal.email.lower() if principal.email else None
    for entry in entries:
        if entry.startswith("group:"):
            if entry[6:] in principal.groups:
                return True
        elif entry.startswith("sub:"):
            if entry[4:] == principal.subject:
                return True
        elif email is not None and entry == email:
            return True
    return False


@dataclass(frozen=True, slots=True)
class ProjectGrants:
    """The ``[roles.projects.<p>]`` table of one project: member entries per role."""

    readers: frozenset[str] = frozenset()
    writers: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()

    def role(self, principal: Principal) -> Role:
        for role, entries in ((Role.ADMIN, self.admins), (Role.WRITER, self.writers),
                              (Role.READER, self.readers)):
            if matches(principal, entries):
                return role
        return Role.NONE


@dataclass(frozen=True, slots=True)
class RoleTable:
    """The parsed ``[roles]`` table (frozen; one per server start)."""

    admins: frozenset[str] = frozenset()
    signed_in: Role = Role.NONE
    everyone: Role = Role.NONE
    #: public projects are readable by every caller (anonymous included)
    public_read: bool = True
    projects: Mapping[str, ProjectGrants] = field(
        default_factory=lambda: MappingProxyType({}))

    def global_role(self, principal: Principal) -> Role:
        """The role ``principal`` holds in every project (before any token scope)."""
        role = self.everyone
        if not principal.anonymous:
            role = max(role, self.signed_in)
            if matches(principal, self.admins):
                role = Role.ADMIN
        return role

    def project_role(self, principal: Principal, project: str) -> Role:
        """The table's role for ``principal`` in ``project`` (no scope, no public read)."""
        role = self.global_role(principal)
        grants = self.projects.get(project)
        return role if grants is None else max(role, grants.role(principal))

    @property
    def warnings(self) -> list[str]:
        """What an operator must hear at start (the server logs each line)."""
        found = []
        if self.everyone >= Role.WRITER:
            found.append(f"[roles] everyone = \"{self.everyone.label}\": anyone who reaches "
                         "this server, without signing in, may "
                         + ("delete and purge anything" if self.everyone == Role.ADMIN
                            else "write to every project")
                         + "; use it only on 127.0.0.1 or behind a trusted proxy")
        if self.signed_in == Role.ADMIN:
            found.append("[roles] signed_in = \"admin\": every user any configured issuer "
                         "signs in is a server admin")
        return found


def parse_roles(table: Mapping[str, Any]) -> RoleTable:
    """The ``[roles]`` table of the settings (``ServerSettings.roles``) as a
    :class:`RoleTable`; ConfigurationError names the first problem."""
    unknown = sorted(set(table) - _TOP)
    if unknown:
        raise ConfigurationError(f"unknown [roles] setting {unknown[0]!r}; known: "
                                 f"{', '.join(sorted(_TOP))}")
    public_read = table.get("public_read", True)
    if not isinstance(public_read, bool):
        raise ConfigurationError("[roles] public_read must be true or false")
    projects_table = table.get("projects", {})
    if not isinstance(projects_table, dict):
        raise ConfigurationError("[roles.projects] must be a table of projects")
    projects: dict[str, ProjectGrants] = {}
    for name, grants in projects_table.items():
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise ConfigurationError(f"[roles.projects.{name}]: not a project name (1-128 "
                                     "of A-Z a-z 0-9 . _ -, starting with a letter or digit)")
        if not isinstance(grants, dict):
            raise ConfigurationError(f"[roles.projects.{name}] must be a table")
        bad = sorted(set(grants) - set(_PROJECT))
        if bad:
            raise ConfigurationError(f"[roles.projects.{name}]: unknown key {bad[0]!r}; "
                                     "use readers, writers, admins")
        projects[name] = ProjectGrants(**{
            key: _entries(grants.get(key, []), f"[roles.projects.{name}] {key}")
            for key in _PROJECT})
    return RoleTable(
        admins=_entries(table.get("admins", []), "[roles] admins"),
        signed_in=_role(table.get("signed_in", "none"), "[roles] signed_in"),
        everyone=_role(table.get("everyone", "none"), "[roles] everyone"),
        public_read=public_read,
        projects=MappingProxyType(projects),
    )
