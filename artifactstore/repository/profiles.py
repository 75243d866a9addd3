"""Declaring this user's profile in the projects it writes in, and reading members'.

A write (``Project.ensure_writable``) declares the user's profile once per project and
machine when one is declared (``local/profile.py``) and the project's copy differs:
one listing and one read to compare, one create-only write when it changed. Nothing is
declared for a user who declared nothing, so stores and request counts stay as they
were for them (design §13.1, "Profiles").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from artifactstore.backends import Backend
from artifactstore.core.errors import AccessDeniedError, ConflictError
from artifactstore.local.identity import Identity
from artifactstore.records.codec import RecordCodec
from artifactstore.records.projects import Member, ProjectKeys
from artifactstore.repository.access import member_of

if TYPE_CHECKING:
    # The profile modules are imported by the calls that read or write profiles: every
    # opening makes a declarer, and a read (``get``) never calls it.
    from artifactstore.records.profiles import Profile

__all__ = ["member_profiles", "profile_declarer", "readable_profiles"]


def profile_declarer(backend: Backend, project: str, codec: RecordCodec,
                     identity: Identity | None, known: Path | None
                     ) -> Callable[[], Profile | None] | None:
    """What a first write calls to declare the user's profile in ``project``; None when
    this process does not write as the user's identity (no identity, recovery member)."""
    if identity is None or codec.signer is None:
        return None
    if codec.signer.public_bytes != identity.public.ed25519:
        return None

    def declare() -> Profile | None:
        from artifactstore.local.profile import (
            declared_profile,
            is_declared_in,
            mark_declared_in,
        )
        from artifactstore.records.profiles import ProfileBook

        profile = declared_profile()
        if profile is None or (known is not None and is_declared_in(known, profile)):
            return None
        try:
            written = ProfileBook(backend, project, codec).declare(
                member_of(identity), profile.name, profile.email)
        except ConflictError:
            return None  # declared meanwhile from elsewhere: checked again next time
        if known is not None:
            mark_declared_in(known, profile)
        return written

    return declare


def member_profiles(backend: Backend, project: str, codec: RecordCodec,
                    members: list[Member] | None = None) -> dict[str, Profile]:
    """Fingerprint -> latest checked profile of each current member that declared one
    (a private project's need the codec's key ring: without it, none)."""
    from artifactstore.records.profiles import ProfileBook

    if members is None:
        members = ProjectKeys(backend, project, None).members()
    return ProfileBook(backend, project, codec).latest(members)


def readable_profiles(backend: Backend, project: str, keys: ProjectKeys,
                      identity: Identity | None) -> tuple[dict[str, Profile], str | None]:
    """The members' profiles this user can read, and why none could be read (or None):
    anyone reads a public project's, only members a private or team project's."""
    info = keys.info()
    if info is None:
        return {}, None
    members = keys.members()
    if not info.encrypted:
        return member_profiles(backend, project, RecordCodec(), members), None
    if identity is None:
        return {}, "names are readable by members only (no identity here)"
    try:
        epoch_keys = keys.unlock(identity.x25519_private, member_of(identity))
    except AccessDeniedError:
        return {}, "names are readable by members only"
    return member_profiles(backend, project, RecordCodec(ring=keys.ring(epoch_keys)),
                           members), None
