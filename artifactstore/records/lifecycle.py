"""Lifecycle events (docs/design.md §14): delete, restore, purge and retention.

Vocabulary:

- **lifecycle event**: the immutable fact "these versions (or runs) of project P
  were deleted / restored / purged", or "artifact A (or the whole project) keeps
  unaliased versions for ``ttl`` seconds", stored once under
  ``projects/<P>/lifecycle/<seq, 10 digits>`` with ``put_if_absent``. One log
  per project, so a reader learns every deletion with one listing, and keys name
  no artifact (private projects encrypt the events like every other ref).
- **tombstone**: a ``delete`` or ``purge`` event; the versions it names are
  *deleted*: hidden from listings, ``latest`` moves back past them, and gc may
  reclaim their blobs. ``restore`` undoes a ``delete``, never a ``purge``.
- **retention**: the TTL (seconds) of an artifact, or the project's default
  when the event names no artifact; ``None`` removes it.

The state is the replay of the log in ``seq`` order (:class:`LifecycleState`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from artifactstore.backends import Backend
from artifactstore.core.errors import ConflictError, IntegrityError, InvalidInputError
from artifactstore.model.names import validate_artifact_name
from artifactstore.objects.envelope import Kind
from artifactstore.records import journal
from artifactstore.records.codec import PLAIN, UNSIGNED, RecordCodec, Signature
from artifactstore.records.versions import (
    NONCE_SIZE,
    now,
    read_ref,
    require_atomic_create,
    seq_of,
)

__all__ = [
    "ACTIONS", "LifecycleEvent", "LifecycleLog", "LifecycleState", "lifecycle_prefix",
]  # fmt: skip

Action = Literal["delete", "restore", "purge", "retention"]
ACTIONS: Final = ("delete", "restore", "purge", "retention")
_MAX_SEQ: Final = 9_999_999_999


def lifecycle_prefix(project: str) -> str:
    return f"projects/{project}/lifecycle/"


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One lifecycle change; see the module docstring."""

    seq: int
    action: Action
    artifact: str | None = None
    numbers: tuple[int, ...] = ()
    runs: tuple[str, ...] = ()
    reason: str | None = None
    ttl: float | None = None
    at: str = ""
    by: str = ""
    signature: Signature = field(default=UNSIGNED, compare=False)


@dataclass
class LifecycleState:
    """What the replayed log says now."""

    #: artifact -> version number -> the event that deleted (or purged) it
    deleted: dict[str, dict[int, LifecycleEvent]] = field(default_factory=dict)
    deleted_runs: dict[str, LifecycleEvent] = field(default_factory=dict)
    #: artifact -> TTL seconds; ``None`` key: the project default
    retention: dict[str | None, float] = field(default_factory=dict)

    def deleted_numbers(self, artifact: str) -> frozenset[int]:
        return frozenset(self.deleted.get(artifact, ()))

    def tombstone(self, artifact: str, number: int) -> LifecycleEvent | None:
        return self.deleted.get(artifact, {}).get(number)

    def ttl(self, artifact: str) -> float | None:
        return self.retention.get(artifact, self.retention.get(None))

    def apply(self, event: LifecycleEvent) -> None:
        if event.action == "retention":
            if event.ttl is None:
                self.retention.pop(event.artifact, None)
            else:
                self.retention[event.artifact] = event.ttl
            return
        versions = self.deleted.setdefault(event.artifact, {}) if event.artifact else {}
        if event.action in ("delete", "purge"):
            for number in event.numbers:
                earlier = versions.get(number)
                if earlier is None or earlier.action != "purge":
                    versions[number] = event
            for run_id in event.runs:
                self.deleted_runs[run_id] = event
        else:  # restore: a purge is final
            for number in event.numbers:
                earlier = versions.get(number)
                if earlier is not None and earlier.action != "purge":
                    del versions[number]
            for run_id in event.runs:
                self.deleted_runs.pop(run_id, None)


class LifecycleLog:
    """The lifecycle events of one project: read (cached), replay and append."""

    def __init__(self, backend: Backend, project: str, codec: RecordCodec = PLAIN) -> None:
        self._backend = backend
        self._project = project
        self._codec = codec
        self._cache: dict[int, LifecycleEvent] = {}

    def key(self, seq: int) -> str:
        return f"{lifecycle_prefix(self._project)}{seq:010d}"

    def seqs(self) -> list[int]:
        prefix = lifecycle_prefix(self._project)
        found = (seq_of(key[len(prefix):]) for key in self._backend.list(prefix))
        return [s for s in found if s is not None]

    def read(self, seq: int) -> LifecycleEvent:
        cached = self._cache.get(seq)
        if cached is None:
            cached = self._cache[seq] = self._decode(seq)
        return cached

    def events(self) -> list[LifecycleEvent]:
        """Every event, oldest first (a fresh listing)."""
        return [self.read(seq) for seq in self.seqs()]

    def state(self) -> LifecycleState:
        state = LifecycleState()
        for event in self.events():
            state.apply(event)
        return state

    def append(
        self,
        action: Action,
        *,
        by: str,
        artifact: str | None = None,
        numbers: Iterable[int] = (),
        runs: Sequence[str] = (),
        reason: str | None = None,
        ttl: float | None = None,
    ) -> LifecycleEvent:
        """Append one event at the next free ``seq`` (retrying past concurrent writers)."""
        require_atomic_create(self._backend)
        if action not in ACTIONS:
            raise InvalidInputError(f"unknown lifecycle action {action!r}")
        if artifact is not None:
            validate_artifact_name(artifact)
        if reason is not None and (not isinstance(reason, str) or len(reason) > 4096):
            raise InvalidInputError("a reason is a str of at most 4096 characters")
        nonce = os.urandom(NONCE_SIZE)
        seqs = self.seqs()
        seq = seqs[-1] + 1 if seqs else 0
        while seq <= _MAX_SEQ:
            event = LifecycleEvent(
                seq=seq, action=action, artifact=artifact,
                numbers=tuple(sorted(set(numbers))), runs=tuple(runs), reason=reason,
                ttl=None if ttl is None else float(ttl), at=now(), by=by,
                signature=self._codec.own_signature,
            )  # fmt: skip
            key = self.key(seq)
            if self._backend.put_if_absent(key, self._encode(event, nonce, key)):
                self._cache[seq] = event
                journal.note(self._backend, self._project, key)
                return event
            seq += 1
        raise ConflictError(f"the lifecycle log of project {self._project!r} is full")

    def _encode(self, event: LifecycleEvent, nonce: bytes, key: str) -> bytes:
        body: dict[str, Any] = {
            "project": self._project, "seq": event.seq, "action": event.action,
            "artifact": event.artifact, "numbers": list(event.numbers),
            "runs": list(event.runs), "reason": event.reason, "ttl": event.ttl,
            "at": event.at, "by": event.by, "nonce": nonce,
        }  # fmt: skip
        return self._codec.seal(Kind.LIFECYCLE, key, body)

    def _decode(self, seq: int) -> LifecycleEvent:
        key = self.key(seq)
        f = read_ref(self._backend, key, Kind.LIFECYCLE, self._codec)
        f.expect("project", self._project)
        f.expect("seq", seq)
        action = f.text("action")
        if action not in ACTIONS:
            raise IntegrityError(f"ref {key} has unknown action {action!r}")
        numbers = f.items("numbers")
        runs = f.items("runs")
        if not all(type(n) is int and n >= 0 for n in numbers) or not all(
            isinstance(r, str) for r in runs
        ):
            raise IntegrityError(f"ref {key} is malformed: bad version numbers or run ids")
        ttl = f.opt_number("ttl")
        if ttl is not None and ttl < 0:
            raise IntegrityError(f"ref {key} is malformed: a negative ttl")
        return LifecycleEvent(
            seq=seq, action=action,  # type: ignore[arg-type]  # checked above
            artifact=f.opt_text("artifact"), numbers=tuple(numbers), runs=tuple(runs),
            reason=f.opt_text("reason"), ttl=ttl, at=f.text("at"), by=f.text("by"),
            signature=f.signature,
        )  # fmt: skip
