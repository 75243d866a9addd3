"""Member profiles: the name and e-mail a member declares in a project (design §13.1).

Vocabulary:

- **profile**: ``projects/<p>/profiles/<fingerprint>/<seq:010d>`` (kind ``PROFILE``,
  ``put_if_absent``): ``{"project", "member": {"x25519", "ed25519"}, "seq", "name",
  "email", "at", "nonce"}``, signed by that member and, in a private or team project,
  encrypted under the current key epoch like every other record. A member declares
  itself: nobody else can write a profile that reads as theirs.
- **latest profile**: a member's profile with the highest seq that opens, is signed by
  the member its key names and names that member; others are skipped (and counted), so
  a planted or swapped object shows nothing rather than a wrong name.

Profiles are optional and opt-in (``artifactstore identity declare``): a member without
one is shown by fingerprint alone. They are display data only: nothing decides access by
them, and the fingerprint stays the thing to check (docs/security.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from artifactstore.backends import Backend
from artifactstore.core.errors import (
    AccessDeniedError,
    ConflictError,
    FormatError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.model.names import validate_project_name
from artifactstore.objects.envelope import Kind
from artifactstore.records.codec import RecordCodec
from artifactstore.records.projects import Member, member_from_body
from artifactstore.records.versions import NONCE_SIZE, Fields, now, seq_of

__all__ = ["EMAIL_MAX", "NAME_MAX", "Profile", "ProfileBook", "check_profile"]

NAME_MAX: Final = 128
EMAIL_MAX: Final = 254
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{32}")


def check_profile(name: str, email: str | None) -> tuple[str, str | None]:
    """``(name, email)`` when usable, else InvalidInputError saying what to change."""
    if (not name or len(name) > NAME_MAX or not name.isprintable()
            or name != name.strip()):
        raise InvalidInputError(
            f"name {name[:NAME_MAX]!r} is not usable: use 1 to {NAME_MAX} printable "
            "characters, without spaces at either end")
    if email is not None and (len(email) > EMAIL_MAX or not email.isprintable()
                              or not _EMAIL.fullmatch(email)):
        raise InvalidInputError(
            f"e-mail {email[:EMAIL_MAX]!r} is not usable: write it as name@domain "
            f"(at most {EMAIL_MAX} characters, no spaces)")
    return name, email


@dataclass(frozen=True, slots=True)
class Profile:
    """What one member declared, as read back (checked) from the store."""

    fingerprint: str
    name: str
    email: str | None
    at: str
    seq: int

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "email": self.email, "at": self.at, "seq": self.seq}


class ProfileBook:
    """The profiles of one project, read and written with the project's record codec."""

    def __init__(self, backend: Backend, project: str, codec: RecordCodec) -> None:
        self._backend = backend
        self._prefix = f"projects/{validate_project_name(project)}/profiles/"
        self._project = project
        self._codec = codec
        #: objects skipped by the last ``latest`` (planted, swapped, unreadable)
        self.skipped = 0

    def key(self, fingerprint: str, seq: int) -> str:
        return f"{self._prefix}{fingerprint}/{seq:010d}"

    def _seqs(self, prefix: str) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for key in self._backend.list(prefix):
            fingerprint, _, name = key[len(self._prefix):].partition("/")
            seq = seq_of(name)
            if _FINGERPRINT.fullmatch(fingerprint) and seq is not None:
                found.setdefault(fingerprint, []).append(seq)
        return found

    def latest(self, members: Iterable[Member]) -> dict[str, Profile]:
        """Fingerprint -> latest profile, for the ``members`` that declared one (one
        listing, then one read per member with a profile; newest first, older ones
        only when a newer one does not check)."""
        by_fingerprint = {m.fingerprint: m for m in members}
        self.skipped = 0
        found = {}
        for fingerprint, seqs in self._seqs(self._prefix).items():
            member = by_fingerprint.get(fingerprint)
            if member is None:
                continue  # a former member (or a planted name): not shown
            for seq in sorted(seqs, reverse=True):
                profile = self._checked(member, seq)
                if profile is not None:
                    found[fingerprint] = profile
                    break
                self.skipped += 1
        return found

    def _checked(self, member: Member, seq: int) -> Profile | None:
        key = self.key(member.fingerprint, seq)
        try:
            body, signature = self._codec.open(Kind.PROFILE, key, self._backend.get(key))
        except (NotFoundError, AccessDeniedError, IntegrityError, FormatError):
            return None
        try:
            f = Fields(body, key, signature)
            f.expect("project", self._project)
            f.expect("seq", seq)
            declared = member_from_body(f.mapping("member"), key)
            name, email = check_profile(f.text("name"), f.opt_text("email"))
            at = f.text("at")
        except (IntegrityError, InvalidInputError):
            return None
        # Why: the storage admin can copy one member's profile under another's key, and
        # anyone with write access can plant one: only the member's own signature counts.
        if (declared != member or signature.state != "valid"
                or signature.signer != member.ed25519):
            return None
        return Profile(member.fingerprint, name, email, at, seq)

    def declare(self, member: Member, name: str, email: str | None) -> Profile | None:
        """Write ``member``'s profile unless its latest one already says the same; the
        codec must sign as ``member``. Returns the new profile, or None if unchanged."""
        name, email = check_profile(name, email)
        if self._codec.signer is None or self._codec.signer.public_bytes != member.ed25519:
            raise InvalidInputError("a profile is written by the member it describes")
        seqs = self._seqs(f"{self._prefix}{member.fingerprint}/").get(member.fingerprint, [])
        for seq in sorted(seqs, reverse=True):
            last = self._checked(member, seq)
            if last is not None:
                if (last.name, last.email) == (name, email):
                    return None
                break
        seq = max(seqs, default=-1) + 1
        at = now()
        body = {"project": self._project, "member": member.as_body(), "seq": seq,
                "name": name, "email": email, "at": at, "nonce": os.urandom(NONCE_SIZE)}
        key = self.key(member.fingerprint, seq)
        if not self._backend.put_if_absent(key, self._codec.seal(Kind.PROFILE, key, body)):
            raise ConflictError("your profile was changed at the same time from elsewhere; "
                                "retry")
        return Profile(member.fingerprint, name, email, at, seq)
