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

import asyncio
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import platformdirs

from orchestrator.errors import UserError
from orchestrator.sqlite_open import connect, is_lock_contention

__all__ = [
    "DB_ENV",
    "LEASE_BEAT_S",
    "CallRecord",
    "EventLog",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "ToolCallJournal",
    "default_db_path",
    "is_postgres_url",
    "keep_lease",
    "lease_alive",
    "open_store",
    "this_owner",
]

RunStatus = Literal["running", "completed", "incomplete", "failed", "budget_exceeded", "interrupted"]
"""completed: done, everything approved; incomplete: done, with issues; failed / budget_exceeded / interrupted:
stopped early, resumable. A `running` run whose owner is gone reads as interrupted."""

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
CREATE TABLE IF NOT EXISTS tool_calls (
    run_id TEXT NOT NULL, call_id TEXT NOT NULL, started REAL NOT NULL, finished REAL, result TEXT, ok INTEGER,
    PRIMARY KEY (run_id, call_id)
);
"""
LEASE_COLUMNS = (("owner", "TEXT"), ("heartbeat", "REAL"))
"""Added to `runs` for leases (stores made before them get them on open)."""
LEASE_STALE_S = 30.0
"""A running run whose owner has not beaten its heartbeat for this long is interrupted (its process died)."""
LEASE_BEAT_S = 10.0
"""How often a live run renews its lease."""
_BUSY_RETRIES = 4


def this_owner() -> str:
    """Who holds a lease: host and pid of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def keep_lease(store: RunStore, run_id: str, owner: str) -> Iterator[None]:
    """Renew the run's lease while it runs (on the running event loop), so `runs` and `resume` can tell it
    from a dead one."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(LEASE_BEAT_S)
            await asyncio.to_thread(store.beat, run_id, owner)

    task = asyncio.get_running_loop().create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class EventLog:
    """A run's events, written off the event loop in batches: a burst of events (a turn's delegations, its
    tool calls) is one transaction, at most `delay` seconds after its first event. `aclose` writes what is
    left and raises a write that failed; a crash loses at most the last `delay` of progress events, never a
    checkpoint or a model call's record."""

    def __init__(self, store: RunStore, run_id: str, delay: float = 0.02) -> None:
        self._store, self._run_id, self._delay = store, run_id, delay
        self._pending: list[tuple[float, Mapping[str, Any]]] = []
        self._sleeping: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()
        self._error: BaseException | None = None

    def add(self, event: Mapping[str, Any]) -> None:
        self._pending.append((time.time(), event))
        if self._sleeping is None:
            self._sleeping = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._delay)
        self._sleeping = None  # from here on it is a write, which aclose waits for instead of cancelling
        try:
            await self._flush()
        except Exception as exc:  # noqa: BLE001 - kept for aclose, which raises it in the run's own task
            self._error = self._error or exc

    async def _flush(self) -> None:
        async with self._writing:
            batch, self._pending = self._pending, []
            if batch:
                await asyncio.to_thread(self._store.add_events, self._run_id, batch)

    async def aclose(self) -> None:
        if self._sleeping is not None:
            self._sleeping.cancel()
            self._sleeping = None
        await self._flush()
        if self._error is not None:
            raise self._error


def lease_alive(owner: str | None, heartbeat: float | None, now: float | None = None) -> bool:
    """Whether the lease holder is still at work: its heartbeat is fresh and, on this host, its process
    exists (a kill -9 on the same machine shows at once, not after the heartbeat goes stale)."""
    if not owner or heartbeat is None or (now or time.time()) - heartbeat > LEASE_STALE_S:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@dataclass(frozen=True)
class ToolCallJournal:
    """What the store knows of one side-effecting tool call: started (and when it ended, with what)."""

    finished: bool
    result: str
    ok: bool


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
    owner: str | None = None
    """host:pid of the process that holds the run's lease while it runs."""
    heartbeat: float | None = None


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
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect(self.path, autocommit=True)
            self._db.executescript(SCHEMA)
            with self._tx() as execute:  # check and add in one write transaction: processes that open a
                # new or older file at once add each column once
                columns = {row[1] for row in execute("PRAGMA table_info(runs)", ())}
                for name, kind in (c for c in LEASE_COLUMNS if c[0] not in columns):
                    execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}", ())
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot use the run database {self.where} (--db / ORCHESTRATE_DB): {exc}") from exc

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
        stay unique across processes sharing the file; another writer (a checkpointer, a second `batch`)
        holding it is waited for (`busy_timeout`, then a few retries), never a crash."""
        with self._lock:
            self._begin()
            try:
                yield lambda query, params: self._db.execute(query, params).fetchall()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _begin(self) -> None:
        for attempt in range(_BUSY_RETRIES):
            try:
                self._db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_lock_contention(exc) or attempt == _BUSY_RETRIES - 1:
                    raise UserError(f"the run database {self.where} stays locked: {exc}") from exc

    def _read(self, query: str, params: tuple[Any, ...]) -> Rows:
        with self._lock:
            return self._db.execute(query, params).fetchall()

    def _next_seq(self, execute: Execute, table: Literal["calls", "events"], run_id: str) -> int:
        """The next sequence number of a run's calls or events, inside the caller's write transaction."""
        ((count,),) = execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,))
        return int(count)

    def start_run(self, run_id: str, task: str, options: Mapping[str, Any], owner: str | None = None) -> None:
        with self._tx() as execute:
            execute(
                "INSERT INTO runs (run_id, task, status, started, options, owner, heartbeat) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
                (run_id, task, time.time(), json.dumps(dict(options)), owner, time.time()),
            )

    def finish_run(self, run_id: str, status: RunStatus, *, final: str | None = None, error: str | None = None) -> None:
        with self._tx() as execute:
            execute(
                "UPDATE runs SET status = ?, finished = ?, final = ?, error = ?, owner = NULL WHERE run_id = ?",
                (status, time.time(), final, error, run_id),
            )

    def claim(self, run_id: str, owner: str, *, force: bool = False) -> None:
        """Take the run's lease to resume it; refuses a lease a live process holds (unless `force`)."""
        with self._tx() as execute:
            rows = execute("SELECT status, owner, heartbeat FROM runs WHERE run_id = ?", (run_id,))
            if not rows:
                raise UserError(f"no run {run_id!r} in {self.where} (see `orchestrate runs`)")
            status, holder, beat = rows[0]
            if status == "running" and holder != owner and lease_alive(holder, beat) and not force:
                ago = time.time() - beat
                raise UserError(
                    f"run {run_id} is running in {holder} (heartbeat {ago:.0f} s ago); "
                    "resume it only if that process is gone: orchestrate resume --force"
                )
            execute(
                "UPDATE runs SET status = 'running', error = NULL, owner = ?, heartbeat = ? WHERE run_id = ?",
                (owner, time.time(), run_id),
            )

    def beat(self, run_id: str, owner: str) -> None:
        """Renew the lease (only while this owner holds it)."""
        with self._tx() as execute:
            execute("UPDATE runs SET heartbeat = ? WHERE run_id = ? AND owner = ?", (time.time(), run_id, owner))

    def tool_call(self, run_id: str, call_id: str) -> ToolCallJournal | None:
        """The journal of a side-effecting tool call, if it was ever started."""
        rows = self._read(
            "SELECT finished, result, ok FROM tool_calls WHERE run_id = ? AND call_id = ?", (run_id, call_id)
        )
        if not rows:
            return None
        finished, result, ok = rows[0]
        return ToolCallJournal(finished is not None, result or "", bool(ok))

    def tool_started(self, run_id: str, call_id: str) -> None:
        with self._tx() as execute:
            execute(
                "INSERT INTO tool_calls (run_id, call_id, started) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (run_id, call_id, time.time()),
            )

    def tool_finished(self, run_id: str, call_id: str, result: str, ok: bool) -> None:
        with self._tx() as execute:
            execute(
                "UPDATE tool_calls SET finished = ?, result = ?, ok = ? WHERE run_id = ? AND call_id = ?",
                (time.time(), result, int(ok), run_id, call_id),
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
        self.add_events(run_id, [(time.time(), event)])

    def add_events(self, run_id: str, events: Sequence[tuple[float, Mapping[str, Any]]]) -> None:
        """Events, each with the time it happened, in one transaction, in order."""
        with self._tx() as execute:
            seq = self._next_seq(execute, "events", run_id)
            for n, (at, event) in enumerate(events):
                execute("INSERT INTO events VALUES (?, ?, ?, ?)", (run_id, seq + n, at, json.dumps(event)))

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
            "COALESCE(SUM(c.cost_usd), 0), COALESCE(SUM(c.input_tokens), 0), COALESCE(SUM(c.output_tokens), 0), "
            f"r.owner, r.heartbeat FROM runs r LEFT JOIN calls c ON c.run_id = r.run_id {where} "
            f"GROUP BY r.run_id, r.task, r.status, r.started, r.options, r.finished, r.agent, r.final, r.error, "
            f"r.owner, r.heartbeat {tail}"
        )
        return [_run_record(row) for row in self._read(query, params)]


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, task, status, started, options, finished, agent, final, error, cost, tokens_in, tokens_out = row[:12]
    owner, heartbeat = row[12:]
    if status == "running" and not lease_alive(owner, heartbeat):
        status = "interrupted"  # its process died (kill -9, a crash, a lost machine): resumable
    return RunRecord(
        run_id=run_id, task=task, status=status, started=started, options=json.loads(options), finished=finished,
        agent=agent, final=final, error=error, cost_usd=float(cost), input_tokens=int(tokens_in),
        output_tokens=int(tokens_out), owner=owner, heartbeat=heartbeat,
    )  # fmt: skip
