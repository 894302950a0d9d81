"""Opening the run database's SQLite file while other processes may be opening it at the same moment.

`PRAGMA journal_mode=WAL` on a file that another connection is switching too fails at once with "database
is locked": SQLite does not wait on its busy handler for that change. Two `orchestrate batch`
processes started together on a new `--db` hit it (measured: 13 of 40 trials of six processes opening one
new file). So the switch is retried until the same deadline as any other wait for a lock.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Literal

__all__ = ["BUSY_S", "connect", "is_lock_contention"]

BUSY_S = 30.0
"""How long a statement waits for another writer (a second batch, the checkpointer) before it fails."""
_FIRST_PAUSE_S = 0.005
_LONGEST_PAUSE_S = 0.25


def connect(path: Path, *, autocommit: bool = False, busy_s: float = BUSY_S) -> sqlite3.Connection:
    """A connection in WAL mode that waits up to `busy_s` for another writer's lock; `autocommit` leaves
    transactions to the caller (`isolation_level=None`), else sqlite3 opens one before a write, its default.
    Raises sqlite3.Error when the lock outlasts the wait."""
    isolation: Literal["DEFERRED"] | None = None if autocommit else "DEFERRED"
    conn = sqlite3.connect(path, check_same_thread=False, timeout=busy_s, isolation_level=isolation)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_s * 1000)}")
        _switch_to_wal(conn, time.monotonic() + busy_s)
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def is_lock_contention(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (worth waiting for), not a broken file or query."""
    return "locked" in str(exc) or "busy" in str(exc)


def _switch_to_wal(conn: sqlite3.Connection, deadline: float) -> None:
    pause = _FIRST_PAUSE_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_lock_contention(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, _LONGEST_PAUSE_S)
