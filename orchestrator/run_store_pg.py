"""The run records and LangGraph's checkpoints in PostgreSQL (`--db postgresql://…`, the `postgres` extra).

For teams whose runs outgrow one machine: any machine with the URL can list, show and resume a run. Same
tables and SQL as the SQLite store (run_store.py); this module swaps the connection (psycopg 3, one sync
connection behind a lock, like SQLite's, since the store is called from worker threads) and adds what a
server shared by many processes needs: the schema created under an advisory lock, and per-run sequence
numbers counted under one. psycopg and langgraph-checkpoint-postgres are imported only when a Postgres
URL is used, so the core install never needs them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

from orchestrator.errors import UserError
from orchestrator.run_store import LEASE_COLUMNS, SCHEMA, Execute, Rows, RunStore

if TYPE_CHECKING:
    import psycopg
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

__all__ = ["PostgresRunStore", "postgres_checkpointer", "redact_url"]

PG_SCHEMA = (
    (SCHEMA + "".join(f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {n} {t};\n" for n, t in LEASE_COLUMNS))
    .replace(" REAL", " DOUBLE PRECISION")
    .replace(" INTEGER", " BIGINT")
)
"""SQLite's REAL is 8 bytes, Postgres's only 4 (a timestamp would lose its seconds); INTEGER likewise."""

_SCHEMA_LOCK = 0x6F72_6368_0000_0001
"""Advisory lock keys ("orch…"): concurrent `CREATE TABLE IF NOT EXISTS` can fail on Postgres's catalog."""
_CHECKPOINT_SETUP_LOCK = 0x6F72_6368_0000_0002

_EXTRA = "a postgresql:// database needs the postgres extra: pip install 'orchestrate[postgres]'"


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _execute(cursor: psycopg.Cursor[Any], query: str, params: tuple[Any, ...]) -> Rows:
    """One statement in the shared `?` dialect. Text loses NUL bytes, which Postgres cannot store (JSON
    columns never hold one: json.dumps escapes it)."""
    values = tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in params)
    cursor.execute(query.replace("?", "%s"), values or None)
    return cursor.fetchall() if cursor.description is not None else []


class PostgresRunStore(RunStore):
    """The run tables in a PostgreSQL database; `target` is its URL."""

    def __init__(self, url: str) -> None:
        self.target, self.where = url, redact_url(url)
        self._lock = threading.Lock()
        self._pg = self._connect()
        with self._tx() as execute:
            execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            execute(PG_SCHEMA, ())

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            import psycopg
        except ImportError as exc:
            raise UserError(_EXTRA) from exc
        try:
            return psycopg.connect(self.target, autocommit=True)
        except psycopg.Error as exc:  # server down, bad URL, wrong password: the user's to fix
            raise UserError(f"cannot reach the database {self.where} (--db / ORCHESTRATE_DB): {exc}") from exc

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, opened again if the server dropped it (a restart between two calls)."""
        if self._pg.broken:
            self._pg = self._connect()
        return self._pg

    def close(self) -> None:
        with self._lock:
            self._pg.close()

    @contextmanager
    def _tx(self) -> Iterator[Execute]:
        with self._lock:
            connection = self._connection()
            with connection.transaction(), connection.cursor() as cursor:
                yield lambda query, params: _execute(cursor, query, params)

    def _read(self, query: str, params: tuple[Any, ...]) -> Rows:
        with self._lock, self._connection().cursor() as cursor:
            return _execute(cursor, query, params)

    def _next_seq(self, execute: Execute, table: Literal["calls", "events"], run_id: str) -> int:
        """Count under a per-run advisory lock: without SQLite's database-wide write lock, two processes
        writing one run (two `resume`s) would otherwise take the same number."""
        execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (f"{table}/{run_id}",))
        return super()._next_seq(execute, table, run_id)


@asynccontextmanager
async def postgres_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """LangGraph's AsyncPostgresSaver on `url`, its tables created or migrated first."""
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError as exc:
        raise UserError(_EXTRA) from exc
    async with AsyncPostgresSaver.from_conn_string(url) as saver:
        await _setup_alone(saver, cast("psycopg.AsyncConnection[Any]", saver.conn))  # from_conn_string: one
        yield saver


async def _setup_alone(saver: AsyncPostgresSaver, connection: psycopg.AsyncConnection[Any]) -> None:
    """`setup()` is not safe to run concurrently (runs starting together race to migrate), so it runs under
    an advisory lock. Waiters poll rather than block: a session blocked on the lock holds a transaction
    open, and the migration's CREATE INDEX CONCURRENTLY waits for every open transaction: a deadlock."""
    while not await _try_lock(connection):
        await asyncio.sleep(0.05)
    try:
        await saver.setup()
    finally:
        await connection.execute("SELECT pg_advisory_unlock(%s)", (_CHECKPOINT_SETUP_LOCK,))


async def _try_lock(connection: psycopg.AsyncConnection[Any]) -> bool:
    cursor = await connection.execute("SELECT pg_try_advisory_lock(%s) AS locked", (_CHECKPOINT_SETUP_LOCK,))
    row = await cursor.fetchone()
    return bool(row and row["locked"])
