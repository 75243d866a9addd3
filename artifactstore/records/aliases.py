"""Alias events (docs/design.md §10.2): the append-only history of every alias.

Vocabulary:

- **alias event**: the immutable fact "alias X of artifact A was set to version
  N (or removed), event number ``seq``", stored once under
  ``projects/<P>/artifacts/<A>/aliases/<X>/<seq, 10 digits>`` with
  ``put_if_absent``.
- **alias log**: the events of one alias, ``seq`` 0, 1, 2, …: a total order.
  An alias's current target and protection are those of its last event; a
  removed alias's last event has target None.
- **protected**: a protected alias refuses to move, be removed or be
  unprotected unless the writer passes ``force``.

A writer reads the last event, decides, and creates ``seq + 1``; if another
writer appended first, it reads that event and decides again against it, so
every move is recorded exactly once and the rules always apply to the state the
move actually follows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from artifactstore.backends import Backend
from artifactstore.core.errors import ConflictError, IntegrityError
from artifactstore.objects.envelope import Kind
from artifactstore.records import journal
from artifactstore.records.codec import PLAIN, UNSIGNED, RecordCodec, Signature
from artifactstore.records.versions import (
    NONCE_SIZE,
    artifact_prefix,
    now,
    read_ref,
    require_atomic_create,
    seq_of,
)

__all__ = ["AliasEvent", "AliasLog", "ProtectedAliasError", "alias_event_key"]

MAX_SEQ: Final = 9_999_999_999


class ProtectedAliasError(ConflictError):
    """The alias is protected; moving, removing or unprotecting it needs ``force``."""


@dataclass(frozen=True, slots=True)
class AliasEvent:
    """One change of an alias: set to ``target`` (None: removed), after ``previous``.

    ``forced`` is True when the change overrode the alias's protection.
    """

    artifact: str
    alias: str
    seq: int
    target: int | None
    previous: int | None
    protected: bool
    at: str
    by: str
    forced: bool
    signature: Signature = field(default=UNSIGNED, compare=False)


def aliases_prefix(project: str, artifact: str) -> str:
    """``projects/<P>/artifacts/<A>/aliases/``."""
    return f"{artifact_prefix(project, artifact)}aliases/"


def alias_event_key(project: str, artifact: str, alias: str, seq: int) -> str:
    """The key of event ``seq`` of ``alias``."""
    return f"{aliases_prefix(project, artifact)}{alias}/{seq:010d}"


def encode_event(project: str, event: AliasEvent, nonce: bytes, key: str,
                 codec: RecordCodec = PLAIN) -> bytes:
    """The envelope bytes of ``event`` (``nonce`` as for version records)."""
    body = {
        "project": project,
        "artifact": event.artifact,
        "alias": event.alias,
        "seq": event.seq,
        "target": event.target,
        "previous": event.previous,
        "protected": event.protected,
        "at": event.at,
        "by": event.by,
        "forced": event.forced,
        "nonce": nonce,
    }
    return codec.seal(Kind.ALIAS_EVENT, key, body)


#: Decides the next event from the current last one (None: the alias has no
#: events): returns (target, protected, forced), or None when nothing changes.
Decision = Callable[[AliasEvent | None], tuple[int | None, bool, bool] | None]


class AliasLog:
    """The alias events of one project: read (cached) and append."""

    def __init__(self, backend: Backend, project: str, codec: RecordCodec = PLAIN) -> None:
        self._backend = backend
        self._project = project
        self._codec = codec
        self._cache: dict[tuple[str, str, int], AliasEvent] = {}

    def key(self, artifact: str, alias: str, seq: int) -> str:
        seg = self._codec.segment
        return alias_event_key(self._project, seg(artifact), seg(alias), seq)

    def seqs(self, artifact: str, alias: str) -> list[int]:
        """Event numbers of ``alias``, ascending (a fresh listing)."""
        seg = self._codec.segment
        prefix = f"{aliases_prefix(self._project, seg(artifact))}{seg(alias)}/"
        found = (seq_of(key[len(prefix) :]) for key in self._backend.list(prefix))
        return [s for s in found if s is not None]

    def last_seqs(self, artifact: str) -> dict[str, int]:
        """Alias -> number of its last event, for every alias of ``artifact`` (one listing)."""
        prefix = aliases_prefix(self._project, self._codec.segment(artifact))
        last: dict[str, int] = {}
        for key in self._backend.list(prefix):
            alias, _, name = key[len(prefix) :].partition("/")
            seq = seq_of(name)
            if seq is not None:
                last[alias] = max(seq, last.get(alias, seq))
        if not self._codec.encrypted:
            return last
        # Keys hold tags: the alias names are in the (encrypted) events.
        named = {}
        for segment, seq in last.items():
            event = self.read_key(f"{prefix}{segment}/{seq:010d}", artifact)
            named[event.alias] = seq
        return named

    def read(self, artifact: str, alias: str, seq: int) -> AliasEvent:
        """Event ``seq`` of ``alias``; NotFoundError (from the backend) if absent."""
        cached = self._cache.get((artifact, alias, seq))
        if cached is not None:
            return cached
        event = self._decode(self.key(artifact, alias, seq), artifact, alias, seq)
        self._cache[(artifact, alias, seq)] = event
        return event

    def read_key(self, key: str, artifact: str | None = None) -> AliasEvent:
        """The event stored at ``key`` (a listed key), checked against it."""
        seq = seq_of(key.rpartition("/")[2])
        if seq is None:
            raise IntegrityError(f"{key} is not an alias event key")
        event = self._decode(key, artifact, None, seq)
        self._cache.setdefault((event.artifact, event.alias, seq), event)
        return event

    def _decode(self, key: str, artifact: str | None, alias: str | None,
                seq: int) -> AliasEvent:
        f = read_ref(self._backend, key, Kind.ALIAS_EVENT, self._codec)
        f.expect("project", self._project)
        if artifact is None:
            artifact = f.text("artifact")
        if alias is None:
            alias = f.text("alias")
        seg = self._codec.segment
        if key != alias_event_key(self._project, seg(artifact), seg(alias), seq):
            raise IntegrityError(f"ref {key} is misplaced: it names another artifact or alias; "
                                 "run 'artifactstore verify'")
        f.expect("artifact", artifact)
        f.expect("alias", alias)
        f.expect("seq", seq)
        event = AliasEvent(
            artifact=artifact,
            alias=alias,
            seq=seq,
            target=f.opt_count("target"),
            previous=f.opt_count("previous"),
            protected=f.flag("protected"),
            at=f.text("at"),
            by=f.text("by"),
            forced=f.flag("forced"),
            signature=f.signature,
        )
        return event

    def history(self, artifact: str, alias: str) -> list[AliasEvent]:
        """Every event of ``alias``, oldest first."""
        return [self.read(artifact, alias, seq) for seq in self.seqs(artifact, alias)]

    def last(self, artifact: str, alias: str) -> AliasEvent | None:
        """The newest event of ``alias``, or None if it never had one."""
        seqs = self.seqs(artifact, alias)
        return self.read(artifact, alias, seqs[-1]) if seqs else None

    def append(self, artifact: str, alias: str, by: str, decide: Decision) -> AliasEvent:
        """Append the event ``decide`` asks for after the current last event.

        ``decide`` may raise (a protected alias) or return None: nothing to
        change, the current last event is returned (``decide`` must not return
        None when there is no event). On a lost race it is asked again with the
        winner's event.
        """
        require_atomic_create(self._backend)
        nonce = os.urandom(NONCE_SIZE)
        last = self.last(artifact, alias)
        while True:
            decision = decide(last)
            if decision is None:
                if last is None:
                    raise ValueError("decide() returned no change for an alias without events")
                return last
            target, protected, forced = decision
            seq = 0 if last is None else last.seq + 1
            if seq > MAX_SEQ:
                raise ConflictError(f"alias {alias!r} of {artifact!r} has too many events")
            event = AliasEvent(
                artifact=artifact,
                alias=alias,
                seq=seq,
                target=target,
                previous=None if last is None else last.target,
                protected=protected,
                at=now(),
                by=by,
                forced=forced,
                signature=self._codec.own_signature,
            )
            # Computed once per seq: a retried create compares these bytes.
            key = self.key(artifact, alias, seq)
            data = encode_event(self._project, event, nonce, key, self._codec)
            if self._backend.put_if_absent(key, data):
                self._cache[(artifact, alias, seq)] = event
                journal.note(self._backend, self._project, key)
                return event
            last = self.read(artifact, alias, seq)
