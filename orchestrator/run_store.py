"""The run records beside LangGraph's checkpoints: what ran, what every model call cost, what happened.

Three tables of ours live in the same database as the checkpointer's own:
- `runs`: one row per run (task, status, options to resume it with, totals, final answer or error);
- `calls`: one row per model call (agent, purpose, model, delegation path, tokens, cost, timing, and the
  request and response with secrets stripped, so a run can be replayed without the API);
- `events`: the progress events of the run, timestamped (the timeline of `orchestrate show`).

Where they live is one target string (`--db`, env ORCHESTRATE_DB): a SQLite file by default (WAL mode with
`synchronous=NORMAL`: a crash loses at most the last transactions, never consistency), or a
`postgresql://` URL (run_store_pg.py, the `postgres` extra) when runs must outlive or outgrow one machine.
`open_store` picks the backend. `RunStore` is the SQLite store *and* the base the Postgres store swaps the
connection of, so everything typed `RunStore` takes either; the SQL is shared, written once with `?`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import platformdirs

from orchestrator.errors import UserError

__all__ = [
    "DB_ENV",
    "CallRecord",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "default_db_path",
    "is_postgres_url",
    "open_store",
]

RunStatus = Literal["running", "completed", "failed", "budget_exceeded"]

DB_ENV = "ORCHESTRATE_DB"
"""Environment variable naming the database when no `db` / `--db` is given."""

Rows = list[tuple[Any, ...]]
Execute = Callable[[str, tuple[Any, ...]], Rows]
"""Runs one statement (placeholders `?`) inside a backend's write transaction; returns its rows, if any."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, task TEXT NOT NULL, status TEXT NOT NULL, started REAL NOT NULL,
    finished REAL, agent TEXT, options TEXT NOT NULL, final TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS calls (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, agent TEXT NOT NULL, purpose TEXT NOT NULL, model TEXT NOT NULL,
    delegation TEXT NOT NULL, started REAL NOT NULL, seconds REAL NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL, request_hash TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, event TEXT NOT NULL, PRIMARY KEY (run_id, seq)
);
"""


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("orchestrate")) / "runs.sqlite"


def is_postgres_url(target: str | Path) -> bool:
    """A `postgresql://` or `postgres://` URL (a Path never is one: pathlib would fold its `//`)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_store(target: str | Path | None = None) -> RunStore:
    """The run store for `target`: a Postgres URL, else a SQLite file. None means env ORCHESTRATE_DB,
    else the per-user SQLite file, so every command and the library agree on where runs are."""
    chosen = target or os.environ.get(DB_ENV) or default_db_path()
    if is_postgres_url(chosen):
        from orchestrator.run_store_pg import PostgresRunStore  # the optional extra, imported only when asked

        return PostgresRunStore(str(chosen))
    return RunStore(chosen)


@dataclass(frozen=True)
class CallRecord:
    """One model call, as the ledger and the replay see it."""

    agent: str
    purpose: str
    model: str
    delegation: str
    """Path of Task call ids from the top agent to this call's context ("" at the top)."""
    started: float
    seconds: float
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    request_hash: str
    request: str
    response: str


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    task: str
    status: RunStatus
    started: float
    options: Mapping[str, Any] = field(default_factory=dict)
    """What `resume` needs to rebuild the run: workspace, agents dirs, provider, permissions, budgets."""
    finished: float | None = None
    agent: str | None = None
    final: str | None = None
    error: str | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


class RunStore:
    """Thread-safe access to the run tables: one connection behind a lock. This class is the SQLite store;
    a backend overrides only `_tx`, `_read`, `_next_seq` and `close` (see run_store_pg.py)."""

    target: str
    """What `open_store` / `--db` was given (the file, or the URL): opens the same database again."""
    where: str
    """`target` fit for messages and logs (no password)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.target = self.where = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Execute]:
        """A write transaction. IMMEDIATE takes the write lock up front, so the sequence numbers it counts
        stay unique across processes sharing the file."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield lambda query, params: self._db.execute(query, params).fetchall()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, query: str, params: tuple[Any, ...]) -> Rows:
        with self._lock:
            return self._db.execute(query, params).fetchall()

    def _next_seq(self, execute: Execute, table: Literal["calls", "events"], run_id: str) -> int:
        """The next sequence number of a run's calls or events, inside the caller's write transaction."""
        ((count,),) = execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,))
        return int(count)

    def start_run(self, run_id: str, task: str, options: Mapping[str, Any]) -> None:
        with self._tx() as execute:
            execute(
                "INSERT INTO runs (run_id, task, status, started, options) VALUES (?, ?, 'running', ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, task, time.time(), json.dumps(dict(options))),
            )

    def finish_run(self, run_id: str, status: RunStatus, *, final: str | None = None, error: str | None = None) -> None:
        with self._tx() as execute:
            execute(
                "UPDATE runs SET status = ?, finished = ?, final = ?, error = ? WHERE run_id = ?",
                (status, time.time(), final, error, run_id),
            )

    def mark_running(self, run_id: str, agent: str | None = None) -> None:
        with self._tx() as execute:
            execute(
                "UPDATE runs SET status = 'running', error = NULL, agent = COALESCE(?, agent) WHERE run_id = ?",
                (agent, run_id),
            )

    def add_call(self, run_id: str, call: CallRecord) -> None:
        fields = asdict(call)
        columns = ", ".join(fields)
        with self._tx() as execute:
            seq = self._next_seq(execute, "calls", run_id)
            execute(
                f"INSERT INTO calls (run_id, seq, {columns}) VALUES (?, ?, {', '.join('?' * len(fields))})",
                (run_id, seq, *fields.values()),
            )

    def add_event(self, run_id: str, event: Mapping[str, Any]) -> None:
        with self._tx() as execute:
            seq = self._next_seq(execute, "events", run_id)
            execute("INSERT INTO events VALUES (?, ?, ?, ?)", (run_id, seq, time.time(), json.dumps(event)))

    def spent(self, run_id: str, delegation_prefix: str = "") -> float:
        """Dollars spent by the run, or by one delegation and everything below it."""
        query = "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE run_id = ? AND delegation LIKE ? ESCAPE '\\'"
        pattern = delegation_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        ((total,),) = self._read(query, (run_id, pattern))
        return float(total)

    def calls(self, run_id: str) -> list[CallRecord]:
        names = list(CallRecord.__dataclass_fields__)
        rows = self._read(f"SELECT {', '.join(names)} FROM calls WHERE run_id = ? ORDER BY seq", (run_id,))
        return [CallRecord(**dict(zip(names, row, strict=True))) for row in rows]

    def events(self, run_id: str) -> list[tuple[float, dict[str, Any]]]:
        rows = self._read("SELECT at, event FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
        return [(at, json.loads(event)) for at, event in rows]

    def run(self, run_id: str) -> RunRecord:
        runs = self._runs("WHERE r.run_id = ?", "", (run_id,))
        if not runs:
            raise UserError(f"no run {run_id!r} in {self.where} (see `orchestrate runs`)")
        return runs[0]

    def runs(self, limit: int = 50) -> list[RunRecord]:
        return self._runs("", "ORDER BY r.started DESC LIMIT ?", (limit,))

    def _runs(self, where: str, tail: str, params: tuple[Any, ...]) -> list[RunRecord]:
        query = (
            "SELECT r.run_id, r.task, r.status, r.started, r.options, r.finished, r.agent, r.final, r.error, "
            "COALESCE(SUM(c.cost_usd), 0), COALESCE(SUM(c.input_tokens), 0), COALESCE(SUM(c.output_tokens), 0) "
            f"FROM runs r LEFT JOIN calls c ON c.run_id = r.run_id {where} GROUP BY r.run_id {tail}"
        )
        return [_run_record(row) for row in self._read(query, params)]


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, task, status, started, options, finished, agent, final, error, cost, tokens_in, tokens_out = row
    return RunRecord(
        run_id=run_id, task=task, status=status, started=started, options=json.loads(options), finished=finished,
        agent=agent, final=final, error=error, cost_usd=float(cost), input_tokens=int(tokens_in),
        output_tokens=int(tokens_out),
    )  # fmt: skip
