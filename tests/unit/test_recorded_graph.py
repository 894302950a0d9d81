"""The graph LangGraph Server runs, in process: it records its own runs honestly, asks through typed
interrupts, reads its resume values strictly, and remembers "always" for the thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from orchestrator import FixedProvider, Orchestrator, load_agents
from orchestrator.errors import UserError
from orchestrator.graphs.builder import build_graph
from orchestrator.graphs.context import RunContext
from orchestrator.ledger import BudgetExceeded, Ledger
from orchestrator.pricing import load_prices
from orchestrator.recorded import WAITING, recorded_graph
from orchestrator.run_events import granted_rules
from orchestrator.run_store import RunStore
from tests.support.graph_script import JUNIOR, FakeAPIError, turn
from tests.support.scripted_model import CLAUDE_LIKE, Reply, ScriptedModel, ai, tool_call

THREAD = {"configurable": {"thread_id": "thread-1"}}
FORCED = {"agent": JUNIOR, "confidence": 1.0, "reason": "test", "method": "forced"}


def _served(tmp_path: Path, script: list[Reply]) -> tuple[Any, ScriptedModel, RunStore]:
    model, store = ScriptedModel(script), RunStore(tmp_path / "runs.sqlite")
    agents = load_agents(cwd=tmp_path, home=tmp_path).agents
    inner = build_graph(
        agents, provider=CLAUDE_LIKE(model, errors=(FakeAPIError,)), ledger=Ledger(store, load_prices()),
        workspace_root=tmp_path / "root",
    ).compile()  # fmt: skip
    return recorded_graph(inner, store, "test-owner").compile(checkpointer=InMemorySaver()), model, store


def _write_then_edit() -> list[Reply]:
    return [
        Reply(ai("", tool_call("Write", {"file_path": "a.txt", "content": "a"})), when=turn(JUNIOR)),
        Reply(
            ai("", tool_call("Edit", {"file_path": "a.txt", "old_string": "a", "new_string": "b"})),
            when=turn(JUNIOR, after="Created"),
        ),
        Reply(ai("Done."), when=turn(JUNIOR, after="Edited")),
    ]


async def test_an_ask_waits_recorded_as_interrupted_and_always_holds_for_the_thread(tmp_path: Path) -> None:
    graph, model, store = _served(tmp_path, _write_then_edit())
    context = RunContext(workspace_root=str(tmp_path / "ws"))

    await graph.ainvoke({"task": "write a", "route": FORCED}, THREAD, context=context)
    [ask] = (await graph.aget_state(THREAD)).interrupts
    assert ask.value["tool"] == "Write" and ask.value["rule"] == "Edit(./a.txt)"
    assert (store.run("thread-1").status, store.run("thread-1").error) == ("interrupted", WAITING)

    await graph.ainvoke(Command(resume={ask.id: "yes"}), THREAD, context=context)
    [again] = (await graph.aget_state(THREAD)).interrupts  # asked again, saying what to send
    assert "'yes' is not an answer" in again.value["error"] and not (tmp_path / "ws/thread-1/a.txt").exists()

    await graph.ainvoke(Command(resume={again.id: "always"}), THREAD, context=context)

    state = await graph.aget_state(THREAD)
    assert state.interrupts == () and state.values["messages"][-1].text == "Done."  # the Edit did not ask
    assert (tmp_path / "ws/thread-1/a.txt").read_text() == "b"
    assert granted_rules(store.events("thread-1")) == {"Edit(./a.txt)"}
    assert store.run("thread-1").status == "completed" and store.run("thread-1").final == "Done."
    model.assert_complete()


async def test_chat_input_opens_the_conversation_with_its_last_human_message(tmp_path: Path) -> None:
    graph, model, store = _served(tmp_path, [Reply(ai("Hi."), when=turn(JUNIOR))])
    chat = {"messages": [{"role": "user", "content": "say hi"}], "route": FORCED}

    out = await graph.ainvoke(chat, THREAD, context=RunContext(permission_mode="acceptEdits"))

    assert [m.text for m in out["messages"]] == ["say hi", "Hi."] and out["task"] == "say hi"
    assert store.run("thread-1").task == "say hi"
    assert (tmp_path / "root" / "thread-1").is_dir()  # the graph's root: no workspace_root in the context
    model.assert_complete()


async def test_a_failed_model_call_is_recorded_as_failed(tmp_path: Path) -> None:
    graph, _, store = _served(tmp_path, [Reply(FakeAPIError("upstream 500"), when=turn(JUNIOR))])
    with pytest.raises(Exception, match="upstream 500"):
        await graph.ainvoke({"task": "anything", "route": FORCED}, THREAD)
    record = store.run("thread-1")
    assert record.status == "failed" and "upstream 500" in (record.error or "")


async def test_the_cli_refuses_to_resume_a_server_thread(tmp_path: Path) -> None:
    graph, _, store = _served(tmp_path, [Reply(FakeAPIError("upstream 500"), when=turn(JUNIOR))])
    with pytest.raises(Exception, match="upstream 500"):
        await graph.ainvoke({"task": "anything", "route": FORCED}, THREAD)
    model = ScriptedModel([])
    orchestrator = Orchestrator(load_agents(cwd=tmp_path, home=tmp_path), provider=FixedProvider(model),
                                db=tmp_path / "runs.sqlite")  # fmt: skip
    with orchestrator, pytest.raises(UserError, match="thread-1 is a LangGraph Server thread: resume it through"):
        await orchestrator.aresume("thread-1").__anext__()
    assert store.run("thread-1").status == "failed"


async def test_the_contexts_budget_stops_the_run_recorded_as_budget_exceeded(tmp_path: Path) -> None:
    graph, _, store = _served(tmp_path, _write_then_edit()[:1])
    context = RunContext(permission_mode="acceptEdits", max_cost=0.0001)  # the first call already costs more
    with pytest.raises(BudgetExceeded, match=r"thread-1 spent \$0\.\d+ of its \$0\.0001 cap"):
        await graph.ainvoke({"task": "write a", "route": FORCED}, THREAD, context=context)
    assert store.run("thread-1").status == "budget_exceeded" and len(store.calls("thread-1")) == 1


async def test_a_cost_cap_on_an_unpriced_model_is_warned_about_once(tmp_path: Path) -> None:
    model, store = ScriptedModel(_write_then_edit()), RunStore(tmp_path / "runs.sqlite")
    agents = load_agents(cwd=tmp_path, home=tmp_path).agents
    inner = build_graph(agents, provider=FixedProvider(model), ledger=Ledger(store, load_prices())).compile()
    graph = recorded_graph(inner, store, "test-owner").compile(checkpointer=InMemorySaver())
    context = RunContext(permission_mode="acceptEdits", workspace_root=str(tmp_path / "ws"), max_cost=0.0001)
    with structlog.testing.capture_logs() as logs:
        await graph.ainvoke({"task": "write a", "route": FORCED}, THREAD, context=context)
    assert store.run("thread-1").status == "completed"  # $0 calls never reach the cap...
    assert [e["model"] for e in logs if e["event"] == "unpriced_model"] == ["sonnet"]  # ...and the user is told
