"""Prices, the ledger's arithmetic, and budgets: a run stops cleanly at its cap and resumes past it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Orchestrator, load_agents
from orchestrator.errors import UserError
from orchestrator.ledger import Budget, BudgetExceeded, Ledger, delegation_cost, summarize
from orchestrator.pricing import FREE, Price, PriceTable, TokenCounts, load_prices
from orchestrator.run_store import CallRecord, RunStore
from tests.support.scripted_model import CLAUDE_LIKE, Reply, ScriptedModel, ai, tool_call


def call(agent: str, model: str, cost: float, delegation: str = "") -> CallRecord:
    return CallRecord(agent, "turn", model, delegation, 0.0, 0.1, 10, 5, 2, 1, cost, "h", "{}", "{}")


def test_bundled_prices_by_id_family_and_local() -> None:
    table = load_prices()
    assert table.as_of == "2026-11-01"
    assert table.price("claude-opus-4-6") == Price(5.0, 25.0, 6.25, 0.5)
    assert table.price("claude-sonnet-4-5-20250929") == Price(3.0, 15.0, 3.75, 0.3)  # by family
    assert table.price("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf") == FREE


@pytest.mark.parametrize("model", ["opus", "sonnet", "gpt-4o", "qwen2.5-coder:32b", "served-opus-clone"])
def test_claude_prices_are_never_used_for_another_model(model: str) -> None:
    table = load_prices()
    assert table.price(model) is None and not table.priced(model)
    assert table.cost(model, TokenCounts(input=1_000_000, output=1_000_000)) == 0.0


def test_a_summary_names_the_unpriced_models() -> None:
    calls = [call("a", "claude-opus-4-6", 1.0), call("b", "gpt-4o", 0.0), call("b", "gpt-4o", 0.0)]
    assert summarize(calls, load_prices())["unpriced"] == ["gpt-4o"]


def test_cost_counts_each_kind_of_token_at_its_price() -> None:
    table = PriceTable("t", {"m": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3)}, {})
    tokens = TokenCounts(input=1_000, output=2_000, cache_write=10_000, cache_read=100_000)
    assert table.cost("m", tokens) == pytest.approx((3_000 + 30_000 + 37_500 + 30_000) / 1_000_000)


def test_price_override_file_and_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "prices.json"
    override.write_text(
        '{"as_of": "2030-01-01", "models": {"x": {"input": 1, "output": 2, "cache_write": 0, "cache_read": 0}}}'
    )
    monkeypatch.setenv("ORCHESTRATE_PRICES", str(override))
    assert load_prices().price("x") == Price(1, 2, 0, 0)
    override.write_text('{"models": {"x": {"input": 1}}}')
    with pytest.raises(UserError, match=f"{override}: each price needs"):
        load_prices()


def test_summary_rolls_up_per_agent_model_and_delegation() -> None:
    calls = [call("senior", "opus", 0.5), call("junior", "sonnet", 0.2, "t1/"), call("junior", "sonnet", 0.1, "t1/t2/")]
    summary = summarize(calls)
    assert summary["cost_usd"] == pytest.approx(0.8) and summary["calls"] == 3
    assert summary["by_agent"]["junior"]["cost_usd"] == pytest.approx(0.3)  # type: ignore[index]
    assert summary["by_model"]["opus"]["input_tokens"] == 10  # type: ignore[index]
    assert delegation_cost(calls, "t1") == pytest.approx(0.3) and delegation_cost(calls, "t2") == pytest.approx(0.1)


def test_budget_checks_the_run_and_every_enclosing_delegation(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    store.start_run("r", "task", {})
    store.add_call("r", call("senior", "opus", 0.5))
    store.add_call("r", call("junior", "sonnet", 0.3, "t1/"))
    ledger, budget = Ledger(store, load_prices()), Budget(max_cost=1.0, max_delegation_cost=0.3)
    ledger.check("r", "", budget)  # the run is under its cap
    with pytest.raises(BudgetExceeded, match=r"delegation t1 spent \$0.3000 of its \$0.3000 cap"):
        ledger.check("r", "t1/t9/", budget)
    store.add_call("r", call("senior", "opus", 0.2))
    with pytest.raises(BudgetExceeded, match="--max-cost"):
        ledger.check("r", "", budget)


async def test_a_run_stops_at_its_cap_and_resumes_with_a_higher_one(tmp_path: Path) -> None:
    brief = {"description": "d", "prompt": "Say hi", "subagent_type": "ml-engineer"}
    approve = ai("", tool_call("Verdict", {"decision": "approve", "feedback": "ok"}))
    model = ScriptedModel([
        Reply(ai("", tool_call("Task", brief)), when=lambda c: c.agent == "senior-ml-engineer" and not c.tool_results),
        Reply(ai("hi"), when=lambda c: c.agent == "ml-engineer"),
        Reply(approve, when=lambda c: c.purpose == "review"),
        Reply(ai("Done."), when=lambda c: c.agent == "senior-ml-engineer" and bool(c.tool_results)),
    ])  # fmt: skip
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    orchestrator = Orchestrator(agents, provider=CLAUDE_LIKE(model), workspace=tmp_path, db=tmp_path / "r.sqlite")
    first = await orchestrator.arun("greet", agent="senior-ml-engineer", budget=Budget(max_cost=1e-9))
    assert first.status == "budget_exceeded" and "--max-cost" in (first.error or "")
    assert len(model.calls) == 1  # the call that crossed the cap ran; the next one did not
    assert orchestrator.store.run(first.run_id).status == "budget_exceeded"
    resumed = [item async for item in orchestrator.aresume(first.run_id, budget=Budget(max_cost=10.0))][-1]
    model.assert_complete()  # nothing was asked twice
    assert resumed.status == "completed" and resumed.final == "Done."  # type: ignore[union-attr]
    assert resumed.usage["calls"] == 4  # type: ignore[union-attr]


async def test_batch_runs_each_task_as_its_own_recorded_run(tmp_path: Path) -> None:
    tasks = ["Write a unit test for load_csv", "Fix the typo in train.py", "Add type hints to utils.py"]
    model = ScriptedModel([Reply(ai(f"did: {t}"), when=lambda c, t=t: c.first_human == t) for t in tasks])
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    orchestrator = Orchestrator(agents, provider=CLAUDE_LIKE(model), workspace=tmp_path, db=tmp_path / "b.sqlite")
    results = await orchestrator.abatch(tasks, max_concurrency=2)
    model.assert_complete()
    assert [r.final for r in results] == [f"did: {t}" for t in tasks]
    assert len({r.run_id for r in results}) == 3
    assert sorted(r.task for r in orchestrator.store.runs()) == sorted(tasks)
    with pytest.raises(UserError, match="max_concurrency must be at least 1"):
        await orchestrator.abatch(tasks, max_concurrency=0)
