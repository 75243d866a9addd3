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
from artifactstore.core.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    ArtifactStoreError,
    IntegrityError,
    NotFoundError,
)
from artifactstore.local.identity import (
    PASSPHRASE_ENV,
    Identity,
    load_identity,
    load_or_create_identity,
)
from artifactstore.local.pins import Pin, PinBook
from artifactstore.records.codec import KeyRing, RecordCodec
from artifactstore.records.projectcheck import contradictions, judged_listing
from artifactstore.records.projects import Member, ProjectInfo, ProjectKeys
from artifactstore.records.versions import require_atomic_create

__all__ = ["PRIVATE_BY_DEFAULT", "ProjectAccess", "member_of", "project_access",
           "quiet_identity"]

#: optional feature of a store config: new projects are private (design §13.1)
PRIVATE_BY_DEFAULT = "private-by-default"
PROJECT_PASSPHRASE_ENV = "ARTIFACTSTORE_PROJECT_PASSPHRASE"


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    info: ProjectInfo | None
    codec: RecordCodec
    identity: Identity | None
    #: the listing of the project's keys that found no record (None when there is one)
    listed: tuple[str, ...] | None = None

    @property
    def ring(self) -> KeyRing | None:
        return self.codec.ring


def member_of(identity: Identity) -> Member:
    return Member(identity.public.x25519, identity.public.ed25519)


def quiet_identity() -> Identity | None:
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
                   may_create: bool, passphrase: str | None = None,
                   pins: PinBook | None = None,
                   seen_absent: tuple[str, ...] | None = None) -> ProjectAccess:
    """How to read and write ``project``; AccessDeniedError for a private project
    this identity holds no key of (``passphrase`` opens its passphrase slot).

    Only members write (docs/security.md): the codec's ``refusal`` says why this
    process may not (not a member: AccessDeniedError; a record that contradicts the
    rest: IntegrityError). ``may_create`` creates a missing project (design §13.1);
    ``pins`` (this machine's pin of the project) refuses a project that changed
    since it was pinned, and records the first contact (judged on the listing of the keys
    that can contradict the record: ``judged_listing``). ``seen_absent``: the listing of
    ``projects/<project>/`` this process made a moment ago, when it saw no record: the
    first read and the listing are not made again (the read after the listing and the
    create-only write still see a concurrent creator's project).
    """
    identity = quiet_identity()
    keys = ProjectKeys(backend, project, None if identity is None else identity.signing_key)
    info = None if seen_absent is not None else keys.info()
    pin = None if pins is None else pins.load()
    if pins is not None and pin is not None:
        if info is None:
            # A pin and no record seen: the record may have been written after this
            # process looked, by a concurrent first write on this machine (which pinned
            # it). Only a record absent after the pin was read has vanished.
            info = keys.info()
            seen_absent = None if info is not None else seen_absent
        pin = pins.check(info, None)  # a record that vanished or changed: refused
    refusal: ArtifactStoreError | None = None
    if info is None:
        # No record (usually a project about to be created): one listing of all of it
        # is one request, where the judged prefixes would be four.
        listed = (list(seen_absent) if seen_absent is not None
                  else list(backend.list(f"projects/{project}/")))
        # Read again after listing: what the listing shows of a concurrent creator's
        # project (its first records) must not be taken for another project's past.
        keys = ProjectKeys(backend, project, keys.signer)
        info = keys.info()
    if info is None:
        found = contradictions(project, None, listed)
        if found:
            refusal = IntegrityError(str(found[0]))
        elif may_create:
            # Only a write asks for creation (Store._ensure_writable): opening never does.
            identity = identity or load_or_create_identity()
            keys = _create_or_join(backend, project, identity, listed, private_by_default)
            info = keys.info()
        else:
            refusal = NotFoundError(f"project {project!r} has no project record yet: the "
                                    "first write creates it, or run 'artifactstore project "
                                    f"create {project}'")
    elif pin is None:
        # First contact: judge the record against the rest before trusting (and pinning) it.
        judged = judged_listing(backend, project, encrypted=info.encrypted)
        found = contradictions(project, info, judged)
        keys.use_listing(judged)  # the member replay below lists nothing again
        if found:
            refusal = IntegrityError(str(found[0]))
    signer = None if identity is None else identity.signing_key
    if info is None:
        return ProjectAccess(None, RecordCodec(signer=signer, refusal=refusal), identity,
                             tuple(listed))
    me = None if identity is None else identity.public.fingerprint
    if not info.encrypted and pin is not None and refusal is None and pin.writer == me:
        pass  # judged a member when pinned; a pinned public project costs no listing
    elif refusal is None:
        refusal = _backend_refusal(backend) or _membership_refusal(keys, info, identity,
                                                                   project)
    if not info.encrypted:
        _pin(pins, pin, info, -1, refusal, None if refusal is not None else me)
        return ProjectAccess(info, RecordCodec(signer=signer, refusal=refusal), identity)
    if pins is not None and pin is not None:
        # Before unlocking: a project showing fewer key epochs than pinned is refused
        # with the pin's message, whatever the slots say (the listing is made anyway).
        pins.check(info, max(keys.epochs(), default=-1))
    passphrase = passphrase or os.environ.get(PROJECT_PASSPHRASE_ENV) or None
    if passphrase is not None:
        recovery = keys.recovery(passphrase)
        epoch_keys = keys.unlock(recovery.x25519_private, recovery.member)
        signer = signer or recovery.signer  # writes are signed by the recovery member
        if isinstance(refusal, AccessDeniedError) and recovery.member in keys.members():
            refusal = None  # the recovery member writes
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
    _pin(pins, pin, info, newest, refusal)
    if newest not in epoch_keys:
        # Removed from the project: reading what was shared is still possible, but
        # writing under an old epoch would hand new data to everyone who held it.
        ring = KeyRing(ring.epochs, ring.name_key, writable=False)
    return ProjectAccess(info, RecordCodec(signer=signer, ring=ring, refusal=refusal), identity)


def _pin(pins: PinBook | None, pin: Pin | None, info: ProjectInfo, epoch: int,
         refusal: ArtifactStoreError | None, writer: str | None = None) -> None:
    """Check the epochs against the pin, or pin a project seen for the first time that
    passed the checks (one refused for a contradiction is not pinned); ``writer``: the
    identity just found a member of a public project."""
    if pins is None:
        return
    if pin is not None:
        pin = pins.check(info, epoch)
        if pin is not None and pin.writer != writer and writer is not None:
            pins.save(info, epoch, pin.first_seen, writer)
    elif not isinstance(refusal, IntegrityError):
        pins.save(info, epoch, writer=writer)


def _create_or_join(backend: Backend, project: str, identity: Identity, listed: list[str],
                    private_by_default: bool) -> ProjectKeys:
    """Create ``project`` with ``identity`` as creator, or use the one a concurrent
    creator made first (one ``put_if_absent`` decides; design §13.1)."""
    keys = ProjectKeys(backend, project, identity.signing_key)
    if private_by_default and any(k.startswith(f"projects/{project}/artifacts/")
                                  for k in listed):
        # Why: in a private-by-default store every project was created with a record;
        # one without a record but with data had its record deleted. Claiming it would
        # hand it to whoever writes first (docs/security.md, "claim").
        raise IntegrityError(f"project {project!r} holds artifacts but no project record in a "
                             "private-by-default store: its record was deleted; restore it "
                             "from a backup, run 'artifactstore verify'")
    # A project without records is claimed public (its data is plaintext already).
    visibility = "private" if private_by_default else "public"
    try:
        keys.create(visibility, member_of(identity))
    except AlreadyExistsError:  # another process won: use its project, as listed anew
        return ProjectKeys(backend, project, identity.signing_key)
    created = ProjectKeys(backend, project, identity.signing_key)
    # Why the listing made before creating may stand for members/ and keys/ now: they
    # held nothing then (else ``contradictions`` refused), and since our record won,
    # only its genesis members (this identity) may add events there. Two listings fewer
    # on a first write (the S3 push's request budget, issue 20).
    created.use_listing(listed)
    return created


def _backend_refusal(backend: Backend) -> ArtifactStoreError | None:
    """Why nothing can be written through ``backend`` (read-only, no atomic create):
    said first, since membership would not help."""
    try:
        require_atomic_create(backend)
    except ArtifactStoreError as exc:
        return exc
    return None


def _membership_refusal(keys: ProjectKeys, info: ProjectInfo, identity: Identity | None,
                        project: str) -> ArtifactStoreError | None:
    """Why ``identity`` may not write into ``project`` (None: it is a member)."""
    try:
        members = keys.members()
    except IntegrityError as exc:
        return exc  # a planted or tampered member event: nobody writes until it is fixed
    if identity is not None and member_of(identity) in members:
        return None
    if identity is not None and identity.public.ed25519 in keys.signers():
        return AccessDeniedError(
            f"identity {identity.public.fingerprint} was removed from project {project!r}: it "
            "can read what was shared before, not write; ask a member to add it again")
    if identity is None:
        return AccessDeniedError(
            f"project {project!r}: only members write and this user has no identity that "
            "opens without a prompt; set ARTIFACTSTORE_PASSPHRASE, or run 'artifactstore "
            "identity create' and ask a member to add you")
    return AccessDeniedError(
        f"identity {identity.public.fingerprint} is not a member of project {project!r}: only "
        f"members write; a member adds you with 'artifactstore project members add "
        f"\"{identity.public.to_line()}\" --project {project}'")
