"""Creating projects and managing their members (docs/design.md §13).

Vocabulary: see :mod:`artifactstore.records.projects`. These functions act as the
user's identity (``artifactstore identity``): creating a private or team project
makes its first key epoch and wraps it for the creator (and for each ``member``
and an optional recovery ``passphrase``); adding a member wraps every epoch key
for them; removing one starts a new epoch they never receive.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactstore.backends import Backend, open_backend_stack, redact_url
from artifactstore.core.crypto import ScryptParams
from artifactstore.core.errors import (
    AccessDeniedError,
    ArtifactStoreError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.local.clientstate import known_dir
from artifactstore.local.identity import (
    Identity,
    PublicIdentity,
    identity_info,
    load_identity,
    load_or_create_identity,
)
from artifactstore.local.pins import Pin, PinBook
from artifactstore.local.profile import declared_profile
from artifactstore.maintenance.reencrypt import ReencryptReport, reencrypt_project
from artifactstore.model.names import validate_project_name
from artifactstore.objects import config as config_mod
from artifactstore.objects.store import default_cache_dir
from artifactstore.objects.window import WaitCallback
from artifactstore.records.codec import RecordCodec
from artifactstore.records.profiles import Profile, ProfileBook
from artifactstore.records.projectcheck import contradictions
from artifactstore.records.projects import Member, ProjectInfo, ProjectKeys
from artifactstore.repository.access import member_of, quiet_identity
from artifactstore.repository.discovery import discover
from artifactstore.repository.opening import open_at
from artifactstore.repository.profiles import readable_profiles

__all__ = ["ProjectListing", "ProjectSummary", "add_member", "create_project", "list_projects",
           "project_listing", "remove_member", "show_project", "trust_project"]


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    project: str
    visibility: str
    created_at: str | None
    members: tuple[str, ...]  # fingerprints
    epochs: int
    #: whether this machine pinned the project (pins.py), and whether the pin matches
    pinned: bool = False
    pin_matches: bool = True
    pin_changes: tuple[str, ...] = ()
    #: fingerprint -> the name and e-mail that member declared (records/profiles.py)
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    #: why no profile could be read (a private project, not a member), else None
    profiles_hidden: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"project": self.project, "visibility": self.visibility,
                "created_at": self.created_at, "members": list(self.members),
                "profiles": {f: p.as_dict() for f, p in self.profiles.items()},
                "profiles_hidden": self.profiles_hidden,
                "epochs": self.epochs, "pinned": self.pinned,
                "pin_matches": self.pin_matches, "pin_changes": list(self.pin_changes)}


@dataclass(frozen=True, slots=True)
class ProjectListing:
    """One project of a store as :func:`list_projects` sees it."""

    project: str
    #: public, private or team (public for a project made before project records)
    visibility: str
    #: whether this user's identity can read it: public, or the identity is a member
    readable: bool
    #: run start records and artifact names with a version record, read off the one
    #: listing (deleted runs and artifacts count until they are purged)
    runs: int
    artifacts: int

    def as_dict(self) -> dict[str, Any]:
        return {"project": self.project, "visibility": self.visibility,
                "readable": self.readable, "runs": self.runs, "artifacts": self.artifacts}


def list_projects(backend: Backend) -> list[ProjectListing]:
    """Every project of the store behind ``backend``, by name: ONE listing of
    ``projects/`` (keys only; the backend contract has no delimiter listing) and each
    project's record and member events, never its other records (nothing to decrypt)."""
    runs: dict[str, set[str]] = {}
    artifacts: dict[str, set[str]] = {}
    for key in backend.list("projects/"):
        parts = key.split("/")
        if len(parts) < 3:
            continue
        name = parts[1]
        if name not in runs:
            try:
                validate_project_name(name)
            except InvalidInputError:
                continue  # not a project's folder (nothing of ours writes one)
        runs.setdefault(name, set())
        artifacts.setdefault(name, set())
        if len(parts) == 5 and parts[2] == "runs" and parts[4] == "start":
            runs[name].add(parts[3])
        elif len(parts) >= 5 and parts[2] == "artifacts" and parts[4] == "versions":
            artifacts[name].add(parts[3])
    try:
        me: str | None = identity_info().public.fingerprint
    except ArtifactStoreError:
        me = None  # no identity: public projects only
    found = []
    for name in sorted(runs):
        keys = ProjectKeys(backend, name, None)
        info = keys.info()
        visibility = "public" if info is None else info.visibility
        readable = visibility == "public" or (
            me is not None and any(m.fingerprint == me for m in keys.members()))
        found.append(ProjectListing(name, visibility, readable, len(runs[name]),
                                    len(artifacts[name])))
    return found


def project_listing(url: str | os.PathLike[str] | None = None, project: str | None = None,
                    **backend_options: Any) -> list[ProjectListing]:
    """:func:`list_projects` of the store at ``url`` (discovered when None); ``project``,
    the one the caller works in, is only checked to be a valid name."""
    backend, _ = _backend(url, project, backend_options)
    try:
        return list_projects(backend)
    finally:
        backend.close()


def _backend(url: str | os.PathLike[str] | None, project: str | None,
             options: dict[str, Any]) -> tuple[Backend, str]:
    location = discover(None if url is None else os.fspath(url))
    # "" is a bad name, not "the default project" (it would write into another project)
    name = validate_project_name(project if project is not None
                                 else location.project or "default")
    backend = open_backend_stack(location.url, **options)  # creates nothing
    config_mod.load(backend, redact_url(location.url))  # a clear error when there is no store
    return backend, name


def _as_member(who: PublicIdentity | str) -> Member:
    public = PublicIdentity.parse(who) if isinstance(who, str) else who
    return Member(public.x25519, public.ed25519)


def _my_keys(keys: ProjectKeys, me: Identity, info: ProjectInfo) -> dict[int, bytes]:
    return keys.unlock(me.x25519_private, member_of(me)) if info.encrypted else {}


def create_project(name: str, url: str | os.PathLike[str] | None = None, *,
                   visibility: str = "private", members: Iterable[PublicIdentity | str] = (),
                   passphrase: str | None = None, scrypt: ScryptParams | None = None,
                   **backend_options: Any) -> ProjectSummary:
    """Create project ``name``, owned by the user's identity (created if needed)."""
    extra = list(dict.fromkeys(_as_member(m) for m in members))  # bad lines fail first
    backend, name = _backend(url, name, backend_options)
    me = load_or_create_identity()
    keys = ProjectKeys(backend, name, me.signing_key)
    if keys.info() is None:
        # Why: a project without a record but with members or keys had its record
        # deleted; a new record would hand it to whoever creates it (docs/security.md).
        found = contradictions(name, None, backend.list(f"projects/{name}/"))
        if found:
            raise IntegrityError(str(found[0]))
    epoch_keys = keys.create(visibility, member_of(me), members=extra,
                             passphrase=passphrase, scrypt=scrypt)
    declared = declared_profile()
    if declared is not None:  # the creator's name and e-mail, if it declares them
        ring = keys.ring(epoch_keys) if epoch_keys else None
        ProfileBook(backend, name, RecordCodec(signer=me.signing_key, ring=ring)).declare(
            member_of(me), declared.name, declared.email)
    return show_project(name, url, **backend_options)


def show_project(name: str | None = None, url: str | os.PathLike[str] | None = None, *,
                 cache_dir: str | os.PathLike[str] | None = None,
                 **backend_options: Any) -> ProjectSummary:
    """The project as the store shows it, and whether this machine's pin matches."""
    backend, name = _backend(url, name, backend_options)
    keys = ProjectKeys(backend, name, None)
    info = keys.info()
    pins = _pins(backend, name, cache_dir)
    pin = None if pins is None else pins.load()
    if info is None:
        if not any(True for _ in backend.list(f"projects/{name}/")):
            # Why: "public" would be a guess (a private-by-default store makes it private).
            where = redact_url(discover(None if url is None else os.fspath(url)).url)
            raise NotFoundError(f"project {name!r} does not exist in {where}; the first "
                                "write into it creates "
                                f"it, or run 'artifactstore project create {name}'")
        # Records without a project record: made before projects had records (public).
        return ProjectSummary(name, "public", None, (), 0,
                              pinned=pin is not None, pin_matches=pin is None)
    epochs = keys.epochs()
    changes = None if pins is None or pin is None else pins.changes(
        pin, info, max(epochs, default=-1) if info.encrypted else None)
    profiles, hidden = readable_profiles(backend, name, keys, quiet_identity())
    return ProjectSummary(name, info.visibility, info.created_at,
                          tuple(m.fingerprint for m in keys.members()), len(epochs),
                          pinned=pin is not None, pin_matches=not changes,
                          pin_changes=tuple(changes or ()), profiles=profiles,
                          profiles_hidden=hidden)


def trust_project(name: str | None = None, url: str | os.PathLike[str] | None = None, *,
                  cache_dir: str | os.PathLike[str] | None = None,
                  **backend_options: Any) -> tuple[Pin | None, Pin]:
    """Re-pin ``name`` as the store shows it now, after a human checked the change.

    Forgets this machine's folder of the project (its pin AND its high-water marks,
    on purpose: they described the project before the change) and its local copies
    of the project's records, then pins the current record. Returns (old pin, new pin).
    """
    backend, name = _backend(url, name, backend_options)
    pins = _pins(backend, name, cache_dir)
    if pins is None:
        raise InvalidInputError("a memory store keeps no pins: nothing to trust")
    keys = ProjectKeys(backend, name, None)
    info = keys.info()
    if info is None:
        raise NotFoundError(f"project {name!r} has no project record to trust; see "
                            "'artifactstore project show'")
    old = None
    with contextlib.suppress(IntegrityError):  # a damaged pin is replaced all the same
        old = pins.load()
    epochs = keys.epochs() if info.encrypted else []
    pins.forget()
    _forget_copies(backend, name, cache_dir)
    return old, pins.save(info, max(epochs, default=-1))


def _pins(backend: Backend, name: str, cache_dir: str | os.PathLike[str] | None
          ) -> PinBook | None:
    known = known_dir(_cache_root(cache_dir), backend.url)
    return None if known is None else PinBook(known, name, config_mod.load(backend).store_id)


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def _forget_copies(backend: Backend, name: str,
                   cache_dir: str | os.PathLike[str] | None) -> None:
    """Drop this machine's local copies of ``name``'s create-only records (the refs
    cache of store.open): they were read from the project before the change."""
    where = hashlib.sha256(backend.url.encode()).hexdigest()[:16]
    for folder in (_cache_root(cache_dir) / "refs").glob(f"*-{where}"):
        shutil.rmtree(folder / "projects" / name, ignore_errors=True)


def add_member(name: str | None, who: PublicIdentity | str,
               url: str | os.PathLike[str] | None = None, *,
               recovery_passphrase: str | None = None,
               **backend_options: Any) -> ProjectSummary:
    """Give ``who`` (a public identity or its one-line form) access to every epoch.

    With ``recovery_passphrase`` the project's recovery member acts, not the
    user's identity: the way back in after every member identity is lost.
    """
    backend, name = _backend(url, name, backend_options)
    if recovery_passphrase is not None:
        keys = ProjectKeys(backend, name, None)
        recovery = keys.recovery(recovery_passphrase)
        keys = ProjectKeys(backend, name, recovery.signer)
        epoch_keys = keys.unlock(recovery.x25519_private, recovery.member)
        keys.add_member(_as_member(who), epoch_keys)
        return show_project(name, url, **backend_options)
    me = load_identity()
    keys = ProjectKeys(backend, name, me.signing_key)
    info = _require_member(keys, me, name)
    keys.add_member(_as_member(who), _my_keys(keys, me, info))
    return show_project(name, url, **backend_options)


def remove_member(name: str | None, who: PublicIdentity | str,
                  url: str | os.PathLike[str] | None = None,
                  **backend_options: Any) -> ProjectSummary:
    """Remove ``who`` (public line or fingerprint); encrypted projects rotate their key."""
    backend, name = _backend(url, name, backend_options)
    me = load_identity()
    keys = ProjectKeys(backend, name, me.signing_key)
    _require_member(keys, me, name)
    if isinstance(who, str) and len(who.strip()) == 32:
        found = [m for m in keys.members() if m.fingerprint == who.strip().lower()]
        if not found:
            raise NotFoundError(f"{who.strip()} is not a member of {name!r}; "
                                "see 'artifactstore project show'")
        member = found[0]
    else:
        member = _as_member(who)
    keys.remove_member(member)
    return show_project(name, url, **backend_options)


def rekey_project(name: str | None, url: str | os.PathLike[str] | None = None, *,
                  reencrypt: bool = False, progress: Callable[[int], None] | None = None,
                  on_wait: WaitCallback | None = None,
                  **backend_options: Any) -> tuple[int, ReencryptReport | None]:
    """Start a new key epoch for the current members; with ``reencrypt`` also move
    every older version and ref into it and empty the old epochs' domains, so old
    keys open nothing left in the bucket. Returns the epoch and the report.

    Emptying the old domains waits out the store's commit window (default 120 s),
    like ``gc(grace=0)``; ``on_wait(seconds_left)`` is called about once a second
    meanwhile."""
    backend, name = _backend(url, name, backend_options)
    me = load_identity()
    keys = ProjectKeys(backend, name, me.signing_key)
    _require_member(keys, me, name)
    epoch = keys.rotate()
    if not reencrypt:
        return epoch, None
    # The project opens with the user's identity, under the new epoch.
    with open_at(url, name, create=False, file_cache=False, **backend_options) as project:
        return epoch, reencrypt_project(project, progress, on_wait=on_wait)


def _require_member(keys: ProjectKeys, me: Identity, name: str) -> ProjectInfo:
    info = keys.info()
    if info is None:
        raise InvalidInputError(f"project {name!r} has no record (a public project made "
                                "before projects had members); nothing to manage")
    if member_of(me) not in keys.members():
        raise AccessDeniedError(f"identity {me.public.fingerprint} is not a member of "
                                f"{name!r}; only members can change its members")
    return info
