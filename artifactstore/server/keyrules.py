"""Which role each key of the store needs for each action: a pure table (design §1, §8).

The team server decides every request from the key alone (it never opens a private
project's records), so this table is the whole write policy. Vocabulary:

- **target**: what a key is part of (:class:`Target`): a *project* (``projects/<p>/…``),
  a *domain* (``objects/<d>/…`` and ``gc/<d>/…``, shared by the projects whose key
  epochs name ``<d>``, or by the public projects for ``plain``), the *store* (``config``,
  ``gc/lock``), the *server's own* keys (``server/…``: tokens, audit; never served) or
  *unknown* (any key no format section describes).
- **need** (:class:`Need`): the role and where it must be held: in the target's
  ``project``, its ``domain``, ``anywhere`` (in at least one project) or as a
  ``server`` admin (the global role, with an unscoped token). ``None``: nobody, not even
  a server admin, may do that through the server.

The rules (docs/server.md, "Roles", has the same table for people):

- every record of a project is read by its readers; versions, alias events and runs are
  created by writers (the heartbeat and the journal head are also overwritten by them);
  the project record, members, key epochs and slots, and lifecycle events (delete,
  restore, purge, retention) are created by admins only; overwriting a record is
  re-encryption (admin); records that are create-only in every format (project,
  members, keys) are never overwritten; admins delete any key of their project;
- packs and index objects are created by the domain's writers. The object routes
  serve a writer's ``PUT`` there as create-only (:meth:`KeyPolicy.may_replace`), so
  only an admin replaces an object; admins delete;
- condemnations (``gc/<d>/condemned/…``) are read by writers (a commit checks them),
  written and deleted by admins (gc, purge); ``gc/lock`` likewise, by the writers and
  admins of any project;
- ``config`` is read by anyone who may read anything, written by server admins;
- ``server/…`` is never served; an unknown key is read and deleted by server admins
  only and never written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from artifactstore.backends.base import is_key
from artifactstore.model.names import NAME_RE
from artifactstore.server.gate import Action
from artifactstore.server.principal import Role

__all__ = ["Need", "Target", "classify", "classify_prefix", "needed"]

Over = Literal["project", "domain", "anywhere", "server"]
Kind = Literal["project", "domain", "store", "server", "unknown", "invalid"]


@dataclass(frozen=True, slots=True)
class Need:
    """``role`` held ``over`` the target's project, its domain, anywhere or server-wide."""

    role: Role
    over: Over


@dataclass(frozen=True, slots=True)
class Target:
    """What a key (or a listing's prefix) belongs to, and what it is, for messages."""

    kind: Kind
    what: str
    project: str | None = None
    domain: str | None = None
    #: the rules by action (READ, LIST, CREATE, PUT, DELETE)
    rules: tuple[Need | None, ...] = (None,) * 5


_A: Final = tuple(Action)
R, W, A = Role.READER, Role.WRITER, Role.ADMIN


def _rules(over: Over, read: Role | None, create: Role | None, put: Role | None,
           delete: Role | None, *, read_over: Over | None = None) -> tuple[Need | None, ...]:
    def need(role: Role | None, where: Over) -> Need | None:
        return None if role is None else Need(role, where)
    reading = need(read, read_over or over)
    return (reading, reading, need(create, over), need(put, over), need(delete, over))


_N: Final = NAME_RE
_SEQ: Final = r"[0-9]{10}"
_RUN: Final = r"[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}"
_HEX64: Final = r"[0-9a-f]{64}"
#: a key domain: ``plain`` or a key id (16 bytes) in hex (design §13.3)
DOMAIN_RE: Final = r"plain|[0-9a-f]{32}"

# (pattern of the rest after projects/<p>/, what, read, create, put, delete)
_PROJECT_KEYS: Final = tuple((re.compile(p), what, rules) for p, what, rules in (
    (r"project", "the project record", _rules("project", R, A, None, A)),
    (rf"members/{_SEQ}", "member events", _rules("project", R, A, None, A)),
    (r"recovery", "the recovery parameters", _rules("project", R, A, None, A)),
    (rf"keys/{_SEQ}/info", "key epochs", _rules("project", R, A, None, A)),
    (rf"keys/{_SEQ}/slots/[0-9a-f]{{32}}", "key slots", _rules("project", R, A, None, A)),
    (rf"artifacts/{_N}/versions/{_SEQ}", "versions", _rules("project", R, W, A, A)),
    (rf"artifacts/{_N}/aliases/{_N}/{_SEQ}", "alias events", _rules("project", R, W, A, A)),
    (rf"runs/{_RUN}/(start|events/{_SEQ}|metrics/{_SEQ})", "runs",
     _rules("project", R, W, A, A)),
    (rf"runs/{_RUN}/heartbeat", "run heartbeats", _rules("project", R, W, W, A)),
    (rf"profiles/[0-9a-f]{{32}}/{_SEQ}", "member profiles", _rules("project", R, W, None, A)),
    (rf"lifecycle/{_SEQ}", "lifecycle events (delete, restore, purge, retention)",
     _rules("project", R, A, A, A)),
    # Written right after a record by its writer; empty hints (design §12.8).
    (r"journal/[0-9]{20}-[0-9a-f]{8}~[A-Za-z0-9._~-]+", "change journal entries",
     _rules("project", R, W, None, A)),
    # Overwritten by writers right after each entry: a random change token (§12.8).
    (r"journal-head", "the change journal's head", _rules("project", R, W, W, A)),
    # Copies of records, each still sealed; readers check each one (design §12.9).
    (r"bundles/[0-9]{20}-[0-9a-f]{8}", "record bundles", _rules("project", R, W, None, A)),
))
_OTHER_PROJECT_KEY: Final = _rules("project", R, None, None, A)
_OBJECT: Final = re.compile(rf"objects/({DOMAIN_RE})/(packs/([0-9a-f]{{2}})/({_HEX64})"
                            rf"|index/{_HEX64})")
_OBJECT_ANY: Final = re.compile(rf"objects/({DOMAIN_RE})/.+")
_CONDEMNED: Final = re.compile(rf"gc/({DOMAIN_RE})/condemned/[0-9]{{15}}-[0-9a-f]{{8,64}}")
_GC_ANY: Final = re.compile(rf"gc/({DOMAIN_RE})/.+")
_PROJECT: Final = re.compile(rf"projects/({_N})/(.+)")
_NEVER: Final = (None,) * 5
_SERVER_ADMIN_ONLY: Final = _rules("server", A, None, None, A)


def classify(key: str) -> Target:
    """The target of one key and its rules. Never raises: a key that is not a valid
    storage key (``..``, ``//``, a leading ``/``...) is ``invalid`` and allows nothing."""
    if not is_key(key):
        return Target("invalid", "an invalid key")
    if key == "server" or key.startswith("server/"):
        return Target("server", "the server's own records", rules=_NEVER)
    if key == "config":
        return Target("store", "the store's configuration",
                      rules=(Need(R, "anywhere"), Need(R, "anywhere"), Need(A, "server"),
                             None, Need(A, "server")))
    if key == "gc/lock":
        return Target("store", "the gc lock", rules=_rules("anywhere", W, A, A, A))
    found = _PROJECT.fullmatch(key)
    if found is not None:
        project, rest = found.groups()
        for pattern, what, rules in _PROJECT_KEYS:
            if pattern.fullmatch(rest):
                return Target("project", what, project=project, rules=rules)
        return Target("project", "records of an unknown kind", project=project,
                      rules=_OTHER_PROJECT_KEY)
    found = _OBJECT.fullmatch(key)
    if found is not None and (found.group(3) is None or found.group(4)[:2] == found.group(3)):
        what = "packs" if found.group(3) is not None else "index objects"
        return Target("domain", what, domain=found.group(1),
                      rules=_rules("domain", R, W, W, A))
    found = _OBJECT_ANY.fullmatch(key)
    if found is not None:
        return Target("domain", "objects of an unknown kind", domain=found.group(1),
                      rules=_rules("domain", R, None, None, A))
    found = _CONDEMNED.fullmatch(key)
    if found is not None:
        return Target("domain", "gc condemnations", domain=found.group(1),
                      rules=_rules("domain", W, A, A, A))
    found = _GC_ANY.fullmatch(key)
    if found is not None:
        return Target("domain", "gc records of an unknown kind", domain=found.group(1),
                      rules=_rules("domain", W, None, None, A))
    return Target("unknown", "keys outside the store's format", rules=_SERVER_ADMIN_ONLY)


def classify_prefix(prefix: str) -> Target:
    """The target a listing's ``prefix`` lies inside, if it lies inside one (a project,
    a domain, the server's own keys); else ``store`` (a broad listing, filtered key by
    key). Only READ/LIST rules are meaningful here."""
    parts = prefix.split("/")
    if parts[0] == "server" and len(parts) > 1:
        return Target("server", "the server's own records", rules=_NEVER)
    if len(parts) >= 3 and parts[0] == "projects" and re.fullmatch(_N, parts[1]):
        return Target("project", "the project's records", project=parts[1],
                      rules=_rules("project", R, None, None, None))
    if len(parts) >= 3 and re.fullmatch(DOMAIN_RE, parts[1]):
        if parts[0] == "objects":
            return Target("domain", "objects", domain=parts[1],
                          rules=_rules("domain", R, None, None, None))
        if parts[0] == "gc":
            return Target("domain", "gc records", domain=parts[1],
                          rules=_rules("domain", W, None, None, None))
    return Target("store", "a listing", rules=(Need(Role.NONE, "anywhere"),) * 2 + (None,) * 3)


def needed(target: Target, action: Action) -> Need | None:
    """The role ``action`` on ``target`` needs, and where; None: never allowed."""
    return target.rules[_A.index(action)]
