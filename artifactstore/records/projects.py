"""Projects: visibility, members and key epochs (docs/design.md §13.1-13.2).

Vocabulary:

- **project record** (``projects/<p>/project``): the visibility (public, private,
  team) and the creator, written once. A project without one is public (every
  store made before it).
- **genesis**: what a project record written since issue 14 also holds, so that
  creating a project is ONE ``put_if_absent`` (no crash point between objects):
  the initial members (member event 0), and for private/team projects key epoch
  0's key id, the slots of every initial member and the recovery parameters. A
  record without it is the **old layout** (those lived in separate objects), which
  keeps reading; nothing new is written that way.
- **member**: an identity's two public keys (X25519 to receive keys, Ed25519 to
  sign), named by its **fingerprint**. Membership is the replay of the **member
  events** ``projects/<p>/members/<seq>`` (add or remove), each signed by a
  member of the state before it (the creator for event 0).
- **key epoch** (``projects/<p>/keys/<epoch>/info``): a random 32-byte epoch key
  of a private or team project, named by its key id; the newest epoch encrypts
  new data. Removing a member starts a new epoch whose key the removed member
  never receives (rotation: it does not take back what they already read).
- **slot** (``…/keys/<epoch>/slots/<fingerprint>``): the epoch key wrapped for
  one member.
- **recovery member**: with a passphrase at creation, a member whose two key
  pairs are derived from the passphrase (scrypt, parameters and salt in
  ``projects/<p>/recovery``). It holds slots like any member, survives
  rotations, and can sign: whoever knows the passphrase can read the project and
  add a new identity after every member identity is lost.
- **name key**: derived from epoch 0's key; it makes the tags that stand for
  names in keys (records.py), the same in every epoch.

Everything here is created with ``put_if_absent`` and signed; these objects are
plaintext (a storage admin sees the visibility, the members' public keys and the
epoch count, not names or contents; docs/security.md).

Length: the project record, its genesis, member events and key epochs are one
append-only log whose readers must agree on one fold of it (§13.1-13.2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from artifactstore.backends import Backend
from artifactstore.core.crypto import (
    ScryptParams,
    SigningKey,
    WrappedKey,
    generate_key,
    identity_fingerprint,
    unwrap_key,
    wrap_key,
    x25519_public,
)
from artifactstore.core.digest import derive_key, hash_bytes
from artifactstore.core.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.model.names import validate_project_name
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import Kind
from artifactstore.records.codec import KeyRing, RecordCodec, Signature
from artifactstore.records.versions import NONCE_SIZE, Fields, now, read_ref, seq_of

__all__ = ["Genesis", "Member", "ProjectInfo", "ProjectKeys", "Visibility", "immutable_project_key",
           "member_from_body"]

Visibility = Literal["public", "private", "team"]
VISIBILITIES: Final = ("public", "private", "team")
_NAME_KEY: Final = "artifactstore 2026-11-26 name key v1"
_RECOVERY_X25519: Final = "artifactstore 2026-11-26 recovery x25519 v1"
_RECOVERY_ED25519: Final = "artifactstore 2026-11-26 recovery ed25519 v1"


@dataclass(frozen=True, slots=True)
class RecoveryKeys:
    """The recovery member's private keys, derived from the passphrase."""

    x25519_private: bytes
    signer: SigningKey
    member: Member


def recovery_keys(passphrase: str, params: ScryptParams, salt: bytes) -> RecoveryKeys:
    seed = params.derive(passphrase, salt)
    x_private = derive_key(_RECOVERY_X25519, seed)
    signer = SigningKey(derive_key(_RECOVERY_ED25519, seed))
    return RecoveryKeys(x_private, signer, Member(x25519_public(x_private), signer.public_bytes))


@dataclass(frozen=True, slots=True)
class Member:
    """A member's public keys."""

    x25519: bytes
    ed25519: bytes

    @property
    def fingerprint(self) -> str:
        return identity_fingerprint(self.x25519, self.ed25519)

    def as_body(self) -> dict[str, bytes]:
        return {"x25519": self.x25519, "ed25519": self.ed25519}


@dataclass(frozen=True, slots=True)
class Genesis:
    """The first state of a project, inside its record (design §13.1)."""

    members: tuple[Member, ...]
    #: epoch 0's key id (None for a public project)
    key_id: bytes | None
    #: fingerprint -> epoch 0's key wrapped for that initial member
    slots: Mapping[str, WrappedKey]
    #: the recovery body (scrypt, salt, member) with a passphrase, else None
    recovery: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    project: str
    visibility: Visibility
    created_at: str
    creator: Member
    signature: Signature
    #: None for a record of the old layout (members/0, keys/0/info... as objects)
    genesis: Genesis | None = None
    #: BLAKE3 of the stored record's bytes, what a client pins (pins.py)
    digest: str = ""

    @property
    def encrypted(self) -> bool:
        return self.visibility != "public"


#: keys of a project that are created once and never change (a local copy is as good)
_IMMUTABLE = re.compile(
    r"projects/[^/]+/(project|recovery|members/[0-9]{10}|keys/[0-9]{10}/(info|slots/[^/]+))"
)


def immutable_project_key(key: str) -> bool:
    """Whether ``key`` is a create-only project object (record, member event, key epoch,
    key slot), so a reader may keep a local copy of it."""
    return _IMMUTABLE.fullmatch(key) is not None


def _genesis(value: object, key: str, visibility: str) -> Genesis:
    if not isinstance(value, dict):
        raise IntegrityError(f"ref {key} is malformed: bad genesis")
    members = value.get("members")
    if not isinstance(members, list) or not members:
        raise IntegrityError(f"ref {key} is malformed: a genesis without members")
    key_id, slots, recovery = value.get("key_id"), value.get("slots"), value.get("recovery")
    if not isinstance(slots, dict) or (recovery is not None and not isinstance(recovery, dict)):
        raise IntegrityError(f"ref {key} is malformed: bad genesis slots")
    # Why: a "public" genesis that carries a key (or an encrypted one without) contradicts
    # itself; readers would otherwise pick whichever half suits an attacker.
    if (visibility == "public") != (key_id is None) or (key_id is None and (slots or recovery)):
        raise IntegrityError(f"ref {key} contradicts itself: a {visibility} project "
                             f"{'with' if key_id is not None else 'without'} a key epoch")
    if key_id is not None and (type(key_id) is not bytes or len(key_id) != 16):
        raise IntegrityError(f"ref {key} is malformed: bad genesis key id")
    wrapped = {}
    for fingerprint, slot in slots.items():
        if (not isinstance(fingerprint, str) or not isinstance(slot, dict)
                or type(slot.get("ephemeral")) is not bytes
                or type(slot.get("sealed")) is not bytes):
            raise IntegrityError(f"ref {key} is malformed: bad genesis slot")
        wrapped[fingerprint] = WrappedKey(slot["ephemeral"], slot["sealed"])
    return Genesis(tuple(member_from_body(m, key) for m in members), key_id, wrapped,
                   recovery)


def member_from_body(value: object, key: str) -> Member:
    """A member from its ``{"x25519", "ed25519"}`` body; IntegrityError naming ``key``."""
    if (not isinstance(value, dict) or type(value.get("x25519")) is not bytes
            or type(value.get("ed25519")) is not bytes
            or len(value["x25519"]) != 32 or len(value["ed25519"]) != 32):
        raise IntegrityError(f"ref {key} is malformed: bad member keys")
    return Member(value["x25519"], value["ed25519"])


class ProjectKeys:
    """The project record, members and key epochs of one project."""

    def __init__(self, backend: Backend, project: str, signer: SigningKey | None) -> None:
        self._backend = backend
        self._project = validate_project_name(project)
        self._signer = signer
        self._codec = RecordCodec(signer=signer)
        self._prefix = f"projects/{self._project}/"
        self._replayed: tuple[list[Member], dict[bytes, str]] | None = None
        self._listed_epochs: list[int] | None = None
        self._info: tuple[ProjectInfo | None] | None = None
        #: listings of ``members/`` and ``keys/`` made a moment ago (:meth:`use_listing`)
        self._listings: dict[str, list[str]] = {}

    @property
    def signer(self) -> SigningKey | None:
        return self._signer

    def use_listing(self, listed: Iterable[str]) -> None:
        """The keys this process listed a moment ago under ``members/`` and ``keys/``
        (a first contact's judged listing, records/projectcheck.py): the next member
        listing and the epochs read them instead of listing again (once each)."""
        listed = list(listed)
        for part in ("members/", "keys/"):
            prefix = f"{self._prefix}{part}"
            self._listings[prefix] = [k for k in listed if k.startswith(prefix)]

    def _listed(self, prefix: str) -> list[str]:
        """``backend.list(prefix)``, or (once) the keys :meth:`use_listing` gave under it."""
        found = self._listings.pop(prefix, None)
        return list(self._backend.list(prefix)) if found is None else found

    # -- keys of the objects -----------------------------------------------------------

    def _record_key(self) -> str:
        return f"{self._prefix}project"

    def _member_key(self, seq: int) -> str:
        return f"{self._prefix}members/{seq:010d}"

    def _epoch_key(self, epoch: int) -> str:
        return f"{self._prefix}keys/{epoch:010d}/info"

    def _recovery_key(self) -> str:
        return f"{self._prefix}recovery"

    def _slot_key(self, epoch: int, slot: str) -> str:
        return f"{self._prefix}keys/{epoch:010d}/slots/{slot}"

    def _create(self, kind: Kind, key: str, body: Mapping[str, Any]) -> bool:
        payload = {"project": self._project, **body, "nonce": os.urandom(NONCE_SIZE)}
        return self._backend.put_if_absent(key, self._codec.seal(kind, key, payload))

    def _read(self, kind: Kind, key: str) -> Fields:
        return self._decode(kind, key, self._backend.get(key))

    def _decode(self, kind: Kind, key: str, data: bytes) -> Fields:
        body, signature = self._codec.open(kind, key, data)
        f = Fields(body, key, signature)
        f.expect("project", self._project)
        if f.signature.state != "valid":
            # Everything here is signed by the member who wrote it (who is checked by
            # the callers): a missing or broken signature means tampering.
            raise IntegrityError(f"ref {key} has a {f.signature.state} signature: it was "
                                 "tampered with; run 'artifactstore verify'")
        return f

    # -- the project record ---------------------------------------------------------------

    def info(self) -> ProjectInfo | None:
        """The project record, or None for a project made before records (public)."""
        if self._info is None:
            self._info = (self._read_info(),)
        return self._info[0]

    def _read_info(self) -> ProjectInfo | None:
        key = self._record_key()
        try:
            data = self._backend.get(key)
        except NotFoundError:
            return None
        f = self._decode(Kind.PROJECT, key, data)
        visibility = f.text("visibility")
        if visibility not in VISIBILITIES:
            raise IntegrityError(f"ref {key} is malformed: unknown visibility {visibility!r:.20}")
        creator = member_from_body(f.mapping("creator"), key)
        if f.signature.state != "valid" or f.signature.signer != creator.ed25519:
            raise IntegrityError(f"ref {key} is not signed by its creator: it was tampered with")
        genesis = f.opt_mapping("genesis")
        found = None if genesis is None else _genesis(genesis, key, visibility)
        if found is not None and creator not in found.members:
            raise IntegrityError(f"ref {key} is malformed: its creator is not a member")
        return ProjectInfo(self._project, visibility,  # type: ignore[arg-type]
                           f.text("created_at"), creator, f.signature, found,
                           hash_bytes(data).raw.hex())

    def create(self, visibility: str, creator: Member, *, members: Iterable[Member] = (),
               passphrase: str | None = None,
               scrypt: ScryptParams | None = None) -> dict[int, bytes]:
        """Write the project record with its genesis: ONE ``put_if_absent`` (design §13.1).

        The genesis holds the initial members (``creator``, the recovery member with a
        ``passphrase``, ``members``) and, for private/team, epoch 0's key id and every
        initial member's slot. Returns the epoch keys ({} for a public project).
        AlreadyExistsError if the project has a record (another creator won).
        """
        if visibility not in VISIBILITIES:
            raise InvalidInputError(f"unknown visibility {visibility!r}: use "
                                    "public, private or team")
        if self._signer is None or self._signer.public_bytes != creator.ed25519:
            raise InvalidInputError("the creator must sign with its own identity")
        if passphrase is not None and visibility == "public":
            raise InvalidInputError("a public project has no key to protect with a passphrase")
        initial = list(dict.fromkeys([creator, *members]))
        recovery_body = None
        if passphrase is not None:
            params, salt = scrypt or ScryptParams(), os.urandom(32)
            recovery = recovery_keys(passphrase, params, salt).member
            recovery_body = {"scrypt": {"log_n": params.log_n, "r": params.r, "p": params.p},
                             "salt": salt, "member": recovery.as_body()}
            initial.insert(1, recovery)
        epoch_keys: dict[int, bytes] = {}
        key_id = None
        slots: dict[str, dict[str, bytes]] = {}
        if visibility != "public":
            epoch_keys[0] = generate_key()
            key_id = DomainKeys.from_epoch_key(epoch_keys[0]).key_id
            for member in initial:
                wrapped = wrap_key(member.x25519, epoch_keys[0])
                slots[member.fingerprint] = {"ephemeral": wrapped.ephemeral,
                                             "sealed": wrapped.sealed}
        genesis = {"members": [m.as_body() for m in initial], "key_id": key_id,
                   "slots": slots, "recovery": recovery_body}
        self._info = self._replayed = self._listed_epochs = None
        if not self._create(Kind.PROJECT, self._record_key(), {
                "visibility": visibility, "created_at": now(),
                "creator": creator.as_body(), "genesis": genesis}):
            raise AlreadyExistsError(f"project {self._project!r} already exists; "
                                     "see 'artifactstore project show'")
        return epoch_keys

    # -- members ----------------------------------------------------------------------

    def member_seqs(self) -> list[int]:
        """The seqs of the member events in the store (listed), in order."""
        prefix = f"{self._prefix}members/"
        return sorted(s for s in (seq_of(k[len(prefix):]) for k in self._listed(prefix))
                      if s is not None)

    def member_event(self, seq: int) -> tuple[int, str, Member, int | None, Signature]:
        """``(seq, action, member, epoch, signature)`` of one event (signature checked,
        signer not: that is the replay's job)."""
        key = self._member_key(seq)
        f = self._read(Kind.MEMBER_EVENT, key)
        f.expect("seq", seq)
        action = f.text("action")
        if action not in ("add", "remove"):
            raise IntegrityError(f"ref {key} is malformed: unknown action {action!r:.20}")
        member = member_from_body(f.mapping("member"), key)
        return seq, action, member, f.opt_count("epoch"), f.signature

    def member_events(self) -> list[tuple[int, str, Member, int | None, Signature]]:
        """``(seq, action, member, epoch, signature)`` in order."""
        return [self.member_event(seq) for seq in self.member_seqs()]

    def members(self) -> list[Member]:
        """Current members, in the order they joined; an event not signed by a member
        of the state before it is an IntegrityError (a forged event adds nobody)."""
        return self._replay()[0]

    def signers(self) -> dict[bytes, str]:
        """Ed25519 key -> fingerprint of everyone who was validly a member at some point
        (they may have signed records); empty for a project without a record."""
        return dict(self._replay()[1])

    def _replay(self) -> tuple[list[Member], dict[bytes, str]]:
        """``(current members, signing key -> fingerprint of everyone validly added at
        some point)``; read once per object (opening a project asks several times)."""
        if self._replayed is None:
            self._replayed = self._read_membership()
        return self._replayed

    def _read_membership(self) -> tuple[list[Member], dict[bytes, str]]:
        info = self.info()
        if info is None:
            return [], {}
        genesis = info.genesis
        current: list[Member] = [] if genesis is None else list(genesis.members)
        trusted = {m.ed25519: m.fingerprint for m in [info.creator, *current]}
        for seq, action, member, _, signature in self.member_events():
            if genesis is not None and seq == 0:
                # Why: the genesis is event 0; a second one can only have been planted.
                raise IntegrityError(
                    f"member event 0 of project {self._project!r} exists beside its genesis: "
                    "it was planted; run 'artifactstore verify'")
            signers = [info.creator] if seq == 0 else current
            if signature.state != "valid" or all(m.ed25519 != signature.signer for m in signers):
                # Why: a bucket writer could otherwise add themselves (or drop a member).
                raise IntegrityError(
                    f"member event {seq} of project {self._project!r} is not signed by a "
                    "member: it was planted or tampered with; run 'artifactstore verify'"
                )
            if action == "add" and member not in current:
                current.append(member)
                trusted.setdefault(member.ed25519, member.fingerprint)
            elif action == "remove" and member in current:
                current.remove(member)
        return current, trusted

    def _append_member(self, action: str, member: Member, *, epoch: int | None) -> None:
        prefix = f"{self._prefix}members/"
        seqs = [s for s in (seq_of(k[len(prefix):]) for k in self._backend.list(prefix))
                if s is not None]
        info = self.info()
        first = 1 if info is not None and info.genesis is not None else 0  # genesis = event 0
        seq = max(seqs) + 1 if seqs else first
        body = {"seq": seq, "action": action, "member": member.as_body(), "epoch": epoch,
                "at": now()}
        self._replayed = None
        if not self._create(Kind.MEMBER_EVENT, self._member_key(seq), body):
            raise ConflictError("another member changed the project at the same time; retry")

    # -- key epochs -------------------------------------------------------------------

    def epochs(self) -> list[int]:
        """The key epochs (listed once per instance; a rotation by this instance adds)."""
        if self._listed_epochs is None:
            prefix = f"{self._prefix}keys/"
            found = {seq_of(k[len(prefix):].partition("/")[0])
                     for k in self._listed(prefix) if k.endswith("/info")}
            info = self.info()
            if info is not None and info.genesis is not None and info.genesis.key_id:
                found.add(0)  # epoch 0 lives in the genesis
            self._listed_epochs = sorted(e for e in found if e is not None)
        return list(self._listed_epochs)

    def key_ids(self) -> dict[int, bytes]:
        """Epoch -> key id as stored, NOT judged (sync copies domains; readers judge)."""
        info = self.info()
        found = {}
        for epoch in self.epochs():
            if epoch == 0 and info is not None and info.genesis is not None:
                found[0] = info.genesis.key_id or b""
            else:
                f = read_ref(self._backend, self._epoch_key(epoch), Kind.KEY_EPOCH)
                found[epoch] = f.raw_bytes("key_id")
        return found

    def _write_epoch(self, epoch: int, epoch_key: bytes, recipients: list[Member]) -> None:
        keys = DomainKeys.from_epoch_key(epoch_key)
        self._listed_epochs = None
        if not self._create(Kind.KEY_EPOCH, self._epoch_key(epoch),
                            {"epoch": epoch, "key_id": keys.key_id, "created_at": now()}):
            raise ConflictError("another member rotated the project key at the same time; "
                                "retry")
        for member in recipients:
            self._write_slot(epoch, epoch_key, member)

    def _write_slot(self, epoch: int, epoch_key: bytes, member: Member) -> None:
        wrapped = wrap_key(member.x25519, epoch_key)
        self._create(Kind.KEY_SLOT, self._slot_key(epoch, member.fingerprint), {
            "epoch": epoch, "recipient": member.fingerprint, "ephemeral": wrapped.ephemeral,
            "sealed": wrapped.sealed,
        })

    def _key_id(self, epoch: int) -> bytes:
        info = self.info()
        if epoch == 0 and info is not None and info.genesis is not None:
            if info.genesis.key_id is None:
                raise IntegrityError(f"project {self._project!r} is public: it has no key")
            return info.genesis.key_id  # signed by the creator with the whole record
        key = self._epoch_key(epoch)
        f = self._read(Kind.KEY_EPOCH, key)
        f.expect("epoch", epoch)
        # Why: anyone who can write to the bucket could add an epoch whose key they
        # know; members would then encrypt new data for them.
        if f.signature.state != "valid" or f.signature.signer not in self._trusted_signers():
            raise IntegrityError(f"ref {key} is not signed by a project member: a key epoch "
                                 "was planted; do not write to this project, run "
                                 "'artifactstore verify'")
        return f.raw_bytes("key_id")

    def _trusted_signers(self) -> set[bytes]:
        return set(self._replay()[1])

    def _checked(self, epoch: int, epoch_key: bytes | None) -> bytes | None:
        """``epoch_key`` if it is the key epoch ``epoch`` names (slots are not trusted)."""
        if epoch_key is None:
            return None
        if DomainKeys.from_epoch_key(epoch_key).key_id != self._key_id(epoch):
            raise IntegrityError(f"the key slot of epoch {epoch} holds another key: "
                                 "it was swapped or tampered with")
        return epoch_key

    def unlock(self, x25519_private: bytes, me: Member) -> dict[int, bytes]:
        """The epoch keys ``me`` holds a slot for; AccessDeniedError if none."""
        found: dict[int, bytes] = {}
        info = self.info()
        genesis = None if info is None else info.genesis
        for epoch in self.epochs():
            if epoch == 0 and genesis is not None and me.fingerprint in genesis.slots:
                epoch_key = self._checked(0, unwrap_key(x25519_private,
                                                        genesis.slots[me.fingerprint]))
                if epoch_key is not None:
                    found[0] = epoch_key
                continue
            key = self._slot_key(epoch, me.fingerprint)
            try:
                f = self._read(Kind.KEY_SLOT, key)
            except NotFoundError:
                continue
            if f.signature.signer not in self._trusted_signers():
                raise IntegrityError(f"ref {key} is not signed by a project member: it was "
                                     "planted; run 'artifactstore verify'")
            wrapped = WrappedKey(f.raw_bytes("ephemeral"), f.raw_bytes("sealed"))
            epoch_key = self._checked(epoch, unwrap_key(x25519_private, wrapped))
            if epoch_key is not None:
                found[epoch] = epoch_key
        if not found:
            raise AccessDeniedError(
                f"project {self._project!r} is private and identity {me.fingerprint} is not a "
                "member; ask a member to run 'artifactstore project members add'"
            )
        return found

    def recovery(self, passphrase: str) -> RecoveryKeys:
        """The recovery member's keys; AccessDeniedError for a wrong passphrase."""
        info = self.info()
        key = self._recovery_key()
        if info is not None and info.genesis is not None:
            if info.genesis.recovery is None:
                raise AccessDeniedError(f"project {self._project!r} has no recovery passphrase")
            key = self._record_key()  # the genesis holds it, signed with the record
            f = Fields(dict(info.genesis.recovery), key)
        else:
            try:
                f = self._read(Kind.KEY_SLOT, key)
            except NotFoundError:
                raise AccessDeniedError(
                    f"project {self._project!r} has no recovery passphrase"
                ) from None
            if info is None or f.signature.signer != info.creator.ed25519:
                raise IntegrityError(f"ref {key} is not signed by the project's creator: it "
                                     "was planted; run 'artifactstore verify'")
        s = f.mapping("scrypt")
        if any(type(s.get(k)) is not int for k in ("log_n", "r", "p")) or s["log_n"] > 22:
            raise IntegrityError(f"ref {key} is malformed: bad scrypt parameters")
        found = recovery_keys(passphrase, ScryptParams(s["log_n"], s["r"], s["p"]),
                              f.raw_bytes("salt"))
        if found.member != member_from_body(f.mapping("member"), key):
            raise AccessDeniedError(f"wrong passphrase for project {self._project!r}")
        return found

    def unlock_with_passphrase(self, passphrase: str) -> dict[int, bytes]:
        """The epoch keys the recovery member holds (all, unless it was removed)."""
        found = self.recovery(passphrase)
        return self.unlock(found.x25519_private, found.member)

    def ring(self, epoch_keys: Mapping[int, bytes]) -> KeyRing:
        """The key ring the record codec and object stores use."""
        if 0 not in epoch_keys:
            raise AccessDeniedError("the first key epoch is needed to read names; "
                                    "ask a member to add you again")
        name_key = derive_key(_NAME_KEY, epoch_keys[0])
        return KeyRing({e: DomainKeys.from_epoch_key(k) for e, k in epoch_keys.items()},
                       name_key)

    # -- changing membership --------------------------------------------------------------

    def add_member(self, member: Member, epoch_keys: Mapping[int, bytes]) -> None:
        """Give ``member`` every epoch key (it can read the history) and record the event."""
        if member in self.members():
            raise AlreadyExistsError(f"{member.fingerprint} is already a member")
        info = self.info()
        encrypted = info is not None and info.encrypted
        if encrypted:
            missing = set(self.epochs()) - set(epoch_keys)
            if missing:
                raise AccessDeniedError(f"you do not hold key epochs {sorted(missing)}; "
                                        "a member who does must add this identity")
            for epoch, epoch_key in sorted(epoch_keys.items()):
                self._write_slot(epoch, epoch_key, member)
        epochs = self.epochs()
        self._append_member("add", member, epoch=max(epochs) if epochs else None)

    def rotate(self) -> int:
        """Start a new key epoch for the current members; returns its number."""
        info = self.info()
        if info is None or not info.encrypted:
            raise InvalidInputError(f"project {self._project!r} is public: it has no key "
                                    "to rotate")
        epoch = max(self.epochs()) + 1
        self._write_epoch(epoch, generate_key(), self.members())
        return epoch

    def remove_member(self, member: Member) -> int | None:
        """Remove ``member``; for an encrypted project start a new epoch without it.

        Returns the new epoch number (None for a public project). Data logged
        before stays readable to whoever kept its keys (see docs/security.md).
        """
        current = self.members()
        if member not in current:
            raise NotFoundError(f"{member.fingerprint} is not a member of {self._project!r}")
        remaining = [m for m in current if m != member]
        if not remaining:
            raise InvalidInputError("cannot remove the last member: nobody could read the "
                                    "project any more")
        info = self.info()
        new_epoch = None
        if info is not None and info.encrypted:
            new_epoch = max(self.epochs()) + 1
            self._write_epoch(new_epoch, generate_key(), remaining)
        self._append_member("remove", member, epoch=new_epoch)
        return new_epoch
