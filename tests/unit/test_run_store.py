"""The run store's contract, once per backend: SQLite (a file) and PostgreSQL (a real throwaway server,
tests/support/postgres_server.py). The same assertions on both are what lets `--db` switch backends."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import UserError
from orchestrator.run_store import (
    LEASE_COLUMNS,
    CallRecord,
    EventLog,
    RunStore,
    ToolCallJournal,
    default_db_path,
    open_store,
    this_owner,
)
from orchestrator.run_store_pg import PostgresRunStore, redact_url

pytest_plugins = ["tests.support.postgres_server"]

Opener = Callable[[], RunStore]


def call(agent: str = "senior", cost: float = 0.25, delegation: str = "", text: str = "{}") -> CallRecord:
    return CallRecord(agent, "turn", "opus", delegation, 1_795_000_000.123456, 0.5, 10, 5, 2, 1, cost, "h", text, "{}")


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file, or a fresh database on the session's Postgres server."""
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def opened(target: str) -> Iterator[Opener]:
    """Opens stores on `target` (each its own connection, like separate processes); closes them after."""
    stores: list[RunStore] = []

    def open_one() -> RunStore:
        stores.append(open_store(target))
        return stores[-1]

    yield open_one
    for store in stores:
        store.close()


def test_a_run_is_recorded_finished_and_resumed(opened: Opener) -> None:
    store = opened()
    before = time.time()
    store.start_run("r1", "train a model", {"workspace": "/w", "max_cost": 2.5}, this_owner())
    store.start_run("r1", "ignored: a run starts once", {})
    record = store.run("r1")
    assert (record.task, record.status, record.options) == (
        "train a model",
        "running",
        {"workspace": "/w", "max_cost": 2.5},
    )
    assert before <= record.started <= time.time()  # full precision: a float4 column would round to minutes
    store.finish_run("r1", "budget_exceeded", error="cap reached")
    stopped = store.run("r1")
    assert (stopped.status, stopped.error, stopped.final) == ("budget_exceeded", "cap reached", None)
    assert stopped.finished is not None and stopped.finished >= stopped.started
    store.claim("r1", this_owner())
    assert (store.run("r1").status, store.run("r1").error, store.run("r1").owner) == ("running", None, this_owner())
    store.finish_run("r1", "completed", final="done")
    assert (store.run("r1").final, store.run("r1").owner) == ("done", None)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_whose_process_died_reads_as_interrupted(opened: Opener) -> None:
    store = opened()
    store.start_run("gone", "t", {}, f"{socket.gethostname()}:{_dead_pid()}")
    store.start_run("stale", "t", {}, "another-host:1")
    assert store.run("gone").status == "interrupted"
    assert store.run("stale").status == "running"  # another machine's fresh heartbeat: alive for now
    store.claim("gone", this_owner())  # a dead owner's lease is free to take
    assert store.run("gone").status == "running"


def test_a_live_lease_refuses_a_second_resume_unless_forced(opened: Opener) -> None:
    store = opened()
    store.start_run("r", "t", {}, "another-host:42")
    with pytest.raises(UserError, match=r"run r is running in another-host:42 \(heartbeat \d+ s ago\)"):
        store.claim("r", this_owner())
    store.claim("r", this_owner(), force=True)
    assert store.run("r").owner == this_owner()


def test_side_effecting_tool_calls_are_journaled(opened: Opener) -> None:
    store = opened()
    store.start_run("r", "t", {}, this_owner())
    assert store.tool_call("r", "c1") is None
    store.tool_started("r", "c1")
    assert store.tool_call("r", "c1") == ToolCallJournal(finished=False, result="", ok=False)
    store.tool_finished("r", "c1", "Exit code: 0", True)
    assert store.tool_call("r", "c1") == ToolCallJournal(finished=True, result="Exit code: 0", ok=True)


def test_calls_round_trip_in_order_with_totals(opened: Opener) -> None:
    store = opened()
    store.start_run("r", "t", {})
    calls = [call("senior", 0.5), call("junior", 0.25, "t1/", text='{"q": "ünïcode"}'), call("junior", 0.125, "t1/t2/")]
    for each in calls:
        store.add_call("r", each)
    assert store.calls("r") == calls
    assert store.calls("other") == []
    record = store.run("r")
    assert (record.cost_usd, record.input_tokens, record.output_tokens) == (0.875, 30, 15)
    assert isinstance(record.cost_usd, float) and isinstance(record.input_tokens, int)


def test_spent_by_run_and_by_delegation_prefix_with_wildcards_taken_literally(opened: Opener) -> None:
    store = opened()
    store.add_call("r", call(cost=1.0))
    store.add_call("r", call(cost=0.5, delegation="t_1/"))
    store.add_call("r", call(cost=0.25, delegation="t_1/t%2/"))
    store.add_call("r", call(cost=0.125, delegation="tX1/"))  # `_` in a prefix must not match any character
    store.add_call("other", call(cost=9.0))
    assert store.spent("r") == 1.875
    assert store.spent("r", "t_1/") == 0.75
    assert store.spent("r", "t_1/t%2/") == 0.25
    assert store.spent("r", "t%") == 0.0
    assert store.spent("nobody") == 0.0


def test_events_keep_their_order_and_json(opened: Opener) -> None:
    store = opened()
    events = [{"event": "route", "agent": "senior", "confidence": 0.9}, {"event": "turn", "round": 1, "nested": [1]}]
    for event in events:
        store.add_event("r", event)
    recorded = store.events("r")
    assert [event for _, event in recorded] == events
    assert recorded[0][0] <= recorded[1][0]


def test_a_burst_of_events_is_one_transaction_in_order_with_each_events_time(
    opened: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = opened()
    batches: list[int] = []
    write = store.add_events
    monkeypatch.setattr(
        store, "add_events", lambda run_id, events: (batches.append(len(events)), write(run_id, events))
    )

    async def burst() -> list[float]:
        log = EventLog(store, "r", delay=0.05)
        stamps = []
        for i in range(5):
            log.add({"event": "tool", "i": i})
            stamps.append(time.time())
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.2)  # the burst is written without waiting for the next event
        assert [e["i"] for _, e in store.events("r")] == list(range(5))
        log.add({"event": "tool", "i": 5})
        await log.aclose()  # what is left is written on close
        return stamps

    stamps = asyncio.run(burst())
    recorded = store.events("r")
    assert batches == [5, 1] and [e["i"] for _, e in recorded] == list(range(6))
    assert all(at <= stamp for (at, _), stamp in zip(recorded, stamps, strict=False))


def test_an_event_write_that_failed_is_raised_when_the_log_closes(
    opened: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = opened()

    def locked(run_id: str, events: object) -> None:
        raise UserError("the run database stays locked")

    monkeypatch.setattr(store, "add_events", locked)

    async def run() -> None:
        log = EventLog(store, "r", delay=0.0)
        log.add({"event": "turn"})
        await asyncio.sleep(0.05)
        await log.aclose()

    with pytest.raises(UserError, match="stays locked"):
        asyncio.run(run())


def test_runs_lists_newest_first_up_to_the_limit(opened: Opener) -> None:
    store = opened()
    for n in range(3):
        store.start_run(f"r{n}", f"task {n}", {})
        time.sleep(0.002)
    store.add_call("r1", call(cost=0.5))
    assert [r.run_id for r in store.runs()] == ["r2", "r1", "r0"]
    assert [r.run_id for r in store.runs(limit=2)] == ["r2", "r1"]
    assert {r.run_id: r.cost_usd for r in store.runs()} == {"r2": 0.0, "r1": 0.5, "r0": 0.0}


def test_an_unknown_run_is_a_user_error_naming_the_database(opened: Opener) -> None:
    store = opened()
    with pytest.raises(UserError, match=r"no run 'nope' in .*see `orchestrate runs`"):
        store.run("nope")


def test_records_outlive_the_connection_and_are_seen_by_another(opened: Opener) -> None:
    first = opened()
    first.start_run("r", "t", {"k": "v"})
    first.add_call("r", call())
    first.close()
    second = opened()
    assert second.run("r").options == {"k": "v"} and len(second.calls("r")) == 1


def test_two_writers_on_one_run_never_take_the_same_sequence_number(opened: Opener) -> None:
    stores = [opened(), opened()]  # two connections, as two processes resuming the same run would hold
    stores[0].start_run("r", "t", {})

    def write(store: RunStore, n: int) -> None:
        for i in range(15):
            store.add_call("r", call(agent=f"w{n}", cost=i))
            store.add_event("r", {"writer": n, "i": i})

    threads = [threading.Thread(target=write, args=(store, n)) for n, store in enumerate(stores * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stores[1].calls("r")) == 60 and len(stores[1].events("r")) == 60


def test_nul_bytes_in_text_do_not_break_a_run(opened: Opener) -> None:
    store = opened()
    store.start_run("r", "task\x00with nul", {})
    store.finish_run("r", "completed", final="a\x00b")
    assert store.run("r").final in ("a\x00b", "a\ufffdb")  # Postgres text cannot hold NUL


def test_a_file_of_an_older_version_opened_by_two_processes_at_once_gains_its_columns_once(tmp_path: Path) -> None:
    path = tmp_path / "older.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as older:  # the file as it was before the lease columns
        for name, _ in LEASE_COLUMNS:
            older.execute(f"ALTER TABLE runs DROP COLUMN {name}")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")  # the other process is adding them right now
    opened: list[RunStore | UserError] = []

    def open_it() -> None:
        try:
            opened.append(RunStore(path))
        except UserError as exc:
            opened.append(exc)

    opening = threading.Thread(target=open_it)
    opening.start()
    time.sleep(0.3)  # by then the store waits for the lock (one that read the columns first fails on ADD COLUMN)
    for name, kind in LEASE_COLUMNS:
        other.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
    other.execute("COMMIT")
    opening.join(timeout=30)
    [store] = opened
    assert isinstance(store, RunStore), store
    store.start_run("r1", "task", {}, owner=this_owner())
    assert store.run("r1").owner == this_owner()
    store.close()
    other.close()


def test_open_store_opens_sqlite_files_and_defaults_to_the_environment_then_the_user_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATE_DB", raising=False)
    with open_store(tmp_path / "a.sqlite") as given, open_store(None) as default:
        assert type(given) is RunStore and given.path == tmp_path / "a.sqlite" and given.where == given.target
        assert default.path == default_db_path()
    monkeypatch.setenv("ORCHESTRATE_DB", str(tmp_path / "env.sqlite"))
    with open_store(None) as from_env:
        assert from_env.path == tmp_path / "env.sqlite"


def test_open_store_opens_postgres_urls_given_or_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.setenv("ORCHESTRATE_DB", postgres_url)
    with open_store(None) as from_env, open_store(postgres_url.replace("postgresql://", "postgres://", 1)) as short:
        assert isinstance(from_env, PostgresRunStore) and from_env.target == postgres_url
        assert isinstance(short, PostgresRunStore)


def test_a_postgres_url_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the postgres extra were not installed
    with pytest.raises(UserError, match=r"pip install 'orchestrate\[postgres\]'"):
        open_store("postgresql://u@127.0.0.1:1/db")


def test_an_unreachable_server_is_a_user_error_without_the_password() -> None:
    with pytest.raises(UserError, match=r"cannot reach the database postgresql://u:\*\*\*@127.0.0.1:1/db") as caught:
        open_store("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2")
    assert "secret" not in str(caught.value)
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def _open_when_all_are_ready(path: Path, ready: Any, results: Any) -> None:
    ready.wait()
    try:
        RunStore(path).close()
        results.put("opened")
    except UserError as exc:
        results.put(str(exc))


def test_processes_that_open_one_new_database_at_the_same_moment_all_get_it(tmp_path: Path) -> None:
    """Two `batch` runs started together on a new --db: the switch to WAL must wait, not fail (before it
    waited, about one trial in three of six processes failed with "database is locked")."""
    context = multiprocessing.get_context("fork")
    for trial in range(30):
        ready, results = context.Barrier(6), context.Queue()
        processes = [context.Process(target=_open_when_all_are_ready, args=(tmp_path / f"{trial}.sqlite", ready,
                                                                           results)) for _ in range(6)]  # fmt: skip
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert outcomes == ["opened"] * 6, (trial, outcomes)
