"""A Hypothesis state machine: versions and aliases of concurrent writers against a dict model.

Three writers, each a ``Refs`` with its own caches over the same memory store,
commit versions and set, move, remove, protect and unprotect aliases. A *race*
runs one writer's operation inside another's: right before the first writer's
create (``put_if_absent``), the second writer's whole operation runs, so the
first writer decided on a state that is stale by the time it writes. The rule
the refs follow (design §10) is that every such race resolves as if the winner
had gone first: the loser's create fails, it reads the winner's record and
decides again. The model therefore applies the two operations in that order.

After every step a fresh reader (no cache) and every writer must agree with the
model: artifacts listed, version numbers dense and unique, the latest live
version, every record's content and writer, alias targets, each alias's history
in order, and the refusals of protected aliases. The same machine runs on
signed and encrypted refs (a private project's codec).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from artifactstore.backends import Backend, MemoryBackend, drop_memory_store
from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.core.crypto import SigningKey
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import NotFoundError
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.records.aliases import AliasEvent, ProtectedAliasError
from artifactstore.records.codec import KeyRing, RecordCodec
from artifactstore.records.refs import NewVersion, Refs, VersionRecord
from artifactstore.testing.strategies import ALIASES, alias_names, artifact_names

PROJECT = "proj"
ARTIFACTS = ("a", "ab")  # "a" is a prefix of "ab": listings must tell them apart
WRITERS = 3
CONTENTS = ("c0", "c1", "c2")
RING = KeyRing({0: DomainKeys.from_epoch_key(bytes(range(32)))}, name_key=bytes(32))
SIGNERS = [SigningKey.generate() for _ in range(WRITERS)]


class Interleaving(BackendWrapper):
    """Runs a queued operation of another writer right before this writer's next create."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.before_create: Callable[[], object] | None = None
        self.lost = 0

    def put_if_absent(self, key: str, data: bytes) -> bool:
        hook, self.before_create = self.before_create, None
        if hook is not None:
            hook()
        created = self._inner.put_if_absent(key, data)
        self.lost += not created
        return created


def digest(content: str) -> Digest:
    return hash_bytes(content.encode())


# -- the model --------------------------------------------------------------------------


@dataclass
class Event:
    target: int | None
    previous: int | None
    protected: bool
    forced: bool
    by: str


@dataclass
class ArtifactModel:
    #: number -> (content, writer)
    versions: list[tuple[str, str]] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)
    aliases: dict[str, list[Event]] = field(default_factory=dict)

    @property
    def live(self) -> list[int]:
        return [n for n in range(len(self.versions)) if n not in self.deleted]


#: an operation: ("commit", artifact, content), ("set", artifact, alias, number, protect,
#: force), ("remove", artifact, alias, force) or ("protect", artifact, alias, protect)
Op = tuple[Any, ...]

OPS: st.SearchStrategy[Op] = st.one_of(
    st.tuples(st.just("commit"), artifact_names(ARTIFACTS), st.sampled_from(CONTENTS)),
    st.tuples(st.just("set"), artifact_names(ARTIFACTS), alias_names(), st.integers(0, 3),
              st.sampled_from([None, True, False]), st.booleans()),
    st.tuples(st.just("remove"), artifact_names(ARTIFACTS), alias_names(), st.booleans()),
    st.tuples(st.just("protect"), artifact_names(ARTIFACTS), alias_names(), st.booleans()),
)

#: what an operation came to: ("record", number, created), ("event", seq) or an error class
Outcome = tuple[Any, ...]


class RefsMachine(RuleBasedStateMachine):
    encrypted = False

    def __init__(self) -> None:
        super().__init__()
        self.name = f"refs-sm-{uuid.uuid4().hex[:10]}"
        self.backend = MemoryBackend(self.name)
        self.wrappers = [Interleaving(MemoryBackend(self.name)) for _ in range(WRITERS)]
        self.writers = [self._refs(w) for w in range(WRITERS)]
        self.model: dict[str, ArtifactModel] = {a: ArtifactModel() for a in ARTIFACTS}

    def teardown(self) -> None:
        drop_memory_store(self.name)

    def _codec(self, writer: int | None) -> RecordCodec:
        if not self.encrypted:
            return RecordCodec()
        return RecordCodec(signer=None if writer is None else SIGNERS[writer], ring=RING)

    def _refs(self, writer: int) -> Refs:
        return Refs(self.wrappers[writer], PROJECT, self._codec(writer))

    def _reader(self) -> Refs:
        return Refs(self.backend, PROJECT, self._codec(None))

    # -- running one operation against the store and the model --------------------------

    def _run(self, writer: int, op: Op) -> Outcome:
        refs, by = self.writers[writer], f"w{writer}"
        kind, artifact = op[0], op[1]
        try:
            if kind == "commit":
                record, created = refs.commit_version(NewVersion(
                    artifact, type="model", manifest=digest("m-" + op[2]), digest=digest(op[2]),
                    size=len(op[2]), files=1, created_by=by))
                return ("record", record.number, created, record.digest)
            if kind == "set":
                _, _, alias, number, protect, force = op
                event = refs.set_alias(artifact, alias, number, force=force, protect=protect,
                                       by=by)
            elif kind == "remove":
                event = refs.remove_alias(artifact, op[2], force=op[3], by=by)
            else:
                event = refs.set_protection(artifact, op[2], op[3], by=by)
            return ("event", event.seq)
        except (NotFoundError, ProtectedAliasError) as exc:
            return (type(exc),)

    def _expect(self, writer: int, op: Op) -> Outcome:
        """What ``op`` by ``writer`` must come to on the model as it is now; applies it."""
        by = f"w{writer}"
        kind, artifact = op[0], op[1]
        a = self.model[artifact]
        if kind == "commit":
            content = op[2]
            live = a.live
            if live and a.versions[live[-1]][0] == content:
                return ("record", live[-1], False, digest(content))
            a.versions.append((content, by))
            return ("record", len(a.versions) - 1, True, digest(content))
        history = a.aliases.get(op[2], [])
        last = history[-1] if history else None
        if kind == "set":
            _, _, _, number, protect, force = op
            if number >= len(a.versions) or number in a.deleted:
                return (NotFoundError,)
            guarded = last is not None and last.protected
            protected = guarded if protect is None else protect
            current = None if last is None else last.target
            if current == number and protected == guarded:
                return ("event", len(history) - 1)
            if guarded and not force:
                return (ProtectedAliasError,)
            new = Event(number, current, protected, guarded, by)
        elif kind == "remove":
            if last is None or last.target is None:
                return (NotFoundError,)
            if last.protected and not op[3]:
                return (ProtectedAliasError,)
            new = Event(None, last.target, False, last.protected, by)
        else:
            if last is None or last.target is None:
                return (NotFoundError,)
            if last.protected == op[3]:
                return ("event", len(history) - 1)
            new = Event(last.target, last.target, op[3], last.protected, by)
        seq = len(history)
        a.aliases.setdefault(op[2], []).append(new)
        return ("event", seq)

    def _step(self, writer: int, op: Op) -> None:
        got = self._run(writer, op)
        assert got == self._expect(writer, op), (writer, op)

    # -- rules ----------------------------------------------------------------------------

    @rule(writer=st.integers(0, WRITERS - 1), op=OPS)
    def step(self, writer: int, op: Op) -> None:
        self._step(writer, op)

    @rule(first=st.integers(0, WRITERS - 1), other=st.integers(1, WRITERS - 1), op=OPS,
          racing=OPS, same_target=st.booleans())
    def race(self, first: int, other: int, op: Op, racing: Op, same_target: bool) -> None:
        """``racing`` by another writer runs right before ``op``'s create; ``op`` must
        then come to what it would after ``racing``. If ``op`` writes nothing (a refusal,
        no change), ``racing`` runs after it. With ``same_target`` both name the same
        artifact (and alias), so that the second one's create takes the first one's key."""
        second = (first + other) % WRITERS
        if same_target:
            racing = (racing[0], op[1], *racing[2:])
            if op[0] != "commit" and racing[0] != "commit":
                racing = (racing[0], op[1], op[2], *racing[3:])
        ran: list[bool] = []

        def hook() -> None:
            ran.append(True)
            self._step(second, racing)

        self.wrappers[first].before_create = hook
        lost = self.wrappers[first].lost
        got = self._run(first, op)
        self.wrappers[first].before_create = None
        event(f"race: {op[0]} {'lost' if self.wrappers[first].lost > lost else 'won'}")
        assert got == self._expect(first, op), (first, op, second, racing, ran)
        if not ran:
            self._step(second, racing)

    @rule(artifact=artifact_names(ARTIFACTS), number=st.integers(0, 4))
    def delete(self, artifact: str, number: int) -> None:
        a = self.model[artifact]
        if number < len(a.versions) and number not in a.deleted:
            self.writers[number % WRITERS].lifecycle.append(
                "delete", by="test", artifact=artifact, numbers=[number])
            a.deleted.add(number)

    @rule(artifact=artifact_names(ARTIFACTS), number=st.integers(0, 4))
    def restore(self, artifact: str, number: int) -> None:
        a = self.model[artifact]
        if number in a.deleted:
            self.writers[number % WRITERS].lifecycle.append(
                "restore", by="test", artifact=artifact, numbers=[number])
            a.deleted.discard(number)

    @rule(writer=st.integers(0, WRITERS - 1))
    def restart(self, writer: int) -> None:
        """The writer's process starts again: empty caches."""
        self.writers[writer] = self._refs(writer)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def a_fresh_reader_agrees(self) -> None:
        self._agrees(self._reader(), records=True)

    @invariant()
    def every_writer_agrees(self) -> None:
        for refs in self.writers:
            self._agrees(refs, records=False)

    def _agrees(self, refs: Refs, *, records: bool) -> None:
        with_versions = sorted(n for n, a in self.model.items() if a.versions)
        assert refs.artifacts(include_deleted=True) == with_versions
        assert refs.artifacts() == sorted(n for n, a in self.model.items() if a.live)
        for name, a in self.model.items():
            if not a.versions:
                with pytest.raises(NotFoundError):
                    refs.latest(name)
                continue
            # dense and unique: every number once, none skipped, deleted ones kept
            assert refs.version_numbers(name) == list(range(len(a.versions)))
            live = a.live
            if live:
                latest = refs.latest(name)
                assert (latest.number, latest.digest) == (live[-1], digest(a.versions[live[-1]][0]))
                assert [r.number for r in refs.versions(name)] == live
            else:
                with pytest.raises(NotFoundError, match="every version"):
                    refs.latest(name)
            assert refs.aliases(name) == {
                alias: h[-1].target for alias, h in a.aliases.items() if h[-1].target is not None}
            if records:
                self._records_agree(refs, name, a)

    def _records_agree(self, refs: Refs, name: str, a: ArtifactModel) -> None:
        for number, (content, by) in enumerate(a.versions):
            record = refs.version(name, number, include_deleted=True)
            assert (record.digest, record.created_by) == (digest(content), by)
            self._signed_by(record, by)
        for alias in ALIASES:
            history = a.aliases.get(alias)
            if not history:
                with pytest.raises(NotFoundError, match="never been set"):
                    refs.alias_history(name, alias)
                continue
            events = refs.alias_history(name, alias)
            assert [e.seq for e in events] == list(range(len(history)))
            assert [Event(e.target, e.previous, e.protected, e.forced, e.by)
                    for e in events] == history
            for e in events:
                self._signed_by(e, e.by)
            target = history[-1].target
            if target is not None and target not in a.deleted:
                assert refs.resolve(name, alias).number == target
            else:
                with pytest.raises(NotFoundError):
                    refs.resolve(name, alias)

    def _signed_by(self, record: VersionRecord | AliasEvent, by: str) -> None:
        if not self.encrypted:
            assert record.signature.state == "unsigned"
            return
        writer = int(by.removeprefix("w"))
        assert record.signature.state == "valid"
        assert record.signature.signer == SIGNERS[writer].public_bytes
        assert record.signature.key_id == RING.current.key_id


class EncryptedRefsMachine(RefsMachine):
    """The same, on a private project's refs: signed by each writer, names in keys tagged."""

    encrypted = True


# Deterministic: the same examples every run; ~10 s each on the team's machine.
_SETTINGS = settings(max_examples=100, stateful_step_count=50, deadline=None,
                     derandomize=True, database=None)
RefsMachine.TestCase.settings = _SETTINGS
EncryptedRefsMachine.TestCase.settings = settings(_SETTINGS, max_examples=40)
TestRefs = RefsMachine.TestCase
TestEncryptedRefs = EncryptedRefsMachine.TestCase


# -- the interleaving itself makes writers lose races --------------------------------------


def _pair() -> tuple[list[Interleaving], list[Refs], str]:
    name = f"refs-race-{uuid.uuid4().hex[:10]}"
    wrappers = [Interleaving(MemoryBackend(name)) for _ in range(2)]
    return wrappers, [Refs(w, PROJECT) for w in wrappers], name


def test_a_commit_that_loses_the_race_takes_the_next_number() -> None:
    wrappers, (a, b), name = _pair()
    try:
        wrappers[0].before_create = lambda: b.commit_version(NewVersion(
            "m", type="model", manifest=digest("mb"), digest=digest("b"), size=1, files=1,
            created_by="b"))
        record, created = a.commit_version(NewVersion(
            "m", type="model", manifest=digest("ma"), digest=digest("a"), size=1, files=1,
            created_by="a"))
        assert (record.number, created, wrappers[0].lost) == (1, True, 1)
        assert [r.created_by for r in Refs(MemoryBackend(name), PROJECT).versions("m")] == [
            "b", "a"]
    finally:
        drop_memory_store(name)


def test_an_alias_move_that_loses_the_race_is_decided_again() -> None:
    wrappers, (a, b), name = _pair()
    try:
        for content in ("x", "y", "z"):
            a.commit_version(NewVersion("m", type="model", manifest=digest("m" + content),
                                        digest=digest(content), size=1, files=1))
        a.set_alias("m", "prod", 0)
        # b protects the alias while a is about to move it: a's retry must refuse
        wrappers[0].before_create = lambda: b.set_protection("m", "prod", True, by="b")
        with pytest.raises(ProtectedAliasError):
            a.set_alias("m", "prod", 2, by="a")
        assert wrappers[0].lost == 1
        assert [(e.target, e.protected, e.by) for e in b.alias_history("m", "prod")] == [
            (0, False, a.alias_history("m", "prod")[0].by), (0, True, "b")]
    finally:
        drop_memory_store(name)
