"""The run records beside LangGraph's checkpoints: what ran, what every model call cost, what happened.

One SQLite file (per user by default) holds three tables of ours next to the checkpointer's own:
- `runs`: one row per run (task, status, options to resume it with, totals, final answer or error);
- `calls`: one row per model call (agent, purpose, model, delegation path, tokens, cost, timing, and the
  request and response with secrets stripped, so a run can be replayed without the API);
- `events`: the progress events of the run, timestamped (the timeline of `orchestrate show`).
WAL mode with `synchronous=NORMAL`: a crash loses at most the last transactions, never consistency.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs

from orchestrator.errors import UserError

__all__ = ["CallRecord", "RunRecord", "RunStatus", "RunStore", "default_db_path"]

RunStatus = Literal["running", "completed", "failed", "budget_exceeded"]

_SCHEMA = """
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
    """Thread-safe access to the run tables of one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def start_run(self, run_id: str, task: str, options: Mapping[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO runs (run_id, task, status, started, options) VALUES (?, ?, 'running', ?, ?)",
                (run_id, task, time.time(), json.dumps(dict(options))),
            )

    def finish_run(self, run_id: str, status: RunStatus, *, final: str | None = None, error: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished = ?, final = ?, error = ? WHERE run_id = ?",
                (status, time.time(), final, error, run_id),
            )

    def mark_running(self, run_id: str, agent: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = 'running', error = NULL, agent = COALESCE(?, agent) WHERE run_id = ?",
                (agent, run_id),
            )

    def add_call(self, run_id: str, call: CallRecord) -> None:
        fields = asdict(call)
        columns = ", ".join(fields)
        with self._tx() as db:
            (seq,) = db.execute("SELECT COUNT(*) FROM calls WHERE run_id = ?", (run_id,)).fetchone()
            db.execute(
                f"INSERT INTO calls (run_id, seq, {columns}) VALUES (?, ?, {', '.join('?' * len(fields))})",
                (run_id, seq, *fields.values()),
            )

    def add_event(self, run_id: str, event: Mapping[str, Any]) -> None:
        with self._tx() as db:
            (seq,) = db.execute("SELECT COUNT(*) FROM events WHERE run_id = ?", (run_id,)).fetchone()
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (run_id, seq, time.time(), json.dumps(event)))

    def spent(self, run_id: str, delegation_prefix: str = "") -> float:
        """Dollars spent by the run, or by one delegation and everything below it."""
        query = "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE run_id = ? AND delegation LIKE ? ESCAPE '\\'"
        pattern = delegation_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._lock:
            (total,) = self._db.execute(query, (run_id, pattern)).fetchone()
        return float(total)

    def calls(self, run_id: str) -> list[CallRecord]:
        names = list(CallRecord.__dataclass_fields__)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(names)} FROM calls WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [CallRecord(**dict(zip(names, row, strict=True))) for row in rows]

    def events(self, run_id: str) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT at, event FROM events WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
        return [(at, json.loads(event)) for at, event in rows]

    def run(self, run_id: str) -> RunRecord:
        runs = self._runs("WHERE r.run_id = ?", "", (run_id,))
        if not runs:
            raise UserError(f"no run {run_id!r} in {self.path} (see `orchestrate runs`)")
        return runs[0]

    def runs(self, limit: int = 50) -> list[RunRecord]:
        return self._runs("", "ORDER BY r.started DESC LIMIT ?", (limit,))

    def _runs(self, where: str, tail: str, params: tuple[Any, ...]) -> list[RunRecord]:
        query = (
            "SELECT r.run_id, r.task, r.status, r.started, r.options, r.finished, r.agent, r.final, r.error, "
            "COALESCE(SUM(c.cost_usd), 0), COALESCE(SUM(c.input_tokens), 0), COALESCE(SUM(c.output_tokens), 0) "
            f"FROM runs r LEFT JOIN calls c ON c.run_id = r.run_id {where} GROUP BY r.run_id {tail}"
        )
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [_run_record(row) for row in rows]


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, task, status, started, options, finished, agent, final, error, cost, tokens_in, tokens_out = row
    return RunRecord(
        run_id=run_id, task=task, status=status, started=started, options=json.loads(options), finished=finished,
        agent=agent, final=final, error=error, cost_usd=cost, input_tokens=tokens_in, output_tokens=tokens_out,
    )  # fmt: skip
