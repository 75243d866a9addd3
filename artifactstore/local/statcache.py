"""The stat cache: re-logging an unchanged file without reading it (like git's index).

Vocabulary: an **entry** maps a local file, identified by its absolute path and
its ``stat`` (device, inode, size, mtime and ctime in nanoseconds), to what
storing it produced in one key domain of one store: its digest and chunk list.
A file whose ``stat`` still matches is taken from the entry; the object store
then only checks that every chunk is still stored (gc may have reclaimed it)
before the version names them (design §15).

A file modified within :data:`RACY_NS` of being cached is not cached: a write
in the same timestamp tick would leave its ``stat`` unchanged ("racily clean"
in git's words). The cache is an accelerator only: any error disables it for
the call and the file is read as usual. It lives in this user's cache folder
and holds local paths and plaintext digests, like the other local caches.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import time
from pathlib import Path
from typing import Any, NamedTuple

from artifactstore.core.digest import Digest
from artifactstore.core.errors import ArtifactStoreError
from artifactstore.core.privatefiles import private_file, private_folder
from artifactstore.local.sqlitefiles import use_wal
from artifactstore.objects.blobrefs import ChunkRef, FileRef

__all__ = ["RACY_NS", "FolderRow", "StatCache", "folder_key"]

RACY_NS = 1_000_000_000
#: a folder's entries are read in one query (:meth:`StatCache.preload`) up to this many
PRELOAD_MAX = 200_000
_CHUNK = struct.Struct("<32sI")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, size INTEGER, mtime INTEGER,
    ctime INTEGER, digest BLOB, chunks BLOB
)
"""
_FOLDERS = """
CREATE TABLE IF NOT EXISTS folders (
    key TEXT PRIMARY KEY, sig BLOB, node BLOB, size INTEGER, files INTEGER, lines BLOB,
    blobs BLOB
)
"""
_PENDING_FOLDERS = ("CREATE TEMP TABLE IF NOT EXISTS pending_folders AS "
                    "SELECT * FROM folders WHERE 0")
#: queued entries are moved into a temporary table (this connection's, on disk) by this
#: many, so a log of a million files does not hold a million rows until :meth:`save`
PENDING_BATCH = 10_000
_PENDING = "CREATE TEMP TABLE IF NOT EXISTS pending AS SELECT * FROM files WHERE 0"

Stat = tuple[int, int, int, int, int]


class FolderRow(NamedTuple):
    """What a log remembers of a folder of files (:meth:`StatCache.remember_folder`)."""

    sig: bytes
    node: bytes
    size: int
    files: int
    lines: bytes
    blobs: bytes


_FOLDER_TYPES = (bytes, bytes, int, int, bytes, bytes)


def folder_key(folder: str, path: str) -> str:
    """The key of the local folder ``folder`` (absolute) logged as artifact path ``path``."""
    return f"{folder}\n{path}"


def stat_key(st: os.stat_result) -> Stat:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StatCache:
    """Entries of one key domain of one store, in a SQLite file (None: no cache)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[object, ...]] = []
        #: queued entries already moved into the temporary ``pending`` table
        self._spilled = False
        #: folders whose entries are all in ``_rows`` (their paths end with a "/")
        self._preloaded: tuple[str, ...] = ()
        self._rows: dict[str, tuple[Any, ...]] = {}
        #: a folder too big to preload: its rows are read in path order as lookups
        #: go (``_Scan``), restarted when a lookup goes back
        self._scanned: tuple[str, str] | None = None
        self._scan: _Scan | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and self._path is not None:
            try:
                private_folder(self._path.parent)
                private_file(self._path)  # SQLite gives -wal and -shm the file's mode
                db = sqlite3.connect(self._path, timeout=5, check_same_thread=False)
                use_wal(db, timeout=5)
                db.execute(_SCHEMA)
                db.execute(_FOLDERS)
                self._db = db
            except (OSError, sqlite3.Error):
                self._path = None  # unusable: read files as usual
        return self._db

    def preload(self, folder: Path, *, ordered: bool = False) -> None:
        """Read the entries of files under ``folder`` (absolute) in one query, if there
        are at most :data:`PRELOAD_MAX`: lookups there answer from memory until
        :meth:`save`, where a query per file costs ~25 us (0.5 s for 20,000 files).
        ``ordered``: lookups will come in byte order of their paths (a streamed log),
        so one ordered scan answers them whatever the count, holding no rows."""
        db = self._connect()
        if db is None:
            return
        low = str(folder).rstrip("/") + "/"
        high = low[:-1] + chr(ord("/") + 1)  # every path starting with ``low``
        if ordered:
            self._scanned, self._scan = (low, high), None
            return
        try:
            count = db.execute("SELECT COUNT(*) FROM files WHERE path >= ? AND path < ?",
                               (low, high)).fetchone()[0]
            if count > PRELOAD_MAX:
                # Why not a query per file: ~25 us each, 25 s for a million files.
                # Lookups come in path order (staged files are sorted), so one ordered
                # scan of the folder's rows answers them all, in constant memory.
                self._scanned, self._scan = (low, high), None
                return
            rows = db.execute("SELECT path, dev, ino, size, mtime, ctime, digest, chunks "
                              "FROM files WHERE path >= ? AND path < ?", (low, high))
            self._rows.update((row[0], row[1:]) for row in rows)
        except sqlite3.Error:
            return
        self._preloaded += (low,)

    def lookup(self, source: str | Path, st: os.stat_result) -> FileRef | None:
        """The stored form of ``source`` if its ``stat`` is unchanged since it was cached."""
        key = str(source)
        if key.startswith(self._preloaded):
            row = self._rows.get(key)
        elif self._scanned is not None and self._scanned[0] <= key < self._scanned[1]:
            try:
                row = self._scan_to(key)
            except sqlite3.Error:
                return None
        else:
            db = self._connect()
            if db is None:
                return None
            try:
                row = db.execute("SELECT dev, ino, size, mtime, ctime, digest, chunks FROM "
                                 "files WHERE path = ?", (key,)).fetchone()
            except sqlite3.Error:
                return None
        if row is None or tuple(row[:5]) != stat_key(st):
            return None
        try:
            blob = row[6]
            if len(blob) == _CHUNK.size:  # most files are one chunk: no generator
                raw, length = _CHUNK.unpack(blob)
                chunks: tuple[ChunkRef, ...] = (ChunkRef(Digest(raw), length),)
            else:
                chunks = tuple(ChunkRef(Digest(raw), length)
                               for raw, length in _CHUNK.iter_unpack(blob))
            return FileRef(Digest(row[5]), st.st_size, chunks)
        except (ArtifactStoreError, struct.error, TypeError, ValueError):
            return None  # a damaged row is a miss, never an error

    def _scan_to(self, key: str) -> tuple[Any, ...] | None:
        assert self._scanned is not None
        scan = self._scan
        if scan is None or key < scan.last:
            db = self._connect()
            if db is None:
                return None
            rows = db.execute("SELECT path, dev, ino, size, mtime, ctime, digest, chunks FROM "
                              "files WHERE path >= ? AND path < ? ORDER BY path",
                              (key, self._scanned[1]))
            scan = self._scan = _Scan(rows)
        return scan.find(key)

    def remember(self, source: str | Path, st: os.stat_result, ref: FileRef) -> None:
        """Queue an entry (written by :meth:`save`), unless the file changed too recently."""
        if self._path is None or time.time_ns() - st.st_mtime_ns < RACY_NS:
            return
        chunks = b"".join(_CHUNK.pack(c.id.raw, c.length) for c in ref.chunks)
        self._pending.append((str(source), *stat_key(st), ref.digest.raw, chunks))
        if len(self._pending) >= PENDING_BATCH:
            self._spill()

    def _spill(self) -> None:
        """Move queued entries into the temporary table. Why not into ``files``: they
        may only be trusted once the version naming their chunks is committed, and a
        temporary table vanishes with the connection (or a crash) by itself."""
        db = self._connect()
        pending, self._pending = self._pending, []
        if db is None:
            return
        try:
            db.execute(_PENDING)
            db.executemany("INSERT INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?)", pending)
            self._spilled = True
        except sqlite3.Error:
            self._path = None  # unusable: the rest of this log reads files as usual

    def folder(self, key: str) -> FolderRow | None:
        """The folder row of ``key`` (see :meth:`remember_folder`), or None."""
        db = self._connect()
        if db is None:
            return None
        try:
            row = db.execute("SELECT sig, node, size, files, lines, blobs FROM folders "
                             "WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        if row is None or not all(isinstance(v, t) for v, t in zip(row, _FOLDER_TYPES,
                                                                   strict=True)):
            return None  # a damaged row is a miss, never an error
        return FolderRow(*row)

    def folder_signature(self, folder: str, path: str) -> bytes | None:
        """The signature of the folder row of the local folder ``folder`` (absolute)
        logged as ``path``, or None: what a check compares before it skips ``access``
        (:func:`~artifactstore.local.localtree.check_folder`'s ``known``)."""
        db = self._connect()
        if db is None:
            return None
        try:
            row = db.execute("SELECT sig FROM folders WHERE key = ?",
                             (folder_key(folder, path),)).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row is not None and isinstance(row[0], bytes) else None

    def remember_folder(self, key: str, row: FolderRow) -> None:
        """Queue a folder row (saved with the file entries by :meth:`save`): a folder
        whose files all have the stat that ``row.sig`` hashes is the tree node
        ``row.node`` (``size``, ``files``), lists as ``row.lines`` in the content
        listing and names the blobs ``row.blobs`` (32 bytes each). ``key`` says which
        local folder under which artifact path (:func:`folder_key`)."""
        db = self._connect()
        if db is None:
            return
        try:
            db.execute(_PENDING_FOLDERS)
            db.execute("INSERT INTO pending_folders VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (key, *row))
            self._spilled = True
        except sqlite3.Error:
            self._path = None

    def save(self) -> None:
        """Write queued entries (after the version that names them was committed) and
        forget preloaded ones."""
        self._preloaded, self._rows = (), {}
        self._scanned = self._scan = None
        pending, self._pending = self._pending, []
        spilled, self._spilled = self._spilled, False
        db = self._connect()
        if db is None or not (pending or spilled):
            return
        with contextlib.suppress(sqlite3.Error), db:
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           pending)
            if spilled:
                db.execute(_PENDING)
                db.execute(_PENDING_FOLDERS)
                db.execute("INSERT OR REPLACE INTO files SELECT * FROM pending")
                db.execute("INSERT OR REPLACE INTO folders SELECT * FROM pending_folders")
                db.execute("DELETE FROM pending")
                db.execute("DELETE FROM pending_folders")

    def discard(self) -> None:
        """Drop queued and preloaded entries (the log they were for failed)."""
        self._preloaded, self._rows, self._pending = (), {}, []
        self._scanned = self._scan = None
        if self._spilled and self._db is not None:
            self._spilled = False
            with contextlib.suppress(sqlite3.Error), self._db:
                self._db.execute(_PENDING)
                self._db.execute(_PENDING_FOLDERS)
                self._db.execute("DELETE FROM pending")
                self._db.execute("DELETE FROM pending_folders")

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


class _Scan:
    """A cursor over rows in path order, answering lookups of increasing paths."""

    def __init__(self, rows: sqlite3.Cursor) -> None:
        self._rows = rows
        self._head: tuple[Any, ...] | None = rows.fetchone()
        self.last = ""

    def find(self, key: str) -> tuple[Any, ...] | None:
        self.last = key
        head = self._head
        while head is not None and head[0] < key:
            head = self._rows.fetchone()
        self._head = head
        return head[1:] if head is not None and head[0] == key else None
