"""The local catalog's queries (docs/design.md §12.6): what the synced tables answer.

:class:`artifactstore.local.catalog.Catalog` owns the SQLite file, its schema and the
sync that fills it; this half reads it: versions, aliases, lifecycle state, runs and
their edges, and the file index behind ``where_used``. The SQL of the local catalog
lives in these two modules (and the node-by-node look-ups of ``catalogwalk``).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.records.aliases import AliasEvent
from artifactstore.records.lifecycle import LifecycleEvent, LifecycleState
from artifactstore.records.runs import RunEnd, RunStart, Status, derive_status
from artifactstore.records.versions import VersionRecord

__all__ = ["CatalogQueries", "RunInfo"]

_ID_PREFIX: Final = re.compile(r"[0-9A-Za-z-]*")


@dataclass(frozen=True, slots=True)
class RunInfo(RunStart):
    """A run as read back: its start record (the fields of :class:`RunStart`), then its
    status, edges and end."""

    status: Status
    error: str | None
    summary: dict[str, Any] = field(hash=False)
    ended_at: str | None
    last_heartbeat: str | None
    inputs: tuple[str, ...]  # "name:vN" refs, in call order, without repeats
    outputs: tuple[str, ...]
    #: "live" or "deleted" (a lifecycle event, design §14), and when, by whom, why
    state: str = "live"
    state_at: str | None = None
    state_by: str | None = None
    state_reason: str | None = None

    @property
    def label(self) -> str:
        """The name, else the job type, else the id: for tables and graphs."""
        return self.name or self.job_type or self.run_id

    @property
    def git_commit(self) -> str | None:
        return None if self.code is None else self.code.get("commit")

    @property
    def git_dirty(self) -> bool | None:
        return None if self.code is None else self.code.get("dirty")

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "name": self.name, "job_type": self.job_type,
            "tags": list(self.tags), "status": self.status, "error": self.error,
            "started_at": self.started_at, "ended_at": self.ended_at, "by": self.by,
            "config": self.config, "summary": self.summary, "code": self.code,
            "env": self.env, "inputs": list(self.inputs), "outputs": list(self.outputs),
            "last_heartbeat": self.last_heartbeat, "state": self.state,
            "state_at": self.state_at, "state_by": self.state_by,
            "state_reason": self.state_reason,
        }  # fmt: skip


def _run_state(event: LifecycleEvent | None) -> dict[str, Any]:
    if event is None:
        return {}
    return {"state": "deleted", "state_at": event.at, "state_by": event.by,
            "state_reason": event.reason}


def _run_filter(prefix: str, exact: bool) -> tuple[str, tuple[str]]:
    """The WHERE clause on ``run_id`` (no user text in it: ``prefix`` is a parameter)."""
    return ("run_id = ?", (prefix,)) if exact else ("run_id LIKE ?", (prefix + "%",))


def _unpack(data: bytes | None) -> Any:
    return None if data is None else encoding.unpack(data, what="catalog")


class CatalogQueries:
    """The read side of :class:`~artifactstore.local.catalog.Catalog` (thread-safe)."""

    _project: str
    _db: sqlite3.Connection
    _lock: threading.RLock

    # -- queries -----------------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def versions(self) -> list[tuple[VersionRecord, bool]]:
        """Every known version record, with whether it has vanished from the store."""
        rows = self.query("SELECT * FROM versions ORDER BY artifact, number")
        return [(self._version(r), bool(r[13])) for r in rows]

    def version(self, artifact: str, number: int) -> tuple[VersionRecord, bool] | None:
        """One version record and whether it has vanished, or None if never seen."""
        rows = self.query("SELECT * FROM versions WHERE artifact=? AND number=?",
                          (artifact, number))
        return (self._version(rows[0]), bool(rows[0][13])) if rows else None

    def _version(self, r: tuple[Any, ...]) -> VersionRecord:
        import types  # local: only the version queries need it

        return VersionRecord(
            project=self._project,
            artifact=r[0],
            number=r[1],
            type=r[2],
            digest=Digest(r[3]),
            manifest=Digest(r[4]),
            size=r[5],
            files=r[6],
            created_at=r[7],
            created_by=r[8],
            run=r[9],
            description=r[10],
            metadata=types.MappingProxyType(_unpack(r[11])),
            content=None if r[12] is None else Digest(r[12]),
        )

    def artifact_numbers(self) -> dict[str, set[int]]:
        """Artifact name -> the numbers of its versions still in the store, by name."""
        found: dict[str, set[int]] = {}
        for artifact, number in self.query(
                "SELECT artifact, number FROM versions WHERE gone=0 ORDER BY artifact"):
            found.setdefault(artifact, set()).add(number)
        return found

    def artifact_names(self) -> list[str]:
        """Names with a version still in the store, sorted as :meth:`artifact_numbers`
        orders them (the primary key's index answers it: no row per version)."""
        return [r[0] for r in self.query(
            "SELECT DISTINCT artifact FROM versions WHERE gone=0 ORDER BY artifact")]

    def numbers_of(self, artifact: str) -> set[int]:
        """The numbers of ``artifact``'s versions still in the store."""
        return {r[0] for r in self.query(
            "SELECT number FROM versions WHERE artifact=? AND gone=0", (artifact,))}

    def lifecycle_state(self) -> LifecycleState:
        """The replayed lifecycle log as of the last sync (deleted and purged versions
        and runs, each with the event that did it)."""
        state = LifecycleState()
        for r in self.query("SELECT * FROM lifecycle ORDER BY seq"):
            state.apply(LifecycleEvent(
                seq=r[0], action=r[1], artifact=r[2], numbers=tuple(_unpack(r[3])),
                runs=tuple(_unpack(r[4])), reason=r[5], ttl=r[6], at=r[7], by=r[8],
            ))  # fmt: skip
        return state

    def current_aliases(self) -> dict[tuple[str, int], list[str]]:
        """``(artifact, number)`` -> the aliases that point at it now (sorted)."""
        rows = self.query(
            "SELECT artifact, alias, target FROM alias_events AS e WHERE seq = "
            "(SELECT MAX(seq) FROM alias_events WHERE artifact=e.artifact AND alias=e.alias)"
        )
        found: dict[tuple[str, int], list[str]] = {}
        for artifact, alias, target in rows:
            if target is not None:
                found.setdefault((artifact, target), []).append(alias)
        return {k: sorted(v) for k, v in found.items()}

    def alias_events(self, artifact: str) -> list[AliasEvent]:
        rows = self.query(
            "SELECT * FROM alias_events WHERE artifact=? ORDER BY alias, seq", (artifact,)
        )
        return [
            AliasEvent(
                artifact=r[0],
                alias=r[1],
                seq=r[2],
                target=r[3],
                previous=r[4],
                protected=bool(r[5]),
                at=r[6],
                by=r[7],
                forced=bool(r[8]),
            )
            for r in rows
        ]

    def edges(self, prefix: str = "", *, exact: bool = False
              ) -> list[tuple[str, str, str, int, str | None, bool]]:
        """``(run_id, direction, artifact, number, role, created)`` of recorded edges.

        Only runs whose id starts with ``prefix`` (is ``prefix`` when ``exact``: an
        index look-up, not a scan); ``created`` is False for an output whose content
        equalled the latest version (nothing new was made).
        """
        if not _ID_PREFIX.fullmatch(prefix):
            return []
        where, param = _run_filter(prefix, exact)
        return [
            (r[0], r[1], r[2], r[3], r[4], r[5] is None or bool(r[5]))
            for r in self.query(
                "SELECT run_id, direction, artifact, number, role, created FROM run_edges "
                f"WHERE {where} ORDER BY run_id, seq", param
            )
        ]

    def runs(self, host: str | None = None, *, prefix: str = "",
             exact: bool = False) -> list[RunInfo]:
        """Known runs whose id starts with ``prefix`` (is ``prefix`` when ``exact``),
        oldest first.

        ``host`` enables the same-host crash check (see ``derive_status``).
        """
        if not _ID_PREFIX.fullmatch(prefix):
            return []  # not the start of any run id (and no LIKE wildcards get through)
        where, like = _run_filter(prefix, exact)
        ends = {r[0]: r for r in self.query(f"SELECT * FROM run_ends WHERE {where}", like)}
        beats = dict(self.query(f"SELECT run_id, at FROM heartbeats WHERE {where}", like))
        inputs: dict[str, list[str]] = {}
        outputs: dict[str, list[str]] = {}
        for run_id, direction, artifact, number, _, _ in self.edges(prefix, exact=exact):
            bucket = inputs if direction == "use" else outputs
            refs = bucket.setdefault(run_id, [])
            ref = f"{artifact}:v{number}"
            if ref not in refs:
                refs.append(ref)
        result = []
        now_ = datetime.now(UTC)
        deleted = self.lifecycle_state().deleted_runs
        for r in self.query(f"SELECT * FROM runs WHERE {where} ORDER BY run_id", like):
            start_fields: dict[str, Any] = {
                "project": self._project,
                "run_id": r[0],
                "name": r[1],
                "job_type": r[2],
                "tags": tuple(_unpack(r[3])),
                "config": _unpack(r[4]),
                "started_at": r[5],
                "by": r[6],
                "env": _unpack(r[7]),
                "code": _unpack(r[8]),
                "heartbeat": r[9],
            }
            start = RunStart(**start_fields)
            end_row = ends.get(start.run_id)
            end = None
            if end_row is not None:
                end = RunEnd(
                    run_id=start.run_id,
                    seq=end_row[1],
                    at=end_row[5],
                    status=end_row[2],
                    error=end_row[3],
                    summary=_unpack(end_row[4]),
                    ended_at=end_row[5],
                    config=None if end_row[6] is None else _unpack(end_row[6]),
                )
                if end.config is not None:  # updated while the run ran (design §12.2)
                    start_fields["config"] = end.config
            beat = beats.get(start.run_id)
            status = derive_status(start, end, beat, now_=now_, host=host)
            result.append(
                RunInfo(
                    **start_fields,
                    status=status,
                    error=None if end is None else end.error,
                    summary={} if end is None else dict(end.summary),
                    ended_at=None if end is None else end.ended_at,
                    last_heartbeat=beat,
                    inputs=tuple(inputs.get(start.run_id, ())),
                    outputs=tuple(outputs.get(start.run_id, ())),
                    **_run_state(deleted.get(start.run_id)),
                )
            )
        return result

    def alias_moves(self) -> list[tuple[str, str, int, int | None, int | None]]:
        """``(artifact, alias, seq, target, previous)`` of every alias event, in order."""
        return [tuple(r) for r in self.query(
            "SELECT artifact, alias, seq, target, previous FROM alias_events "
            "ORDER BY artifact, alias, seq")]

    def alias_previous(self, artifact: str, alias: str, seq: int) -> int | None:
        """The version event ``seq`` of the alias says it pointed at before (if known)."""
        rows = self.query(
            "SELECT previous FROM alias_events WHERE artifact=? AND alias=? AND seq=?",
            (artifact, alias, seq))
        return rows[0][0] if rows else None

    # -- file-level index ----------------------------------------------------------------

    def unindexed(self) -> list[tuple[str, int, bytes]]:
        """``(artifact, number, digest)`` of live versions whose files are not indexed yet."""
        return [
            tuple(r)
            for r in self.query(
                "SELECT v.artifact, v.number, v.digest FROM versions v LEFT JOIN indexed i "
                "ON v.artifact=i.artifact AND v.number=i.number "
                "WHERE i.artifact IS NULL AND v.gone=0"
            )
        ]

    def index_files(self, artifact: str, number: int, files: Iterator[tuple[str, bytes]]) -> None:
        rows = [(artifact, number, path, digest) for path, digest in files]
        with self._lock, self._db:
            self._db.executemany("INSERT INTO files VALUES (?,?,?,?)", rows)
            self._db.execute("INSERT OR IGNORE INTO indexed VALUES (?,?)", (artifact, number))

    def files_with(self, digest: bytes) -> list[tuple[str, int, str]]:
        return [
            tuple(r)
            for r in self.query(
                "SELECT artifact, number, path FROM files WHERE digest=? "
                "ORDER BY artifact, number, path",
                (digest,),
            )
        ]

    def indexed_version_with(self, digest: bytes) -> tuple[str, int] | None:
        """``(artifact, number)`` of an indexed version whose tree digest is ``digest``."""
        found = self.query(
            "SELECT v.artifact, v.number FROM versions v JOIN indexed i "
            "ON v.artifact=i.artifact AND v.number=i.number WHERE v.digest=? LIMIT 1",
            (digest,),
        )
        return (found[0][0], found[0][1]) if found else None

    def copy_index_from(self, artifact: str, number: int, same_as: tuple[str, int]) -> bool:
        """Index a version with the file list of an indexed one with the same content."""
        with self._lock, self._db:
            if not self._db.execute(
                "SELECT 1 FROM indexed WHERE artifact=? AND number=?", same_as
            ).fetchone():
                return False
            self._db.execute(
                "INSERT INTO files SELECT ?, ?, path, digest FROM files "
                "WHERE artifact=? AND number=?",
                (artifact, number, *same_as),
            )
            self._db.execute("INSERT OR IGNORE INTO indexed VALUES (?,?)", (artifact, number))
        return True
