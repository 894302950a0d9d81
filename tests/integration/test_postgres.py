"""`--db postgresql://…`: runs, checkpoints and resumes in a real PostgreSQL server (started by the tests
from the Debian package, tests/support/postgres_server.py), through the Orchestrator and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from orchestrator import Orchestrator, load_agents
from orchestrator.cli import app
from orchestrator.ledger import Budget
from orchestrator.run_store import default_db_path, this_owner
from orchestrator.run_store_pg import PostgresRunStore
from tests.support.scripted_model import CLAUDE_LIKE, Call, Reply, ScriptedModel, ai, tool_call

pytest_plugins = ["tests.support.postgres_server"]


def _delegating_model() -> ScriptedModel:
    """Senior delegates once, the junior answers, the review approves, the senior concludes: 4 calls."""
    brief = {"description": "d", "prompt": "Say hi", "subagent_type": "ml-engineer"}
    approve = ai("", tool_call("Verdict", {"decision": "approve", "feedback": "ok"}))
    return ScriptedModel([
        Reply(ai("", tool_call("Task", brief)), when=lambda c: c.agent == "senior-ml-engineer" and not c.tool_results),
        Reply(ai("hi"), when=lambda c: c.agent == "ml-engineer"),
        Reply(approve, when=lambda c: c.purpose == "review"),
        Reply(ai("Done."), when=lambda c: c.agent == "senior-ml-engineer" and bool(c.tool_results)),
    ])  # fmt: skip


def _asked(task: str) -> Callable[[Call], bool]:
    return lambda call: call.first_human == task


def _checkpoints(url: str, run_id: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = %s", (run_id,)).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def orchestrators(tmp_path: Path, postgres_url: str) -> Iterator[Callable[[ScriptedModel], Orchestrator]]:
    """Builds orchestrators on the test's database, each with its own connections (as on separate machines),
    and closes their run stores after the test."""
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    built: list[Orchestrator] = []

    def build(model: ScriptedModel) -> Orchestrator:
        built.append(Orchestrator(agents, provider=CLAUDE_LIKE(model), workspace=tmp_path, db=postgres_url))
        return built[-1]

    yield build
    for orchestrator in built:
        orchestrator.store.close()


async def test_a_run_stopped_at_its_cap_resumes_from_postgres_on_another_orchestrator(
    orchestrators: Callable[[ScriptedModel], Orchestrator], postgres_url: str
) -> None:
    model = _delegating_model()
    first_machine = orchestrators(model)
    assert isinstance(first_machine.store, PostgresRunStore)
    first = await first_machine.arun("greet", agent="senior-ml-engineer", budget=Budget(max_cost=1e-9))
    assert first.status == "budget_exceeded" and len(model.calls) == 1
    assert _checkpoints(postgres_url, first.run_id) > 0  # the state to resume from is in Postgres

    second_machine = orchestrators(model)  # knows the run only through the database
    assert second_machine.store.run(first.run_id).status == "budget_exceeded"
    resumed = [item async for item in second_machine.aresume(first.run_id, budget=Budget(max_cost=10.0))][-1]
    model.assert_complete()  # nothing was asked twice: the first call's result came back from the checkpoint
    assert resumed.status == "completed" and resumed.final == "Done."  # type: ignore[union-attr]
    assert resumed.usage["calls"] == 4  # type: ignore[union-attr]
    record = second_machine.store.run(first.run_id)
    assert record.status == "completed" and record.final == "Done." and record.cost_usd > 0
    assert second_machine.store.events(first.run_id)[0][1]["event"] == "route"
    assert not default_db_path().exists()  # no SQLite file on the side


async def test_concurrent_runs_on_a_fresh_database_set_up_the_checkpointer_once(
    orchestrators: Callable[[ScriptedModel], Orchestrator], postgres_url: str
) -> None:
    tasks = ["Write a unit test for load_csv", "Fix the typo in train.py", "Add type hints to utils.py"]
    model = ScriptedModel([Reply(ai(f"did: {t}"), when=_asked(t)) for t in tasks])
    results = await orchestrators(model).abatch(tasks, max_concurrency=3)  # three checkpointer setups at once
    model.assert_complete()
    assert [r.final for r in results] == [f"did: {t}" for t in tasks]
    assert all(_checkpoints(postgres_url, r.run_id) > 0 for r in results)


def test_the_cli_reads_runs_from_a_postgres_url_given_by_flag_or_environment(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PostgresRunStore(postgres_url)
    store.start_run("pg-run", "design a RAG pipeline", {"workspace": str(tmp_path)})
    store.close()
    monkeypatch.setenv("HOME", str(tmp_path))
    cli = CliRunner()
    by_flag = cli.invoke(app, ["runs", "--json", "--db", postgres_url])
    assert by_flag.exit_code == 0, by_flag.output
    assert [r["run_id"] for r in json.loads(by_flag.stdout)] == ["pg-run"]
    monkeypatch.setenv("ORCHESTRATE_DB", postgres_url)
    by_env = cli.invoke(app, ["runs", "--json"])
    assert [r["run_id"] for r in json.loads(by_env.stdout)] == ["pg-run"]
    missing = cli.invoke(app, ["resume", "nope"])
    assert missing.exit_code == 2 and "no run 'nope' in postgresql://postgres@127.0.0.1" in missing.stderr
    down = cli.invoke(app, ["runs", "--db", "postgresql://u:pw@127.0.0.1:1/db?connect_timeout=2"])
    assert down.exit_code == 2 and "cannot reach the database postgresql://u:***@127.0.0.1:1/db" in down.stderr


def test_a_dropped_connection_fails_one_call_and_is_reopened_for_the_next(postgres_url: str) -> None:
    with PostgresRunStore(postgres_url) as store:
        store.start_run("r", "t", {}, this_owner())
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # as a server restart would
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                          "AND datname = current_database()")  # fmt: skip
        with pytest.raises(psycopg.OperationalError):
            store.run("r")
        assert store.run("r").status == "running"
