"""Opening a project with the right keys (docs/design.md §13, docs/security.md).

Vocabulary:

- **access**: what this process can do in one project: its record codec (signs
  with the user's identity when there is one; encrypts in private and team
  projects) and, for those, the key ring of the epochs the identity holds.
- **private by default**: a store initialised with encryption (``artifactstore
  init``, unless ``--public``) creates each new project private, owned by the
  user's identity (created on first use, without a passphrase, so scripts run
  unattended; ``artifactstore identity create --force`` makes a protected one).

A project without a record is public and readable by anyone with the bucket; its
records are signed when the user has an identity that opens without a prompt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from artifactstore.backends import Backend
from artifactstore.errors import AccessDeniedError, NotFoundError
from artifactstore.identity import (
    PASSPHRASE_ENV,
    Identity,
    load_identity,
    load_or_create_identity,
)
from artifactstore.model.projects import Member, ProjectInfo, ProjectKeys
from artifactstore.model.records import KeyRing, RecordCodec

__all__ = ["PRIVATE_BY_DEFAULT", "ProjectAccess", "member_of", "project_access"]

#: optional feature of a store config: new projects are private (design §13.1)
PRIVATE_BY_DEFAULT = "private-by-default"
PROJECT_PASSPHRASE_ENV = "ARTIFACTSTORE_PROJECT_PASSPHRASE"


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    info: ProjectInfo | None
    codec: RecordCodec
    identity: Identity | None

    @property
    def ring(self) -> KeyRing | None:
        return self.codec.ring


def member_of(identity: Identity) -> Member:
    return Member(identity.public.x25519, identity.public.ed25519)


def _quiet_identity() -> Identity | None:
    """The user's identity if it opens without asking anything, else None.

    A passphrase that was given and is wrong is an error, not "no identity": the
    user must hear that the passphrase is wrong, not that they should create one.
    """
    try:
        return load_identity()
    except NotFoundError:
        return None
    except AccessDeniedError:
        if os.environ.get(PASSPHRASE_ENV):
            raise
        return None


def project_access(backend: Backend, project: str, *, private_by_default: bool,
                   may_create: bool, passphrase: str | None = None) -> ProjectAccess:
    """How to read and write ``project``; AccessDeniedError for a private project
    this identity holds no key of (``passphrase`` opens its passphrase slot)."""
    identity = _quiet_identity()
    keys = ProjectKeys(backend, project, None if identity is None else identity.signing_key)
    info = keys.info()
    if info is None and private_by_default and may_create:
        identity = identity or load_or_create_identity()
        keys = ProjectKeys(backend, project, identity.signing_key)
        keys.create("private", member_of(identity))
        info = keys.info()
    signer = None if identity is None else identity.signing_key
    if info is None or not info.encrypted:
        return ProjectAccess(info, RecordCodec(signer=signer), identity)
    passphrase = passphrase or os.environ.get(PROJECT_PASSPHRASE_ENV) or None
    if passphrase is not None:
        recovery = keys.recovery(passphrase)
        epoch_keys = keys.unlock(recovery.x25519_private, recovery.member)
        signer = signer or recovery.signer  # writes are signed by the recovery member
    elif identity is None:
        raise AccessDeniedError(
            f"project {project!r} is private and this user has no identity that opens it; "
            "run 'artifactstore identity create' and ask a member to add you "
            "(or set ARTIFACTSTORE_PASSPHRASE for a protected identity)"
        )
    else:
        epoch_keys = keys.unlock(identity.x25519_private, member_of(identity))
    ring = keys.ring(epoch_keys)
    newest = max(keys.epochs())
    if newest not in epoch_keys:
        # Removed from the project: reading what was shared is still possible, but
        # writing under an old epoch would hand new data to everyone who held it.
        ring = KeyRing(ring.epochs, ring.name_key, writable=False)
    return ProjectAccess(info, RecordCodec(signer=signer, ring=ring), identity)
