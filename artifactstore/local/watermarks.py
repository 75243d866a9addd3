"""High-water marks: a store that shows less than this client saw is noticed (docs/security.md).

Vocabulary:

- **log**: an append-only series of a project's records numbered 0, 1, …: the version
  records of one artifact (``artifacts/<segment>/versions/``), the events of one alias
  (``artifacts/<segment>/aliases/<segment>/``) and the lifecycle log (``lifecycle/``),
  named by its key prefix below ``projects/<project>/`` (segments are tags in private
  projects, docs/design.md §13.3).
- **mark**: the highest number this client has seen in a log (listed, or created
  itself), and when it first saw it. Marks only grow.
- **withheld**: a listing that covers a log (its prefix starts the log's prefix) and
  shows a lower number than the mark, or none: records were deleted or hidden (a
  rollback to an older copy of the store). Readers must not answer from that older
  state: :class:`MarkedBackend` raises ``IntegrityError`` (exit 5).

The marks of a project live in ``<known_dir>/<project>/marks.sqlite`` (clientstate.py;
0600, WAL, so several processes of the user update them at once). ``artifactstore
project trust NAME`` removes that folder, which accepts what the store shows now.
Marks cost no request: they are compared with the listings the client makes anyway.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from artifactstore.backends import Backend
from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.core.errors import ArtifactStoreError, IntegrityError
from artifactstore.local.clientstate import known_dir
from artifactstore.local.sqlitefiles import use_wal
from artifactstore.objects.envelope import Kind
from artifactstore.objects.store import default_cache_dir
from artifactstore.records.codec import PLAIN, RecordCodec

__all__ = ["MarkedBackend", "Marks", "marks_for", "with_marks"]

_LOG_KEY: Final = re.compile(
    r"((?:artifacts/[^/]+/(?:versions|aliases/[^/]+)|lifecycle)/)([0-9]{10})")
_SCHEMA: Final = ("CREATE TABLE IF NOT EXISTS marks("
                  "log TEXT PRIMARY KEY, seq INTEGER NOT NULL, seen_at TEXT NOT NULL)")
# Marks only grow: a lower number from a slower process never replaces a higher one.
_RAISE: Final = ("INSERT INTO marks VALUES (?, ?, ?) ON CONFLICT(log) DO UPDATE SET "
                 "seq = excluded.seq, seen_at = excluded.seen_at WHERE excluded.seq > marks.seq")


def split_log_key(key: str) -> tuple[str, int] | None:
    """``(log, number)`` of a record key relative to its project folder, or None."""
    found = _LOG_KEY.fullmatch(key)
    return None if found is None else (found[1], int(found[2]))


class Marks:
    """The marks of one project in one SQLite file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if not self.path.exists():
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Created 0600 before SQLite opens it: its -wal and -shm files copy the mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            use_wal(db, timeout=30)
            db.execute(_SCHEMA)
            yield db
        finally:
            db.close()

    def read(self) -> dict[str, tuple[int, str]]:
        """Log -> (its mark, when first seen as ISO-8601 UTC)."""
        with self._db() as db:
            return {log: (seq, at) for log, seq, at in db.execute("SELECT * FROM marks")}

    def raise_to(self, seen: Mapping[str, int]) -> None:
        """Raise the marks of ``seen``'s logs to its numbers (never lowers one)."""
        if not seen:
            return
        at = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(_RAISE, [(log, seq, at) for log, seq in seen.items()])
            db.execute("COMMIT")


def marks_for(cache_root: Path, url: str, project: str) -> Marks | None:
    """The marks of ``project`` in the store at backend URL ``url``; None for memory stores."""
    folder = known_dir(cache_root, url)
    return None if folder is None else Marks(folder / project / "marks.sqlite")


class MarkedBackend(BackendWrapper):
    """Checks every listing of ``project``'s logs against the marks and raises them.

    Wraps the backend a project's refs are read through; records read or created
    through it raise the marks too (a version this client made is a version it saw).
    """

    def __init__(self, inner: Backend, project: str, marks: Marks,
                 codec: RecordCodec = PLAIN) -> None:
        super().__init__(inner)
        self._folder = f"projects/{project}/"
        self._project = project
        self._codec = codec
        self.marks = marks
        #: log -> the number this process last raised its mark to (skips rewrites)
        self._raised: dict[str, int] = {}

    def _covers_logs(self, prefix: str) -> bool:
        """Whether a listing of ``prefix`` may show (part of) a log of the project."""
        if self._folder.startswith(prefix):
            return True
        if not prefix.startswith(self._folder):
            return False
        rest = prefix[len(self._folder):]
        return any(root.startswith(rest) or rest.startswith(root)
                   for root in ("artifacts/", "lifecycle/"))

    def list(self, prefix: str = "") -> Iterator[str]:
        if not self._covers_logs(prefix):
            return super().list(prefix)
        keys = list(super().list(prefix))
        shown: dict[str, int] = {}
        for key in keys:
            found = split_log_key(key[len(self._folder):]) if key.startswith(self._folder) \
                else None
            if found is not None:
                shown[found[0]] = max(found[1], shown.get(found[0], -1))
        try:
            marks = self.marks.read()
        except (sqlite3.Error, OSError):  # an unreadable cache folder: nothing to compare
            marks = {}
        less = [(log, mark, at) for log, (mark, at) in sorted(marks.items())
                if (self._folder + log).startswith(prefix) and shown.get(log, -1) < mark]
        if less:
            raise self._withheld(less, shown)
        grown = {log: n for log, n in shown.items() if n > marks.get(log, (-1, ""))[0]}
        with contextlib.suppress(sqlite3.Error, OSError):  # a read-only cache: no new marks
            self.marks.raise_to(grown)
        self._raised.update(shown)
        return iter(keys)

    def get(self, key: str) -> bytes:
        data = super().get(key)
        self._saw(key)  # a record read is a record seen, as one listed
        return data

    def put_if_absent(self, key: str, data: bytes) -> bool:
        created = super().put_if_absent(key, data)
        if created:
            self._saw(key)
        return created

    def _saw(self, key: str) -> None:
        found = split_log_key(key[len(self._folder):]) if key.startswith(self._folder) \
            else None
        if found is None or found[1] <= self._raised.get(found[0], -1):
            return
        with contextlib.suppress(sqlite3.Error, OSError):  # a read-only cache: no new marks
            self.marks.raise_to({found[0]: found[1]})
            self._raised[found[0]] = found[1]

    def _withheld(self, less: Sequence[tuple[str, int, str]],
                  shown: Mapping[str, int]) -> IntegrityError:
        log, mark, at = less[0]
        now = shown.get(log)
        names = self._names(log, now)
        what, first = describe_log(log, mark, names)
        store_shows = ("none of them" if now is None
                       else "up to " + describe_log(log, now, names)[1])
        more = f" (and {len(less) - 1} more logs)" if len(less) > 1 else ""
        return IntegrityError(
            f"{what} in project {self._project!r} were withheld or deleted{more}: this "
            f"client saw {first} on {at.replace('T', ' ')[:16]} UTC, the store shows "
            f"{store_shows}; restore them from a backup, or if the change was deliberate "
            f"accept it with 'artifactstore project trust {self._project}'"
        )


    def _names(self, log: str, shown: int | None) -> tuple[str, str] | None:
        """(artifact, alias) names a remaining record of a private project's ``log``
        holds (its key has tags); None in public projects or when none reads."""
        if not self._codec.encrypted or shown is None or log.startswith("lifecycle/"):
            return None
        key = f"{self._folder}{log}{shown:010d}"
        kind = Kind.VERSION if log.endswith("/versions/") else Kind.ALIAS_EVENT
        try:
            body, _ = self._codec.open(kind, key, self._inner.get(key))
        except ArtifactStoreError:
            return None  # name it by its tag
        if not isinstance(body, dict) or not isinstance(body.get("artifact"), str):
            return None
        alias = body.get("alias")
        return body["artifact"], alias if isinstance(alias, str) else ""


def describe_log(log: str, number: int,
                 names: tuple[str, str] | None = None) -> tuple[str, str]:
    """(what the log holds, its record ``number``) in words, e.g. ("version records of
    'data'", "data:v3"); ``names`` replace the key's tags."""
    parts = log.rstrip("/").split("/")
    if parts[0] == "lifecycle":
        return "lifecycle events", f"lifecycle event {number}"
    artifact = parts[1] if names is None else names[0]
    if parts[2] == "versions":
        return f"version records of {artifact!r}", f"{artifact}:v{number}"
    alias = parts[3] if names is None or not names[1] else names[1]
    return f"events of alias {artifact}:{alias}", f"event {number} of {artifact}:{alias}"


def with_marks(backend: Backend, project: str, cache_dir: str | os.PathLike[str] | None,
               codec: RecordCodec = PLAIN) -> Backend:
    """``backend`` checked against (and raising) the marks of ``project`` kept under
    ``cache_dir`` (default: the per-user cache); memory stores keep none. ``codec``
    (the project's) names private artifacts in the error."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    marks = marks_for(root, backend.url, project)
    return backend if marks is None else MarkedBackend(backend, project, marks, codec)
