"""The local catalog (docs/design.md §12.6): a SQLite cache of a project's records.

Vocabulary:

- **catalog**: one SQLite file per store and project in the cache folder (in
  memory for ``memory://`` stores) holding the decoded version records, alias
  events, run start records and run events.
- **sync**: list the project's ``artifacts/`` and ``runs/`` keys (a *full* sync; at
  least every ``full_age``) or only the change journal's tail (design §12.8), fetch
  only the records not read before (the catalog remembers every key it has read;
  records never change; a first sync reads them from record bundles, §12.9), and the
  heartbeats of runs still running. Lineage queries then read SQLite, not the backend.
  On a store with the ``journal-head`` feature a warm sync first reads the journal
  head: when it holds the token saved at the last sync, nothing was journaled since
  and no window is listed (design §12.8, "Head").
- **lifecycle**: the project's delete / restore / purge events (design §14) are
  records like the others, synced from ``lifecycle/``; :meth:`Catalog.lifecycle_state`
  replays them, so the lineage graph knows which versions and runs are deleted or
  purged (when, by whom, why) without a listing per query.
- **stale**: the catalog is synced again before a query when this process
  wrote something since the last sync, or when the last sync is older than
  ``max_age`` seconds; ``sync()`` forces one.

The catalog is a cache: deleting it loses nothing; a damaged or older-schema
file is rebuilt.

Length: the schema, the file's care and the sync that fills the tables (full listing or
journal window, bundles, fetching, storing each kind of record) are one job over the
same tables; the queries that read them are :mod:`artifactstore.local.catalogread`.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgpack

from artifactstore.backends import Backend
from artifactstore.backends.base import list_after
from artifactstore.core import encoding
from artifactstore.core.errors import ArtifactStoreError, NotFoundError
from artifactstore.core.privatefiles import private_file, private_folder
from artifactstore.local.catalogread import CatalogQueries, RunInfo
from artifactstore.local.sqlitefiles import use_wal
from artifactstore.records import bundles, journal
from artifactstore.records.aliases import AliasEvent, AliasLog
from artifactstore.records.codec import PLAIN, RecordCodec
from artifactstore.records.lifecycle import (
    LifecycleEvent,
    LifecycleLog,
    lifecycle_prefix,
)
from artifactstore.records.runs import (
    RunEdge,
    RunEnd,
    RunLog,
    RunStart,
    parse_run_key,
    parse_time,
)
from artifactstore.records.versions import VersionLog, VersionRecord, artifacts_prefix, seq_of

__all__ = ["Catalog", "RunInfo", "SyncStats"]

#: 2: the lifecycle table; 3: versions.content (design §11.1); 4: run_ends.config (§12.2)
SCHEMA: Final = 4
_FETCH_WORKERS: Final = 16
#: seconds between full listings at most (the journal answers in between; design §12.8)
FULL_AGE: Final = 3600.0
#: unread records from which a full sync first reads the project's bundles (design §12.9)
_BUNDLE_MIN: Final = 200
#: records fetched and stored per step of a sync (its memory does not grow with the store)
_BATCH: Final = 2000
#: heartbeats of runs silent for longer than this are not fetched again
_HEARTBEAT_GIVE_UP: Final = timedelta(days=1)

_TABLES: Final = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS seen(key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions(
    artifact TEXT, number INTEGER, type TEXT, digest BLOB, manifest BLOB, size INTEGER,
    files INTEGER, created_at TEXT, created_by TEXT, run TEXT, description TEXT,
    metadata BLOB, content BLOB, gone INTEGER DEFAULT 0, PRIMARY KEY(artifact, number));
CREATE INDEX IF NOT EXISTS versions_run ON versions(run);
CREATE INDEX IF NOT EXISTS versions_digest ON versions(digest);
CREATE TABLE IF NOT EXISTS alias_events(
    artifact TEXT, alias TEXT, seq INTEGER, target INTEGER, previous INTEGER,
    protected INTEGER, at TEXT, by TEXT, forced INTEGER, PRIMARY KEY(artifact, alias, seq));
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY, name TEXT, job_type TEXT, tags BLOB, config BLOB,
    started_at TEXT, by TEXT, env BLOB, code BLOB, heartbeat REAL);
CREATE TABLE IF NOT EXISTS run_edges(
    run_id TEXT, seq INTEGER, direction TEXT, artifact TEXT, number INTEGER, digest BLOB,
    ref TEXT, created INTEGER, role TEXT, at TEXT, PRIMARY KEY(run_id, seq));
CREATE INDEX IF NOT EXISTS run_edges_version ON run_edges(artifact, number);
CREATE TABLE IF NOT EXISTS run_ends(
    run_id TEXT PRIMARY KEY, seq INTEGER, status TEXT, error TEXT, summary BLOB,
    ended_at TEXT, config BLOB);
CREATE TABLE IF NOT EXISTS heartbeats(run_id TEXT PRIMARY KEY, at TEXT);
CREATE TABLE IF NOT EXISTS files(artifact TEXT, number INTEGER, path TEXT, digest BLOB);
CREATE INDEX IF NOT EXISTS files_digest ON files(digest);
CREATE TABLE IF NOT EXISTS indexed(artifact TEXT, number INTEGER, PRIMARY KEY(artifact, number));
CREATE TABLE IF NOT EXISTS lifecycle(
    seq INTEGER PRIMARY KEY, action TEXT, artifact TEXT, numbers BLOB, runs BLOB,
    reason TEXT, ttl REAL, at TEXT, by TEXT);
"""


@dataclass(frozen=True, slots=True)
class _Logs:
    """The record logs a sync reads through (the backend, or bundles before it)."""

    versions: VersionLog
    aliases: AliasLog
    runs: RunLog
    lifecycle: LifecycleLog

    @staticmethod
    def over(backend: Backend, project: str, codec: RecordCodec) -> _Logs:
        return _Logs(VersionLog(backend, project, codec), AliasLog(backend, project, codec),
                     RunLog(backend, project, codec), LifecycleLog(backend, project, codec))


#: one INSERT of the catalog: its SQL and parameters
_Row = tuple[str, tuple[Any, ...]]
#: a bundle's records as rows waiting for the listing's end, by record key: the SQL and
#: its parameters as msgpack (a third of the tuple's memory; 46,000 of them wait)
_Rows = dict[str, tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class SyncStats:
    """What one sync fetched."""

    listed: int
    fetched: int
    seconds: float
    #: a full listing (else the journal's window)
    full: bool = True


def _pack(value: object) -> bytes:
    return encoding.pack(value)


def _row(value: object) -> _Row | None:
    """The catalog's INSERT of a decoded record (or a fetched heartbeat), None for nothing."""
    if isinstance(value, VersionRecord):
        return (
            "INSERT OR REPLACE INTO versions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
            (
                value.artifact,
                value.number,
                value.type,
                value.digest.raw,
                value.manifest.raw,
                value.size,
                value.files,
                value.created_at,
                value.created_by,
                value.run,
                value.description,
                _pack(dict(value.metadata)),
                None if value.content is None else value.content.raw,
            ),
        )
    if isinstance(value, AliasEvent):
        return (
            "INSERT OR REPLACE INTO alias_events VALUES (?,?,?,?,?,?,?,?,?)",
            (
                value.artifact,
                value.alias,
                value.seq,
                value.target,
                value.previous,
                value.protected,
                value.at,
                value.by,
                value.forced,
            ),
        )
    if isinstance(value, RunStart):
        return (
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                value.run_id,
                value.name,
                value.job_type,
                _pack(list(value.tags)),
                _pack(dict(value.config)),
                value.started_at,
                value.by,
                _pack(dict(value.env)),
                None if value.code is None else _pack(dict(value.code)),
                value.heartbeat,
            ),
        )
    if isinstance(value, RunEdge):
        return (
            "INSERT OR REPLACE INTO run_edges VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                value.run_id,
                value.seq,
                value.direction,
                value.artifact,
                value.number,
                value.digest.raw,
                value.ref,
                value.created,
                value.role,
                value.at,
            ),
        )
    if isinstance(value, RunEnd):
        return (
            "INSERT OR REPLACE INTO run_ends VALUES (?,?,?,?,?,?,?)",
            (
                value.run_id,
                value.seq,
                value.status,
                value.error,
                _pack(dict(value.summary)),
                value.ended_at,
                None if value.config is None else _pack(dict(value.config)),
            ),
        )
    if isinstance(value, LifecycleEvent):
        return (
            "INSERT OR REPLACE INTO lifecycle VALUES (?,?,?,?,?,?,?,?,?)",
            (value.seq, value.action, value.artifact, _pack(list(value.numbers)),
             _pack(list(value.runs)), value.reason, value.ttl, value.at, value.by),
        )
    if isinstance(value, tuple) and value[2] is not None:
        return ("INSERT OR REPLACE INTO heartbeats VALUES (?,?)", (value[1], value[2]))
    return None


class Catalog(CatalogQueries):
    """The SQLite catalog of one project; every method is thread-safe."""

    def __init__(
        self, backend: Backend, project: str, path: Path | None, *, max_age: float = 10.0,
        codec: RecordCodec = PLAIN, full_age: float = FULL_AGE, journal_head: bool = False,
    ) -> None:
        """``journal_head``: the store's config names the ``journal-head`` feature, so
        every writer replaces the head after its entries and an unchanged head may stand
        for an empty window (objects/config.py)."""
        self._backend = backend
        self._journal_head = journal_head
        self._project = project
        self._path = path
        self.max_age = max_age
        self.full_age = full_age
        self._codec = codec
        self._logs = _Logs.over(backend, project, codec)
        self._versions = self._logs.versions
        self._runs = self._logs.runs
        self._lock = threading.RLock()
        self._dirty = True
        self._synced_at = 0.0
        #: bumped whenever a sync stored something: lets callers cache derived graphs
        self.generation = 0
        #: how many syncs ran: state derived from other listings may be reused until it grows
        self.syncs = 0
        self._db = self._connect()

    # -- the file ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._path is None:
            return self._init(sqlite3.connect(":memory:", check_same_thread=False))
        try:
            return self._connect_file(self._path)
        except (OSError, sqlite3.Error):
            # A cache on a full, read-only or unwritable disk: this process keeps it in
            # memory (rebuilt from the store) rather than failing a read of the store.
            return self._init(sqlite3.connect(":memory:", check_same_thread=False))

    def _connect_file(self, path: Path) -> sqlite3.Connection:
        private_folder(path.parent)
        private_file(path)  # SQLite gives -wal and -shm the database file's mode
        try:
            return self._open_file(path)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise  # the disk, not the file (full, read-only, locked)
            # A cache: a damaged file is dropped and rebuilt from the store.
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
            private_file(path)
            return self._open_file(path)

    def _open_file(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        try:
            return self._init(db)
        except BaseException:
            db.close()  # no open file left behind (the folder may be unmounted next)
            raise

    @staticmethod
    def _init(db: sqlite3.Connection) -> sqlite3.Connection:
        use_wal(db, timeout=30)
        db.execute("PRAGMA synchronous=NORMAL")
        row = None
        with contextlib.suppress(sqlite3.OperationalError):
            row = db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
        if row is not None and row[0] == str(SCHEMA):
            # Why no write: a warm read-only command then leaves no WAL frames, so
            # closing has nothing to checkpoint (no fsync per `ls`, issue 20)
            return db
        if row is not None:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                db.execute(f'DROP TABLE IF EXISTS "{table}"')
        db.executescript(_TABLES)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
        db.commit()
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- freshness ---------------------------------------------------------------------

    def invalidate(self) -> None:
        """This process wrote a record: the next query syncs first."""
        self._dirty = True

    def ensure_fresh(self, sync: bool | None = None) -> None:
        """Sync when asked (True), never (False), or when stale (None)."""
        if sync is False:
            return
        if sync or self._dirty or time.monotonic() - self._synced_at > self.max_age:
            self.sync()

    # -- sync --------------------------------------------------------------------------

    def sync(self, *, full: bool = False) -> SyncStats:
        """Fetch every record not read before; see the module docstring.

        A full listing when ``full``, on the first sync, or when the last full one is
        older than ``full_age``; otherwise the journal's window since the last sync.
        """
        began = time.perf_counter()
        wall = datetime.now(UTC)
        self._dirty = False
        since = None if full else self._journal_since(wall)
        ahead: list[bundles.Ahead[_Rows]] = []
        try:
            return self._sync(began, wall, since, ahead)
        finally:
            for started in ahead:
                started.close()

    def _never_full(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM meta WHERE k = 'last_full'").fetchone() is None

    def _sync(self, began: float, wall: datetime, since: datetime | None,
              ahead: list[bundles.Ahead[_Rows]]) -> SyncStats:
        art_prefix = artifacts_prefix(self._project)
        run_prefix = self._runs.prefix
        # Read before any listing: a writer's entry lands before its head, so whatever
        # changed the head after this read shows the next sync a new token (§12.8).
        head = journal.read_head(self._backend, self._project) if self._journal_head else None
        unchanged = since is not None and head is not None and head == self._saved_head()
        if since is None:
            with self._lock:
                seen = {row[0] for row in self._db.execute("SELECT key FROM seen")}
            listed = self._list_artifacts(art_prefix, seen, ahead)
            listed += [*self._backend.list(run_prefix),
                       *self._backend.list(lifecycle_prefix(self._project))]
        else:
            # nothing journaled since the token was saved: no window to list
            listed = [] if unchanged else self._journal_keys(since)
            seen = self._seen_of(listed)  # not all 46,000 keys for a few (issue 20)
        # The unread records, in listing order; their reads are made when fetched (a
        # first sync takes most from bundles: 46,000 closures held were ~10 MiB).
        plain: dict[str, None] = {}
        version_keys: set[str] = set()
        heartbeat_keys: set[str] = set()
        for key in listed:
            job = self._job(key, art_prefix, run_prefix, version_keys, heartbeat_keys,
                            self._logs)
            if job is not None and key not in seen:
                plain[key] = None
        del seen
        if since is not None:  # no listing of heartbeats: runs that may still beat
            heartbeat_keys = self._maybe_running(wall)
        stored = 0
        if since is None and len(plain) >= _BUNDLE_MIN:  # a first sync, or far behind
            # One bundle at a time (memory: one bundle's rows), each record decoded as if
            # fetched (on a first sync in Ahead's thread, while the listing goes on); only
            # listed records are stored, one whose bundled bytes fail is fetched below.
            source: Iterable[_Rows] = ahead[0] if ahead else (
                self._rows_of(found, checked) for found, checked in
                bundles.each_bundle(self._backend, self._project, plain, self._codec))
            for rows in source:
                stored += self._store_rows([(key, row) for key, row in rows.items()
                                            if plain.pop(key, 0) is None])
        rest = [(key, job) for key in plain if (job := self._job(
            key, art_prefix, run_prefix, set(), set(), self._logs)) is not None]
        del plain
        for start in range(0, len(rest), _BATCH):  # bounded memory: a batch at a time
            stored += self._store_batch(self._fetch(rest[start:start + _BATCH]))
        stored += self._store_batch(self._fetch(self._heartbeat_jobs(heartbeat_keys)))
        if stored or not unchanged:  # else nothing to write: no WAL frames, no checkpoint
            with self._lock, self._db:
                gone = self._mark_gone(version_keys) if since is None else 0
                if stored or gone:
                    self.generation += 1
                # A sync that listed nothing keeps the last listing's time: the next
                # window still starts GRACE before a listing (an entry whose head lands
                # late, design §12.8)
                stamps = [] if unchanged else [
                    ("head", "" if head is None else head.hex()),
                    ("last_sync", repr(wall.timestamp()))]
                if since is None:
                    stamps.append(("last_full", repr(wall.timestamp())))
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", stamps)
        self._synced_at = time.monotonic()
        self.syncs += 1
        return SyncStats(len(listed), stored, time.perf_counter() - began,
                         full=since is None)

    def _list_artifacts(self, prefix: str, seen: set[str],
                        ahead: list[bundles.Ahead[_Rows]]) -> list[str]:
        """The ``artifacts/`` listing; on a first sync, the bundles' check started once it
        has shown ``_BUNDLE_MIN`` unread records (design §12.9, "Read, first sync").

        Why as soon as that: a first sync that will read bundles anyway fetches and
        checks them while the rest is listed (records/bundles.py, ``Ahead``; the same
        requests as reading them after), and the listing arrives page by page (S3), so
        the check starts after its first page rather than after all of ``artifacts/``.
        Only listed records are taken from the bundles.
        """
        base = f"projects/{self._project}/"
        listed: list[str] = []
        unread = 0
        never_full: bool | None = None
        for key in self._backend.list(prefix):
            listed.append(key)
            if ahead or key in seen or not bundles.is_bundled_kind(key[len(base):]):
                continue
            unread += 1
            if unread < _BUNDLE_MIN:
                continue
            if never_full is None:
                never_full = self._never_full()
            if never_full:
                ahead.append(bundles.Ahead(self._backend, self._project, self._codec,
                                           prepare=self._rows_of))
        return listed

    def _store_batch(self, results: list[tuple[str, Any]]) -> int:
        """Store fetched records (one transaction); heartbeats are never "seen"."""
        if not results:
            return 0
        with self._lock, self._db:
            for key, value in results:
                self._store(value)
                if not isinstance(value, tuple):
                    self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,))
        return len(results)

    def _store_rows(self, rows: list[tuple[str, tuple[str, bytes]]]) -> int:
        """Store decoded records' rows (one transaction), their keys as seen."""
        if not rows:
            return 0
        with self._lock, self._db:
            for _, (sql, params) in rows:
                self._db.execute(sql, msgpack.unpackb(params))
            self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)",
                                 [(key,) for key, _ in rows])
        return len(rows)

    def _rows_of(self, found: dict[str, bytes], checked: bundles.Checked) -> _Rows:
        """A checked bundle's records decoded as if fetched, as catalog rows by key.

        Runs in ``bundles.Ahead``'s thread on a first sync (it touches no table); a
        record whose bundled bytes do not decode is left out: if listed, its own GET
        reads it, exactly as a fetched record.
        """
        logs = _Logs.over(bundles.Prefetched(self._backend, found), self._project,
                          bundles.OpenedCodec(self._codec, checked))
        art_prefix, run_prefix = artifacts_prefix(self._project), self._runs.prefix
        rows: _Rows = {}
        for key in list(found):
            job = self._job(key, art_prefix, run_prefix, set(), set(), logs)
            if job is None:
                continue
            try:
                row = _row(job())
            except ArtifactStoreError:
                continue
            if row is not None:
                rows[key] = (row[0], msgpack.packb(row[1]))
        return rows

    def _seen_of(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` the catalog has read."""
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite's bound parameters
                part = keys[start:start + 500]
                found.update(row[0] for row in self._db.execute(
                    f"SELECT key FROM seen WHERE key IN ({','.join('?' * len(part))})", part))
        return found

    def _saved_head(self) -> bytes | None:
        """The head token read before the last listing (None: none saved, or empty)."""
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k = 'head'").fetchone()
        try:
            return bytes.fromhex(row[0]) or None if row is not None else None
        except ValueError:
            return None

    def _journal_since(self, wall: datetime) -> datetime | None:
        """When the last sync began, if the journal may answer this one (else None)."""
        with self._lock:
            meta = dict(self._db.execute(
                "SELECT k, v FROM meta WHERE k IN ('last_full', 'last_sync')").fetchall())
        try:
            last_full, last_sync = float(meta["last_full"]), float(meta["last_sync"])
        except (KeyError, ValueError):
            return None
        now_ = wall.timestamp()
        if not 0 <= now_ - last_full <= self.full_age or last_sync > now_:
            return None  # too old, or a clock that went back: list everything
        return datetime.fromtimestamp(last_sync, UTC)

    def _journal_keys(self, since: datetime) -> list[str]:
        """The record keys the journal's window names (records/journal.py)."""
        prefix = journal.journal_prefix(self._project)
        found = {journal.record_of(self._project, entry) for entry in
                 list_after(self._backend, prefix, journal.window_start(self._project, since))}
        return sorted(key for key in found if key is not None)

    def _job(
        self,
        key: str,
        art_prefix: str,
        run_prefix: str,
        version_keys: set[str],
        heartbeat_keys: set[str],
        logs: _Logs,
    ) -> Callable[[], Any] | None:
        life_prefix = lifecycle_prefix(self._project)
        if key.startswith(life_prefix):
            life_seq = seq_of(key[len(life_prefix):])
            if life_seq is None:
                return None
            return lambda: logs.lifecycle.read(life_seq)
        if key.startswith(run_prefix):
            parsed = parse_run_key(run_prefix, key)
            if parsed is None:
                return None
            run_id, section, seq = parsed
            if section == "start":
                return lambda: logs.runs.read_start(run_id)
            if section == "events" and seq is not None:
                event_seq = seq
                return lambda: logs.runs.read_event(run_id, event_seq)
            if section == "heartbeat":
                heartbeat_keys.add(run_id)
            return None
        _, _, rest = key[len(art_prefix) :].partition("/")
        section, _, tail = rest.partition("/")
        if section == "versions":
            if seq_of(tail) is None:
                return None
            version_keys.add(key)
            return lambda: logs.versions.read_key(key)
        if section == "aliases":
            if seq_of(tail.partition("/")[2]) is None:
                return None
            return lambda: logs.aliases.read_key(key)
        return None

    def _heartbeat_jobs(self, run_ids: set[str]) -> list[tuple[str, Callable[[], Any]]]:
        """Heartbeats of runs that may still be running (no end, not silent for a day)."""
        with self._lock:
            ended = {r[0] for r in self._db.execute("SELECT run_id FROM run_ends")}
            known = dict(self._db.execute("SELECT run_id, at FROM heartbeats").fetchall())
        limit = datetime.now(UTC) - _HEARTBEAT_GIVE_UP
        jobs: list[tuple[str, Callable[[], Any]]] = []
        for run_id in sorted(run_ids - ended):
            if run_id in known and parse_time(known[run_id]) < limit:
                continue
            jobs.append((f"heartbeat:{run_id}", functools.partial(self._heartbeat, run_id)))
        return jobs

    def _maybe_running(self, wall: datetime) -> set[str]:
        """Runs without an end that beat, or started, within ``_HEARTBEAT_GIVE_UP``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.run_id, r.started_at, h.at FROM runs r LEFT JOIN heartbeats h "
                "ON r.run_id = h.run_id WHERE r.run_id NOT IN (SELECT run_id FROM run_ends)"
            ).fetchall()
        limit = wall - _HEARTBEAT_GIVE_UP
        return {run_id for run_id, started, beat in rows
                if parse_time(beat or started) >= limit}

    def _heartbeat(self, run_id: str) -> tuple[str, str, str | None]:
        return ("heartbeat", run_id, self._runs.read_heartbeat(run_id))

    def _fetch(self, jobs: list[tuple[str, Callable[[], Any]]], *,
               threads: bool = True) -> list[tuple[str, Any]]:
        def run(job: tuple[str, Callable[[], Any]]) -> tuple[str, Any] | None:
            try:
                return job[0], job[1]()
            except NotFoundError:
                return None  # deleted between list and get: gone, like never listed

        if len(jobs) <= 1 or not threads:
            found = [run(j) for j in jobs]
        else:
            with ThreadPoolExecutor(min(_FETCH_WORKERS, len(jobs))) as pool:
                found = list(pool.map(run, jobs))
        return [f for f in found if f is not None]

    def _store(self, value: object) -> None:
        row = _row(value)
        if row is not None:
            self._db.execute(*row)

    def _mark_gone(self, listed_keys: set[str]) -> int:
        """Versions whose record vanished from the store (deleted behind our back)."""
        rows = self._db.execute("SELECT artifact, number, gone FROM versions").fetchall()
        listed = {(a, n) for a, n, _ in rows if self._versions.key(a, n) in listed_keys}
        known = {(a, n) for a, n, g in rows if not g}
        gone = known - listed
        self._db.executemany("UPDATE versions SET gone=1 WHERE artifact=? AND number=?", gone)
        returning = listed & {(a, n) for a, n, g in rows if g}
        self._db.executemany("UPDATE versions SET gone=0 WHERE artifact=? AND number=?", returning)
        return len(gone) + len(returning)
