"""Run records (docs/design.md §12): what a run was, what it used and produced.

Vocabulary:

- **run id**: ``YYYYMMDDTHHMMSSffffffZ-<8 hex>``, the UTC start time then 4
  random bytes; ids sort by start time as strings.
- **start record** (:class:`RunStart`): the immutable facts known when the run
  starts (name, job type, tags, config, environment, code state), written once
  with ``put_if_absent``.
- **run event** (:class:`RunEvent`): one appended fact, ``use`` (an input edge),
  ``output`` (an output edge) or ``end`` (final status and summary), numbered
  ``seq`` 0, 1, … by the run's own process.
- **metrics segment**: up to 1,000 rows of ``run.log()`` history.
- **heartbeat**: the one overwritten object; its age tells a crashed run from a
  running one (:func:`derive_status`).

Every record is create-only, so the lineage of a run that dies survives it.
"""

from __future__ import annotations

import os
import re
import secrets
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from artifactstore.backends import Backend
from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.core.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.core.localproc import process_exists
from artifactstore.model.names import NAME_RE, validate_project_name, version_label
from artifactstore.objects.envelope import Kind
from artifactstore.records import journal
from artifactstore.records.codec import PLAIN, RecordCodec
from artifactstore.records.versions import (
    NONCE_SIZE,
    Fields,
    now,
    read_ref,
    require_atomic_create,
    seq_of,
)

__all__ = [
    "MetricsRow",
    "RunEdge",
    "RunEnd",
    "RunLog",
    "RunStart",
    "Status",
    "derive_status",
    "new_run_id",
    "validate_run_id",
]  # fmt: skip

Status = Literal["running", "finished", "failed", "crashed"]
STATUSES: Final = ("running", "finished", "failed", "crashed")
RUN_ID_RE: Final = re.compile(r"[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}")
_NAME: Final = re.compile(NAME_RE)
MAX_TAG: Final = 128
#: what a metrics row's values are besides media references (design §12.3, §12.7)
_VALUE_TYPES: Final = (int, float, bool, str, type(None))
#: rows per metrics segment (design §12.3)
SEGMENT_ROWS: Final = 1000
#: a run without heartbeat for 3 intervals plus this grace is crashed (design §12.4)
STALE_GRACE: Final = 30.0


def new_run_id(at: datetime | None = None) -> str:
    """A fresh run id for a run starting ``at`` (now)."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    return f"{at.strftime('%Y%m%dT%H%M%S%f')}Z-{secrets.token_hex(4)}"


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or RUN_ID_RE.fullmatch(run_id) is None:
        raise InvalidInputError(
            f"invalid run id {run_id!r:.80}: expected YYYYMMDDTHHMMSSffffffZ-xxxxxxxx "
            "(see 'artifactstore runs ls')"
        )
    return run_id


def runs_prefix(project: str) -> str:
    return f"projects/{project}/runs/"


def run_prefix(project: str, run_id: str) -> str:
    return f"{runs_prefix(project)}{run_id}/"


def start_key(project: str, run_id: str) -> str:
    return f"{run_prefix(project, run_id)}start"


def event_key(project: str, run_id: str, seq: int) -> str:
    return f"{run_prefix(project, run_id)}events/{seq:010d}"


def metrics_key(project: str, run_id: str, seq: int) -> str:
    return f"{run_prefix(project, run_id)}metrics/{seq:010d}"


def heartbeat_key(project: str, run_id: str) -> str:
    return f"{run_prefix(project, run_id)}heartbeat"


def parse_run_key(prefix: str, key: str) -> tuple[str, str, int | None] | None:
    """``(run_id, section, seq)`` for a key under ``runs_prefix``; None for foreign keys.

    ``section`` is ``start``, ``heartbeat``, ``events`` or ``metrics`` (the
    last two with their ``seq``).
    """
    run_id, _, rest = key[len(prefix) :].partition("/")
    if RUN_ID_RE.fullmatch(run_id) is None:
        return None
    if rest in ("start", "heartbeat"):
        return run_id, rest, None
    section, _, name = rest.partition("/")
    seq = seq_of(name)
    if section in ("events", "metrics") and seq is not None:
        return run_id, section, seq
    return None


def parse_time(text: str) -> datetime:
    """An ISO-8601 time from a record (naive values are taken as UTC)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- value objects -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStart:
    """The start record of a run (design §12.1)."""

    project: str
    run_id: str
    name: str | None
    job_type: str | None
    tags: tuple[str, ...]
    config: Mapping[str, Any] = field(hash=False)
    started_at: str
    by: str
    env: Mapping[str, Any] = field(hash=False)
    code: Mapping[str, Any] | None = field(hash=False)
    heartbeat: float

    @property
    def host(self) -> str | None:
        host = self.env.get("host")
        return host if isinstance(host, str) else None

    @property
    def pid(self) -> int | None:
        pid = self.env.get("pid")
        return pid if type(pid) is int else None


@dataclass(frozen=True, slots=True)
class RunEdge:
    """A ``use`` (input) or ``output`` event: the run read or logged a version."""

    run_id: str
    seq: int
    at: str
    direction: Literal["use", "output"]
    artifact: str
    number: int
    digest: Digest
    ref: str | None = None  # use: what the caller asked for
    created: bool | None = None  # output: a new version was made
    role: str | None = None  # output: "code" for the code snapshot

    @property
    def version_ref(self) -> str:
        return f"{self.artifact}:{version_label(self.number)}"


@dataclass(frozen=True, slots=True)
class RunEnd:
    """The ``end`` event: how the run finished."""

    run_id: str
    seq: int
    at: str
    status: Literal["finished", "failed"]
    error: str | None
    summary: Mapping[str, Any] = field(hash=False)
    ended_at: str
    #: the config at the end if it changed after the start (else None: the start's)
    config: Mapping[str, Any] | None = field(default=None, hash=False)


RunEvent = RunEdge | RunEnd


@dataclass(frozen=True, slots=True)
class MetricsRow:
    step: int
    at: str
    values: Mapping[str, Any] = field(hash=False)


def derive_status(
    start: RunStart,
    end: RunEnd | None,
    heartbeat_at: str | None,
    *,
    now_: datetime | None = None,
    host: str | None = None,
) -> Status:
    """The status of a run from its records (design §12.4).

    ``host`` is the reader's host name: on the run's own host a vanished
    process is crashed at once, without waiting for the heartbeat to go stale.
    """
    if end is not None:
        return end.status
    current = now_ or datetime.now(UTC)
    last = parse_time(heartbeat_at or start.started_at)
    if (current - last).total_seconds() > 3 * start.heartbeat + STALE_GRACE:
        return "crashed"
    on_its_host = host is not None and host == start.host and start.pid is not None
    if on_its_host and start.pid is not None and not process_exists(start.pid):
        return "crashed"
    return "running"


    return True


# -- validation of user values ---------------------------------------------------------


def check_encodable(what: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as a reader will decode it; InvalidInputError when it cannot be stored."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a mapping (dict), got {type(value).__name__}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise InvalidInputError(f"{what} keys must be str, got {bad[0]!r:.60}")
    try:
        decoded = encoding.unpack(encoding.pack(dict(value)))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{what} cannot be stored: {exc}") from None
    result: dict[str, Any] = decoded
    return result


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = (tags,)
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG or not tag.isprintable():
            raise InvalidInputError(
                f"invalid tag {tag!r:.60}: use 1-{MAX_TAG} printable characters"
            )
    return tuple(sorted(set(tags)))


def check_job_type(job_type: str | None) -> str | None:
    if job_type is not None and (not isinstance(job_type, str) or not _NAME.fullmatch(job_type)):
        raise InvalidInputError(
            f"invalid job type {job_type!r:.60}: use 1-128 of A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit (for example 'train')"
        )
    return job_type


# -- the log of one project --------------------------------------------------------------


class RunLog:
    """Run records of one project: write (by the run's process) and read."""

    def __init__(self, backend: Backend, project: str, codec: RecordCodec = PLAIN) -> None:
        self._backend = backend
        self._project = validate_project_name(project)
        self._codec = codec

    @property
    def project(self) -> str:
        return self._project

    @property
    def prefix(self) -> str:
        return runs_prefix(self._project)

    # -- writing --------------------------------------------------------------------

    def write_start(self, start: RunStart) -> None:
        require_atomic_create(self._backend)
        body = {
            "project": self._project,
            "run": start.run_id,
            "name": start.name,
            "job_type": start.job_type,
            "tags": list(start.tags),
            "config": dict(start.config),
            "started_at": start.started_at,
            "by": start.by,
            "env": dict(start.env),
            "code": None if start.code is None else dict(start.code),
            "heartbeat": float(start.heartbeat),
            "nonce": os.urandom(NONCE_SIZE),
        }
        key = start_key(self._project, start.run_id)
        if not self._backend.put_if_absent(key, self._codec.seal(Kind.RUN, key, body)):
            raise ConflictError(f"run {start.run_id} already exists; start a new run")
        journal.note(self._backend, self._project, key)

    def append_event(self, run_id: str, seq: int, body: Mapping[str, Any]) -> str:
        """Create event ``seq``; returns its time. ConflictError if the number is taken."""
        at = now()
        payload = {"project": self._project, "run": run_id, "seq": seq, "at": at, **body}
        key = event_key(self._project, run_id, seq)
        if not self._backend.put_if_absent(key, self._codec.seal(Kind.RUN_EVENT, key, payload)):
            raise ConflictError(f"run {run_id} event {seq} was written by another process; "
                                "a run must be recorded by one process")
        journal.note(self._backend, self._project, key)
        return at

    def append_metrics(self, run_id: str, seq: int, rows: Sequence[MetricsRow]) -> None:
        payload = {
            "project": self._project, "run": run_id, "seq": seq,
            "rows": [[row.step, row.at, dict(row.values)] for row in rows],
        }  # fmt: skip
        key = metrics_key(self._project, run_id, seq)
        if not self._backend.put_if_absent(key, self._codec.seal(Kind.RUN_METRICS, key, payload)):
            raise ConflictError(
                f"run {run_id} metrics segment {seq} was written by another process; "
                "a run must be recorded by one process"
            )

    def beat(self, run_id: str) -> None:
        payload = {"project": self._project, "run": run_id, "at": now()}
        key = heartbeat_key(self._project, run_id)
        self._backend.put(key, self._codec.seal(Kind.HEARTBEAT, key, payload))

    # -- reading --------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        """Ids of runs with a start record, oldest first (one listing)."""
        found = {p[0] for p in self.keys() if p[1] == "start"}
        return sorted(found)

    def keys(self) -> Iterator[tuple[str, str, int | None]]:
        """Every run key of the project, parsed (see :func:`parse_run_key`)."""
        prefix = self.prefix
        for key in self._backend.list(prefix):
            parsed = parse_run_key(prefix, key)
            if parsed is not None:
                yield parsed

    def read_start(self, run_id: str) -> RunStart:
        key = start_key(self._project, validate_run_id(run_id))
        try:
            f = read_ref(self._backend, key, Kind.RUN, self._codec)
        except NotFoundError:
            raise NotFoundError(
                f"run {run_id} not found in project {self._project!r}; "
                "run 'artifactstore runs ls' to see the runs"
            ) from None
        return decode_start(f, self._project, run_id, key)

    def read_event(self, run_id: str, seq: int) -> RunEvent:
        key = event_key(self._project, run_id, seq)
        f = read_ref(self._backend, key, Kind.RUN_EVENT, self._codec)
        return decode_event(f, self._project, run_id, seq, key)

    def read_metrics(self, run_id: str, seq: int) -> list[MetricsRow]:
        key = metrics_key(self._project, run_id, seq)
        f = read_ref(self._backend, key, Kind.RUN_METRICS, self._codec)
        f.expect("project", self._project)
        f.expect("run", run_id)
        f.expect("seq", seq)
        return decode_rows(f.items("rows"), key)

    def read_heartbeat(self, run_id: str) -> str | None:
        key = heartbeat_key(self._project, run_id)
        try:
            f = read_ref(self._backend, key, Kind.HEARTBEAT, self._codec)
        except NotFoundError:
            return None
        f.expect("project", self._project)
        f.expect("run", run_id)
        return f.text("at")

    def seqs(self, run_id: str, section: str) -> list[int]:
        prefix = f"{run_prefix(self._project, run_id)}{section}/"
        found = (seq_of(key[len(prefix) :]) for key in self._backend.list(prefix))
        return sorted(s for s in found if s is not None)


def decode_start(f: Fields, project: str, run_id: str, key: str) -> RunStart:
    f.expect("project", project)
    f.expect("run", run_id)
    tags = f.items("tags")
    if any(type(t) is not str for t in tags):
        raise IntegrityError(f"ref {key} is malformed: tags must be strings")
    code = f.opt_mapping("code")
    heartbeat = f.number("heartbeat")
    if heartbeat <= 0:
        raise IntegrityError(f"ref {key} is malformed: heartbeat must be > 0")
    job_type = f.opt_text("job_type")
    if job_type is not None and _NAME.fullmatch(job_type) is None:
        raise IntegrityError(f"ref {key} is malformed: invalid job type {job_type!r:.60}")
    return RunStart(
        project=project,
        run_id=run_id,
        name=f.opt_text("name"),
        job_type=job_type,
        tags=tuple(tags),
        config=types.MappingProxyType(f.mapping("config")),
        started_at=f.text("started_at"),
        by=f.text("by"),
        env=types.MappingProxyType(f.mapping("env")),
        code=None if code is None else types.MappingProxyType(code),
        heartbeat=heartbeat,
    )


def decode_event(f: Fields, project: str, run_id: str, seq: int, key: str) -> RunEvent:
    f.expect("project", project)
    f.expect("run", run_id)
    f.expect("seq", seq)
    at = f.text("at")
    kind = f.text("type")
    if kind == "end":
        status = f.text("status")
        if status not in ("finished", "failed"):
            raise IntegrityError(f"ref {key} is malformed: unknown status {status!r:.40}")
        config = f.opt_mapping("config")
        return RunEnd(run_id=run_id, seq=seq, at=at, status=status,  # type: ignore[arg-type]
                      error=f.opt_text("error"),
                      summary=types.MappingProxyType(f.mapping("summary")),
                      ended_at=f.text("ended_at"),
                      config=None if config is None else types.MappingProxyType(config))
    if kind not in ("use", "output"):
        raise IntegrityError(f"ref {key} is malformed: unknown event type {kind!r:.40}")
    artifact = f.text("artifact")
    if _NAME.fullmatch(artifact) is None:
        raise IntegrityError(f"ref {key} is malformed: invalid artifact {artifact!r:.60}")
    if kind == "use":
        return RunEdge(
            run_id=run_id,
            seq=seq,
            at=at,
            direction="use",
            artifact=artifact,
            number=f.count("number"),
            digest=f.digest("digest"),
            ref=f.opt_text("ref"),
        )
    return RunEdge(
        run_id=run_id,
        seq=seq,
        at=at,
        direction="output",
        artifact=artifact,
        number=f.count("number"),
        digest=f.digest("digest"),
        created=f.flag("created"),
        role=f.opt_text("role"),
    )


def decode_rows(rows: list[Any], key: str) -> list[MetricsRow]:
    result = []
    for row in rows:
        if (
            type(row) is not list
            or len(row) != 3
            or type(row[0]) is not int
            or type(row[1]) is not str
            or type(row[2]) is not dict
        ):
            raise IntegrityError(f"ref {key} is malformed: bad metrics row")
        for v in row[2].values():  # exact types first: a run page decodes 100,000 values
            if type(v) not in _VALUE_TYPES and not isinstance(v, _VALUE_TYPES) and not (
                    type(v) is dict and type(v.get("_type")) is str):
                raise IntegrityError(
                    f"ref {key} is malformed: a metric is neither a scalar nor a media reference"
                )
        result.append(MetricsRow(row[0], row[1], types.MappingProxyType(row[2])))
    return result
