"""May this caller do this to this key? The team server's :class:`KeyPolicy`.

It implements :class:`~artifactstore.server.gate.Authorizer` from three things:

1. the key rules (:mod:`artifactstore.server.keyrules`): which role an action on a key
   needs, and whether it must be held in the key's project, its key domain, anywhere or
   server-wide;
2. the role table (:mod:`artifactstore.server.roles`): who holds which role;
3. the **directory** of the store (:class:`ProjectDirectory`): which projects are public
   and which projects each key domain belongs to, read from the plaintext project
   records and key epochs (design §13.1-13.2; the server needs no key for that).

A role in a **key domain** ``objects/<d>/``: for ``plain`` (the public projects' blobs),
the highest role the caller holds in any public project; for an encrypted domain, the
lowest role the caller holds among the projects whose epochs name ``<d>`` (normally one:
key ids are random; should a project admin copy another project's key id into an epoch
of theirs, the domain then needs a role in both, so the copy opens nothing). Server
admins hold their role in every domain, claimed or not (gc sweeps them all).

A **token scope** narrows every role: outside its projects the caller holds nothing,
inside them at most the scope's role; a token with a project list is never a server admin.

Caching (several instances share one store, so nothing here is authoritative state):
the directory is rebuilt from one listing of ``projects/`` at most every ``ttl``
seconds (60), and sooner when a request is refused over a project or domain the
directory does not know yet (a project or key epoch created since) and the role table
could give the caller a role there, at most once per ``min_interval`` (1 s) per
instance; such a request waits for that refresh (so a stream of probes costs at most
one listing a second; a key domain probed by a caller the table names nowhere costs
none). Parsed records and epochs (create-only objects) are reused between listings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from artifactstore.backends import Backend
from artifactstore.backends.base import check_key
from artifactstore.core.errors import (
    ArtifactStoreError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
)
from artifactstore.objects.envelope import Kind
from artifactstore.records.projects import ProjectKeys
from artifactstore.records.versions import read_ref
from artifactstore.server.gate import Action
from artifactstore.server.keyrules import Need, Target, classify, classify_prefix, needed
from artifactstore.server.principal import Principal, Role
from artifactstore.server.roles import RoleTable, parse_roles
from artifactstore.server.settings import ServerSettings

__all__ = ["Directory", "KeyPolicy", "ProjectDirectory"]

log = logging.getLogger("artifactstore.server")

_VERB: Final = {Action.READ: "reading", Action.LIST: "listing", Action.CREATE: "writing",
                Action.PUT: "overwriting", Action.DELETE: "deleting"}


@dataclass(frozen=True, slots=True)
class Directory:
    """What the store said about its projects at one listing."""

    projects: frozenset[str] = frozenset()
    #: projects whose record says public, and projects without record or keys (old stores)
    public: frozenset[str] = frozenset()
    #: key id (hex) -> the projects whose epochs name it
    domains: Mapping[str, frozenset[str]] = field(default_factory=dict)
    built_at: float = float("-inf")


class ProjectDirectory:
    """The store's :class:`Directory`, rebuilt when stale or after a miss (see above)."""

    def __init__(self, backend: Backend, *, ttl: float = 60.0, min_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._backend = backend
        self._ttl = ttl
        self._min_interval = min_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._current = Directory()
        self._last_start = float("-inf")
        # key -> (visibility, genesis key id) of a record, or the key id of an epoch
        self._parsed: dict[str, tuple[str, bytes | None] | bytes | None] = {}
        self._parsed_at = float("-inf")

    def current(self) -> Directory:
        d = self._current
        if self._clock() - d.built_at < self._ttl:
            return d
        with self._lock:
            if self._current is d:
                self._build(full=True)
            return self._current

    def refresh(self, seen: Directory) -> Directory:
        """A directory newer than ``seen`` (after a miss): shares a refresh another
        request made meanwhile, else lists again, waiting out ``min_interval``."""
        with self._lock:
            if self._current is not seen:
                return self._current
            wait = self._last_start + self._min_interval - self._clock()
            if wait > 0:
                time.sleep(wait)  # why: bounds the listings a stream of misses causes
            self._build(full=False)
            return self._current

    def _build(self, *, full: bool) -> None:
        start = self._last_start = self._clock()
        if full or start - self._parsed_at >= self._ttl:
            self._parsed, self._parsed_at = {}, start
        names: set[str] = set()
        records: dict[str, str] = {}
        epochs: dict[str, list[str]] = {}
        keyed: set[str] = set()
        for key in self._backend.list("projects/"):
            parts = key.split("/")
            if len(parts) < 3:
                continue
            name, rest = parts[1], parts[2:]
            names.add(name)
            if rest == ["project"]:
                records[name] = key
            elif rest[0] in ("keys", "members", "recovery"):
                keyed.add(name)
                if len(rest) == 3 and rest[2] == "info":
                    epochs.setdefault(name, []).append(key)
        public: set[str] = set()
        domains: dict[str, set[str]] = {}
        for name in names:
            found = self._record(name, records.get(name))
            if found is None:
                if name not in records and name not in keyed:
                    public.add(name)  # made before project records: public (§13.1)
                continue
            visibility, genesis_key_id = found
            if visibility == "public":
                public.add(name)
            if genesis_key_id:
                domains.setdefault(genesis_key_id.hex(), set()).add(name)
            for key in epochs.get(name, []):
                key_id = self._epoch(key)
                if key_id:
                    domains.setdefault(key_id.hex(), set()).add(name)
        listed = set(records.values()).union(*epochs.values())
        self._parsed = {k: v for k, v in self._parsed.items() if k in listed}
        self._current = Directory(frozenset(names), frozenset(public),
                                  {d: frozenset(p) for d, p in domains.items()}, start)

    def _record(self, name: str, key: str | None) -> tuple[str, bytes | None] | None:
        if key is None:
            return None
        if key not in self._parsed:
            try:
                info = ProjectKeys(self._backend, name, None).info()
            except NotFoundError:
                info = None
            except ArtifactStoreError as exc:
                # fail closed: an unreadable record makes the project private, no domain
                log.warning("project %s: record unreadable (%s); only its members by the "
                            "[roles] table may read it", name, type(exc).__name__)
                self._parsed[key] = ("private", None)
                return ("private", None)
            if info is None:
                return None
            self._parsed[key] = (info.visibility,
                                 None if info.genesis is None else info.genesis.key_id)
        found = self._parsed[key]
        return found if isinstance(found, tuple) else None

    def _epoch(self, key: str) -> bytes | None:
        if key not in self._parsed:
            try:
                self._parsed[key] = read_ref(self._backend, key, Kind.KEY_EPOCH).raw_bytes(
                    "key_id")
            except ArtifactStoreError:
                return None  # vanished or damaged: it names no domain (retried next build)
        found = self._parsed[key]
        return found if isinstance(found, bytes) else None


class KeyPolicy:
    """The team server's :class:`~artifactstore.server.gate.Authorizer`."""

    def __init__(self, backend: Backend, table: RoleTable, *,
                 directory: ProjectDirectory | None = None) -> None:
        self.table = table
        self.directory = directory or ProjectDirectory(backend)
        for line in table.warnings:
            log.warning("%s", line)

    @classmethod
    def from_settings(cls, settings: ServerSettings, backend: Backend) -> KeyPolicy:
        return cls(backend, parse_roles(settings.roles))

    # -- roles -----------------------------------------------------------------------

    @staticmethod
    def _scoped(principal: Principal, project: str | None, role: Role) -> Role:
        scope = principal.scope
        if scope is None:
            return role
        if project is None:  # server-wide: only an unscoped token carries it
            return min(role, scope.role) if scope.projects is None else Role.NONE
        if scope.projects is not None and project not in scope.projects:
            return Role.NONE
        return min(role, scope.role)

    def _project_role(self, principal: Principal, project: str, d: Directory) -> Role:
        role = self.table.project_role(principal, project)
        if self.table.public_read and project in d.public:
            role = max(role, Role.READER)
        return self._scoped(principal, project, role)

    def _server_role(self, principal: Principal) -> Role:
        return self._scoped(principal, None, self.table.global_role(principal))

    def _domain_role(self, principal: Principal, domain: str, d: Directory) -> Role:
        if domain == "plain":
            held = max((self._project_role(principal, p, d) for p in d.public),
                       default=Role.NONE)
        else:
            owners = d.domains.get(domain, frozenset())
            held = min((self._project_role(principal, p, d) for p in owners),
                       default=Role.NONE)
        return max(held, self._server_role(principal))

    def _anywhere_role(self, principal: Principal, d: Directory) -> Role:
        projects = set(self.table.projects) | d.projects
        return max([self._server_role(principal),
                    *(self._project_role(principal, p, d) for p in projects)])

    def _held(self, principal: Principal, target: Target, need: Need, d: Directory) -> Role:
        if need.over == "project":
            assert target.project is not None
            return self._project_role(principal, target.project, d)
        if need.over == "domain":
            assert target.domain is not None
            return self._domain_role(principal, target.domain, d)
        if need.over == "anywhere":
            return self._anywhere_role(principal, d)
        return self._server_role(principal)

    def _unknown(self, principal: Principal, target: Target, need: Need,
                 d: Directory) -> bool:
        """Whether a refusal may come from a directory older than the project or epoch."""
        if need.over == "project":
            return target.project not in d.projects
        if need.over == "domain" and target.domain == "plain":
            return any(p not in d.projects for p, grants in self.table.projects.items()
                       if grants.role(principal) >= need.role)
        if need.over == "domain":
            # a new private project's domain can only open to someone the table names
            return target.domain not in d.domains and any(
                grants.role(principal) >= need.role for grants in self.table.projects.values())
        # "anywhere" (config, the gc lock): a public project made since the listing
        return need.over == "anywhere"

    # -- gate.Authorizer ---------------------------------------------------------------

    def check(self, principal: Principal, action: Action, key: str) -> None:
        """Return if ``principal`` may do ``action`` on ``key``; raise NotSignedInError
        (anonymous) or NotAuthorizedError (one line: the role needed and the one held)."""
        if action is Action.LIST:
            target = classify_prefix(key)
        else:
            check_key(key)  # InvalidInputError: a path trick never reaches the rules
            target = classify(key)
        need = needed(target, action)
        if need is None:
            raise NotAuthorizedError(f"{_VERB[action]} {target.what} is never allowed "
                                     "through the team server")
        d = self.directory.current()
        held = self._held(principal, target, need, d)
        if held < need.role and self._unknown(principal, target, need, d):
            d = self.directory.refresh(d)
            held = self._held(principal, target, need, d)
        if held < need.role:
            raise self._refusal(principal, action, target, need, held)

    def visible(self, principal: Principal, keys: Iterable[str]) -> Iterator[str]:
        """The keys of a listing ``principal`` may READ (the others are left out)."""
        d = self.directory.current()
        refreshed = False
        # a listing's keys share a few targets: decide each (project, domain, need) once
        decided: dict[tuple[str | None, str | None, Need], bool] = {}
        for key in keys:
            target = classify(key)
            need = needed(target, Action.READ)
            if need is None:
                continue
            which = (target.project, target.domain, need)
            if which not in decided:
                held = self._held(principal, target, need, d)
                if held < need.role and not refreshed and self._unknown(principal, target,
                                                                       need, d):
                    d, refreshed = self.directory.refresh(d), True
                    decided.clear()
                    held = self._held(principal, target, need, d)
                decided[which] = held >= need.role
            if decided[which]:
                yield key

    def role(self, principal: Principal, project: str) -> Role:
        """``principal``'s role in ``project`` (token scope and public reading applied)."""
        return self._project_role(principal, project, self.directory.current())

    # -- for the object routes, whoami and the audit endpoint ---------------------------

    def may_replace(self, principal: Principal, key: str) -> bool:
        """Whether a permitted PUT on ``key`` may replace an existing object. False for
        a non-admin's PUT of a pack or index object: the route then stores it with
        put_if_absent (the bytes are content-addressed, so an existing object already
        holds them; a writer can never overwrite anything under ``objects/``)."""
        target = classify(key)
        if target.kind != "domain":
            return True
        assert target.domain is not None
        return self._domain_role(principal, target.domain, self.directory.current()) \
            >= Role.ADMIN

    def server_admin(self, principal: Principal) -> bool:
        """A server admin (global admin, unscoped token): the audit log, gc of any domain."""
        return self._server_role(principal) >= Role.ADMIN

    def roles(self, principal: Principal) -> dict[str, str]:
        """Project -> role label of every project where ``principal`` holds one (whoami)."""
        d = self.directory.current()
        found = {}
        for project in sorted(set(self.table.projects) | d.projects):
            role = self._project_role(principal, project, d)
            if role > Role.NONE:
                found[project] = role.label
        return found

    def _refusal(self, principal: Principal, action: Action, target: Target, need: Need,
                 held: Role) -> ArtifactStoreError:
        doing = f"{_VERB[action]} {target.what}"
        if need.over == "project":
            where = f"project {target.project}"
        elif need.over == "domain" and target.domain == "plain":
            where = "the public projects (key domain plain)"
        elif need.over == "domain":
            owners = sorted(self.directory.current().domains.get(target.domain or "", ()))
            # the project is named only to who may read it (its key id is in the key)
            where = (f"project {owners[0]} (key domain {target.domain})"
                     if len(owners) == 1 and held >= Role.READER
                     else f"the project of key domain {target.domain}")
        elif need.over == "anywhere":
            where = "any project"
        else:
            where = "this server (server admin)"
        if principal.anonymous:
            place = "of some project" if need.over == "anywhere" else f"in {where}"
            return NotSignedInError(f"{doing} needs a {need.role.label} {place}: sign in "
                                    "with 'artifactstore login URL' or set ARTIFACTSTORE_TOKEN")
        who = principal.label
        narrowed = ""
        if principal.scope is not None:
            unscoped = Principal(principal.subject, principal.email, principal.name,
                                 principal.groups)
            if self._held(unscoped, target, need, self.directory.current()) >= need.role:
                narrowed = f" (token {principal.token_id} does not carry that role here)"
        holds = "has no role in" if held is Role.NONE else f"is a {held.label} of"
        if need.over == "anywhere" and held is not Role.NONE:
            holds, where = f"is at most a {held.label}", "in any project"
        return NotAuthorizedError(f"{who} {holds} {where}; {doing} needs "
                                  f"{need.role.label}{narrowed}")
