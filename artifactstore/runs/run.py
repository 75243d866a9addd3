"""``Run``: one execution of user code, recorded as it happens (docs/design.md §12).

Vocabulary:

- **active run**: a run started in this process and not finished yet. While one is
  active, ``artifactstore.use()`` and ``store.log_artifact()`` on the same store
  record their edges in it, as ``run.use()`` and ``run.log_artifact()`` do.
- **edge**: an input (``use``) or output (``output``) event, written at the time
  of the call, so a run that crashes afterwards keeps its lineage.

A run writes its start record first, then events and metrics segments as they
come, and an ``end`` event when it finishes. A background thread writes the
heartbeat and flushes metrics that wait too long; a run whose heartbeat stops
is read back as ``crashed``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

from artifactstore.core.digest import Digest
from artifactstore.core.errors import ArtifactStoreError, InvalidInputError
from artifactstore.media.base import MediaValue
from artifactstore.model.names import aliases_to_log, validate_artifact_name
from artifactstore.objects.store import Progress
from artifactstore.records.runs import (
    SEGMENT_ROWS,
    MetricsRow,
    RunLog,
    RunStart,
    check_encodable,
    check_job_type,
    check_tags,
    new_run_id,
)
from artifactstore.records.versions import default_writer, now
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.ingest import as_artifact, log_version
from artifactstore.repository.project import Project
from artifactstore.repository.version import ArtifactVersion, find_version
from artifactstore.runs.active import forget, latest, remember
from artifactstore.runs.codestate import CodeState, capture_code_patch, capture_code_state
from artifactstore.runs.config import RunConfig
from artifactstore.runs.environment import (
    code_artifact_name,
    describe_error,
    entry_script,
    environment,
)
from artifactstore.runs.mediastage import MEDIA_ROLE, MediaStage

__all__ = ["Run", "active_run"]

DEFAULT_HEARTBEAT = 30.0
#: metrics rows wait at most this long before they are written
METRICS_FLUSH_SECONDS = 30.0
_METRIC_TYPES = (int, float, bool, str, type(None))

def active_run(project: Project | None = None) -> Run | None:
    """The most recently started unfinished run of this process (of ``project``, if given)."""
    return cast("Run | None", latest(project))


class Run:
    """A run being recorded. Use ``with store.run(...) as run:`` or ``finish()``."""

    def __init__(
        self,
        project: Project,
        *,
        name: str | None = None,
        job_type: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        save_code: bool = False,
        capture_code: bool | CodeState = True,
        packages: bool = False,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> None:
        """``capture_code``: True records the git state now, False none, and a
        ``CodeState`` that one (a run restored from an export stands for another)."""
        if name is not None and (
            not isinstance(name, str) or not name.isprintable() or not 0 < len(name) <= 256
        ):
            raise InvalidInputError(
                f"invalid run name {name!r:.60}: use 1-256 printable characters"
            )
        if not isinstance(heartbeat, int | float) or heartbeat <= 0:
            raise InvalidInputError(
                f"heartbeat must be a positive number of seconds, got {heartbeat!r}"
            )
        project.ensure_writable()  # creates a pending store/project; refuses before writing
        self.project = project
        self.id = new_run_id()
        self.name = name
        self.job_type = check_job_type(job_type)
        self.tags = check_tags(tags)
        #: the config; changes after the start are recorded by the end event
        self.config = RunConfig(config)
        #: final metrics: the last logged value of each key unless set explicitly
        self.summary: dict[str, Any] = {}
        self.status = "running"
        self.code: CodeState | None = (
            capture_code if isinstance(capture_code, CodeState)
            else capture_code_state() if capture_code else None
        )
        self._log = RunLog(project.objects.backend, project.name, project.refs.codec)
        self._lock = threading.RLock()
        self._seq = 0
        self._metrics_seq = 0
        self._rows: list[MetricsRow] = []
        self._held: dict[str, Any] = {}  # logged with commit=False: the next row's
        self._held_step: int | None = None
        self._rows_since = time.monotonic()
        self._step = -1
        self._media = MediaStage(self.id)
        self._finished = False
        self._stop = threading.Event()
        start = RunStart(
            project=project.name, run_id=self.id, name=name, job_type=self.job_type,
            tags=self.tags, config=self.config.as_dict(), started_at=now(),
            by=default_writer(),
            env=environment(packages), heartbeat=float(heartbeat),
            code=None if self.code is None else self.code.to_record(),
        )  # fmt: skip
        self.started_at = start.started_at
        self._log.write_start(start)
        project.catalog.invalidate()
        remember(self)
        self._beater = threading.Thread(
            target=self._beat_loop,
            args=(float(heartbeat),),
            name=f"artifactstore-run-{self.id}",
            daemon=True,
        )
        self._beater.start()
        if save_code:
            self._save_code()

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name or self.job_type or ''} {self.status}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.finish()
        else:
            self.finish(error=exc)

    # -- edges ---------------------------------------------------------------------

    def use(self, ref: str) -> ArtifactVersion:
        """The version ``ref``, recorded as an input of this run now."""
        version = find_version(self.project, ref)
        self.record_use(version, ref)
        return version

    def use_artifact(self, artifact: str | ArtifactVersion, type: str | None = None,
                     aliases: Iterable[str] | None = None) -> ArtifactVersion:
        """W&B's name for :meth:`use`: a ref (``"mnist:latest"``) or a version read
        before; with ``type``, the version must be of that type. ``aliases`` (W&B's, for
        an artifact logged on the spot) are refused: log it with ``log_artifact``."""
        if aliases:
            raise InvalidInputError("use_artifact(aliases=...) is not supported: log the "
                                    "artifact with log_artifact(..., aliases=...) first")
        if isinstance(artifact, ArtifactVersion):
            version = artifact
            self.record_use(version)
        else:
            version = self.use(artifact)
        if type is not None and version.type != type:
            raise InvalidInputError(f"{version.ref} is of type {version.type!r}, "
                                    f"not {type!r}")
        return version

    def record_use(self, version: ArtifactVersion, ref: str | None = None) -> None:
        self.record_use_of(version.name, version.number, version.record.digest, ref or version.ref)

    def record_use_of(self, artifact: str, number: int, digest: Digest, ref: str) -> None:
        """An input known by name, number and content digest only: a version this
        store may not hold (an imported run's input), shown as missing by lineage."""
        if type(number) is not int or number < 0:
            raise InvalidInputError(f"a version number is an int >= 0, got {number!r:.40}")
        self._append(
            {
                "type": "use",
                "artifact": validate_artifact_name(artifact),
                "number": number,
                "digest": digest.raw,
                "ref": ref,
            }
        )

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        progress: Progress | None = None,
        *,
        role: str | None = None,
        follow_outside_links: bool = False,
        skip_unreadable: bool = False,
    ) -> ArtifactVersion:
        """Log a version as an output of this run (see ``Store.log_artifact``); ``role``
        names what it is to the run (``code``, ``checkpoint``...)."""
        wanted_aliases = aliases_to_log(aliases)
        artifact = as_artifact(artifact_or_path, name, type, metadata, description,
                               follow_outside_links=follow_outside_links,
                               skip_unreadable=skip_unreadable, project=self.project)
        version = log_version(self.project, artifact, aliases=wanted_aliases, run_id=self.id,
                              progress=progress)
        self.record_output(version, role)
        return version

    def record_output(self, version: ArtifactVersion, role: str | None = None) -> None:
        self._append(
            {
                "type": "output",
                "artifact": version.name,
                "number": version.number,
                "digest": version.record.digest.raw,
                "created": version.created,
                "role": role,
            }
        )

    # -- metrics -------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any], step: int | None = None,
            commit: bool | None = None, *, at: datetime | None = None) -> None:
        """Append one row of metrics; ``step`` defaults to the previous step + 1.

        Values are numbers, bools, strings, or media values (``artifactstore.Image``,
        ``Table``, ...): their files are staged, the row holds their references, and
        they are committed to the run's media artifact before the row is written.
        ``commit=False`` (as in W&B) holds the values back and merges them into the
        next row logged (the values of that call win), or the run's last one.
        ``at`` is when the row was taken (an imported run's time, timezone-aware),
        default now."""
        self._check_open()
        if at is not None and (not isinstance(at, datetime) or at.tzinfo is None):
            raise InvalidInputError(f"at must be a timezone-aware datetime, got {at!r:.60}")
        values = dict(metrics) if isinstance(metrics, Mapping) else None
        if values is None:
            raise InvalidInputError("run.log() takes a mapping of str names to values")
        with self._lock:
            if commit is False:
                self._held.update(values)
                self._held_step = self._held_step if step is None else step
                return
            if self._held:
                values = {**self._held, **values}
                step = self._held_step if step is None else step
                self._held, self._held_step = {}, None
        media = False
        for key, value in values.items():
            if type(key) is not str and not isinstance(key, str):
                raise InvalidInputError("run.log() takes a mapping of str names to values")
            kind = type(value)
            # Why the exact types first: a 10,000-step run calls this 10,000 times, and
            # the isinstance checks against the MediaValue ABC were a third of its cost
            if kind is float or kind is str or kind is bool or value is None:
                continue
            if kind is not int:
                if isinstance(value, MediaValue):
                    media = True
                    continue
                if not isinstance(value, _METRIC_TYPES):
                    value = _as_scalar(key, value)
                    values[key] = value
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 63:
                raise InvalidInputError(f"metric {key!r} is out of the int64 range")
        with self._lock:
            if step is None:
                step = self._step + 1
            elif not isinstance(step, int) or isinstance(step, bool) or step < 0:
                raise InvalidInputError(f"step must be an int >= 0, got {step!r:.40}")
            for key, value in values.items() if media else ():
                if isinstance(value, MediaValue):  # a refused value leaves the step as it was
                    values[key] = self._media.stage(key, step, value)
            self._step = max(self._step, step)
            when = now() if at is None else at.astimezone(UTC).isoformat(timespec="microseconds")
            self._rows.append(MetricsRow(step, when, values))
            self.summary.update(values)
            if len(self._rows) >= SEGMENT_ROWS:
                self._flush_metrics()

    def _flush_metrics(self) -> None:
        with self._lock:
            self._commit_media()  # first: the rows may reference the staged files
            if not self._rows:
                return
            rows, self._rows = self._rows, []
            self._log.append_metrics(self.id, self._metrics_seq, rows)
            self._metrics_seq += 1
            self._rows_since = time.monotonic()

    def _commit_media(self) -> None:
        with self._lock:
            version = self._media.commit(self.project)
            if version is not None:
                self.record_output(version, MEDIA_ROLE)

    # -- finishing -------------------------------------------------------------------

    def finish(self, error: BaseException | str | None = None, *,
               exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Write the end event: ``finished``, or ``failed`` with ``error``'s message (or,
        as W&B scripts say it, a non-zero ``exit_code``; ``quiet`` is accepted and
        changes nothing: the run prints nothing)."""
        del quiet
        if error is None and exit_code not in (None, 0):
            error = f"exit code {exit_code}"
        with self._lock:
            if self._finished:
                return
            if self._held:
                self.log({})  # what was logged with commit=False: the last row
            self._stop.set()
            try:
                self._flush_metrics()
            finally:
                self._finished = True
                self._media.cleanup()
                forget(self)
            status = "finished" if error is None else "failed"
            message = describe_error(error) if error is not None else None
            summary = check_encodable("summary", self.summary)
            end: dict[str, Any] = {"type": "end", "status": status, "error": message,
                                   "summary": summary, "ended_at": now()}
            if self.config.changed:
                end["config"] = self.config.as_dict()
            self._append(end, closing=True)
            self.status = status
        if self._beater is not threading.current_thread():
            self._beater.join(timeout=5)

    def _check_open(self) -> None:
        if self._finished:
            raise InvalidInputError(f"run {self.id} is finished; start a new run to record more")

    def _append(self, body: Mapping[str, Any], *, closing: bool = False) -> None:
        with self._lock:
            if not closing:
                self._check_open()
            self._log.append_event(self.id, self._seq, body)
            self._seq += 1
        self.project.catalog.invalidate()

    def _beat_loop(self, interval: float) -> None:
        while not self._stop.wait(min(interval, METRICS_FLUSH_SECONDS)):
            try:
                self._log.beat(self.id)
                if self._rows and time.monotonic() - self._rows_since >= METRICS_FLUSH_SECONDS:
                    self._flush_metrics()
            except ArtifactStoreError:
                continue  # a missed beat is harmless; the next one may get through

    def _save_code(self) -> None:
        if self.code is None or not self.code.captured or self.code.root is None:
            return
        patch = capture_code_patch(self.code)
        entry = entry_script()
        stem = entry.stem if entry is not None else "session"
        artifact = Artifact(
            code_artifact_name(stem),
            "code",
            description=f"code of run {self.id}",
            metadata={
                **self.code.to_record(),
                "untracked": list(patch.untracked) if patch else [],
                "skipped": [list(s) for s in patch.skipped] if patch else [],
            },
        )
        with artifact.new_file("diff.patch", mode="wb") as f:
            f.write(patch.patch if patch else b"")
        if entry is not None:
            artifact.add_file(entry, f"entry/{entry.name}")
        version = self.log_artifact(artifact, role="code")
        self.code_artifact = version.ref


def _as_scalar(key: str, value: Any) -> int | float | bool | str:
    """numpy/torch scalars (anything with ``item()`` or ``__float__``) as Python numbers."""
    item = getattr(value, "item", None)
    if callable(item):
        result = item()
        if isinstance(result, int | float | bool | str):
            return result
    if hasattr(value, "__float__"):
        return float(value)
    raise InvalidInputError(
        f"metric {key!r} is a {type(value).__name__}; log numbers, bools, strings or "
        "media values (artifactstore.Image, Histogram, Table, ...)"
    )
