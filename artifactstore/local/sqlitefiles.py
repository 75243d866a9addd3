"""Opening this machine's SQLite files (catalog, stat cache, high-water marks) in WAL mode.

WAL lets one process write while others read, and a file keeps the mode once set, so
each opening only checks it. Switching a new file needs a lock that no other connection
holds: while another connection holds the file's write lock (two processes opening the
same new file at once, one already writing its tables), SQLite answers the switch
SQLITE_BUSY ("database is locked") at once, without waiting the busy timeout (waiting
could deadlock the two). The switch is therefore retried here until the caller's
timeout, a few milliseconds apart.
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["use_wal"]


def use_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Put ``db``'s file in WAL mode (a read when it already is), retrying the switch
    while another connection holds the lock it needs, for up to ``timeout`` seconds;
    then ``sqlite3.OperationalError`` as SQLite gave it."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)  # the other opener holds the lock for a moment: back off
        delay = min(delay * 2, 0.05)
