"""Switching this machine's SQLite files to WAL (local/sqlitefiles.py) while another
connection holds the lock the switch needs: what made two processes opening the same new
marks file fail once with "database is locked" (a shuffled run of the suite, session 19)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from artifactstore.local.sqlitefiles import use_wal


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in the middle of a write to a new file (rollback journal), as a
    second process's first write would be."""
    db = sqlite3.connect(tmp_path / "f.sqlite", isolation_level=None, check_same_thread=False)
    db.execute("CREATE TABLE t (x)")
    db.execute("BEGIN IMMEDIATE")
    yield db
    if db.in_transaction:
        db.execute("ROLLBACK")
    db.close()


def _opener(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "f.sqlite", timeout=5, isolation_level=None)


def test_sqlite_refuses_the_switch_at_once_despite_its_busy_timeout(
        tmp_path: Path, holder: sqlite3.Connection) -> None:
    opener = _opener(tmp_path)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        opener.execute("PRAGMA journal_mode=WAL")
    assert time.monotonic() - started < 1  # not the 5 s busy timeout: why use_wal retries
    opener.close()


def test_use_wal_waits_until_the_other_connection_lets_go(
        tmp_path: Path, holder: sqlite3.Connection) -> None:
    opener = _opener(tmp_path)
    released: list[float] = []

    def release() -> None:
        holder.execute("ROLLBACK")
        released.append(time.monotonic())

    timer = threading.Timer(0.3, release)
    timer.start()
    try:
        use_wal(opener, timeout=10)
        done = time.monotonic()
    finally:
        timer.join()
    assert released
    assert done >= released[0]  # it switched only once the lock was free
    assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    opener.close()
    again = _opener(tmp_path)
    use_wal(again, timeout=0)  # the file keeps the mode: only a read now
    again.close()


def test_use_wal_gives_up_after_its_timeout(tmp_path: Path, holder: sqlite3.Connection) -> None:
    opener = _opener(tmp_path)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        use_wal(opener, timeout=0.3)
    assert 0.2 <= time.monotonic() - started < 3
    opener.close()
