"""Projects (design §13.1-13.2): visibility, members, key epochs, slots, rotation, and
what a bucket writer who is not a member cannot do."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from artifactstore.backends.memory import MemoryBackend
from artifactstore.core.crypto import SigningKey, generate_key, x25519_keypair
from artifactstore.core.digest import Digest
from artifactstore.core.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.records.codec import RecordCodec
from artifactstore.records.projects import Member, ProjectKeys
from artifactstore.records.refs import NewVersion, Refs
from artifactstore.testing.keys import CHEAP_SCRYPT
from artifactstore.testing.oldlayout import create_old_layout

DIGEST = Digest(bytes(range(32)))


@dataclass
class Person:
    x25519_private: bytes
    signer: SigningKey
    member: Member

    @classmethod
    def new(cls) -> Person:
        private, public = x25519_keypair()
        signer = SigningKey.generate()
        return cls(private, signer, Member(public, signer.public_bytes))

    def projects(self, backend: MemoryBackend) -> ProjectKeys:
        return ProjectKeys(backend, "p", self.signer)


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend(f"projects-{uuid.uuid4().hex}")


Make = Callable[..., dict[int, bytes]]


@pytest.fixture(params=["genesis", "old-layout"])
def make(request: pytest.FixtureRequest) -> Make:
    """Create a project as this version does (one genesis record) or as stores made
    before it hold it (separate objects): both must keep working."""
    def make(keys: ProjectKeys, visibility: str, creator: Member,
             **options: Any) -> dict[int, bytes]:
        if request.param == "old-layout":
            return create_old_layout(keys, visibility, creator, **options)
        return keys.create(visibility, creator, **options)
    return make


def test_a_project_without_record_is_public(backend: MemoryBackend) -> None:
    assert Person.new().projects(backend).info() is None


def test_private_project_round_trip(make: Make, backend: MemoryBackend) -> None:
    alice = Person.new()
    keys = make(alice.projects(backend), "private", alice.member)
    info = alice.projects(backend).info()
    assert info is not None
    assert (info.visibility, info.creator, info.encrypted) == ("private", alice.member, True)
    assert alice.projects(backend).unlock(alice.x25519_private, alice.member) == keys
    assert alice.projects(backend).members() == [alice.member]
    with pytest.raises(AlreadyExistsError, match="already exists"):
        alice.projects(backend).create("private", alice.member)


def test_members_add_and_remove_rotate_the_key(make: Make, backend: MemoryBackend) -> None:
    alice, bob = Person.new(), Person.new()
    projects = alice.projects(backend)
    keys = make(projects, "team", alice.member)
    with pytest.raises(AccessDeniedError, match="not a member"):
        bob.projects(backend).unlock(bob.x25519_private, bob.member)
    projects.add_member(bob.member, keys)
    assert bob.projects(backend).unlock(bob.x25519_private, bob.member) == keys
    assert projects.remove_member(bob.member) == 1
    alice_keys = projects.unlock(alice.x25519_private, alice.member)
    assert set(alice_keys) == {0, 1}
    assert alice_keys[1] != alice_keys[0]
    # Bob keeps epoch 0 (rotation does not take back what was shared) but never gets 1.
    assert set(bob.projects(backend).unlock(bob.x25519_private, bob.member)) == {0}
    assert projects.members() == [alice.member]
    with pytest.raises(InvalidInputError, match="last member"):
        projects.remove_member(alice.member)
    with pytest.raises(NotFoundError, match="not a member"):
        projects.remove_member(bob.member)


def test_data_logged_after_removal_is_unreadable_to_the_removed(
        make: Make,         backend: MemoryBackend) -> None:
    alice, bob = Person.new(), Person.new()
    projects = alice.projects(backend)
    keys = make(projects, "team", alice.member)
    projects.add_member(bob.member, keys)
    projects.remove_member(bob.member)
    ring = projects.ring(projects.unlock(alice.x25519_private, alice.member))
    refs = Refs(backend, "p", RecordCodec(signer=alice.signer, ring=ring))
    refs.commit_version(NewVersion("after", type="model", manifest=DIGEST, digest=DIGEST,
                                   size=1, files=1))
    bob_ring = projects.ring(bob.projects(backend).unlock(bob.x25519_private, bob.member))
    with pytest.raises(AccessDeniedError, match="members add"):
        Refs(backend, "p", RecordCodec(ring=bob_ring)).version("after", 0)


def test_the_recovery_passphrase_reads_and_can_add_a_new_identity(
        make: Make,         backend: MemoryBackend) -> None:
    alice, newcomer = Person.new(), Person.new()
    keys = make(alice.projects(backend), "private", alice.member, passphrase="horse",
                                          scrypt=CHEAP_SCRYPT)
    assert alice.projects(backend).unlock_with_passphrase("horse") == keys
    with pytest.raises(AccessDeniedError, match="wrong passphrase"):
        alice.projects(backend).unlock_with_passphrase("pony")
    # Alice's identity is lost; whoever knows the passphrase lets a new identity in.
    recovery = ProjectKeys(backend, "p", None).recovery("horse")
    as_recovery = ProjectKeys(backend, "p", recovery.signer)
    as_recovery.add_member(newcomer.member,
                           as_recovery.unlock(recovery.x25519_private, recovery.member))
    assert newcomer.projects(backend).unlock(newcomer.x25519_private, newcomer.member) == keys
    # The recovery member survives rotations.
    alice.projects(backend).remove_member(newcomer.member)
    assert set(alice.projects(backend).unlock_with_passphrase("horse")) == {0, 1}


def test_forged_member_events_are_refused(make: Make, backend: MemoryBackend) -> None:
    alice, mallory = Person.new(), Person.new()
    make(alice.projects(backend), "private", alice.member)
    # Mallory can write to the bucket and signs an "add me" event with her own key.
    mallory.projects(backend)._append_member("add", mallory.member, epoch=0)
    with pytest.raises(IntegrityError, match="not signed by a member"):
        alice.projects(backend).members()


def test_a_planted_key_epoch_is_refused(make: Make, backend: MemoryBackend) -> None:
    alice, mallory = Person.new(), Person.new()
    make(alice.projects(backend), "private", alice.member)
    # Mallory adds epoch 1 with a key she knows, wrapped for Alice.
    mallory.projects(backend)._write_epoch(1, generate_key(), [alice.member])
    with pytest.raises(IntegrityError, match="not signed by a project member"):
        alice.projects(backend).unlock(alice.x25519_private, alice.member)


def test_a_swapped_slot_is_refused(make: Make, backend: MemoryBackend) -> None:
    alice = Person.new()
    projects = alice.projects(backend)
    make(projects, "private", alice.member)
    projects.rotate()
    other = MemoryBackend(f"projects-{uuid.uuid4().hex}")
    make(alice.projects(other), "private", alice.member)
    alice.projects(other).rotate()
    slot = f"projects/p/keys/{1:010d}/slots/{alice.member.fingerprint}"
    backend.put(slot, other.get(slot))  # a valid slot of another project, same person
    with pytest.raises(IntegrityError, match="holds another key"):
        projects.unlock(alice.x25519_private, alice.member)


def test_public_projects_have_members_but_no_keys(make: Make, backend: MemoryBackend) -> None:
    alice, bob = Person.new(), Person.new()
    projects = alice.projects(backend)
    assert make(projects, "public", alice.member) == {}
    projects.add_member(bob.member, {})
    assert projects.members() == [alice.member, bob.member]
    assert projects.epochs() == []
    assert projects.remove_member(bob.member) is None


def test_the_ring_derives_names_from_epoch_zero(make: Make, backend: MemoryBackend) -> None:
    alice = Person.new()
    projects = alice.projects(backend)
    keys = make(projects, "private", alice.member)
    ring = projects.ring(keys)
    assert ring.current == DomainKeys.from_epoch_key(keys[0])
    with pytest.raises(AccessDeniedError, match="first key epoch"):
        projects.ring({1: keys[0]})
