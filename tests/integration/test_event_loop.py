"""Nothing in a run blocks the event loop: the server's graph, every tool, the review and the run records,
under the same blocking-call detector LangGraph Server runs (`langgraph dev` without --allow-blocking)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver
from langgraph_runtime_inmem.queue import _enable_blockbuster  # the server's own configuration of the detector

from orchestrator import FixedProvider, load_agents
from orchestrator.graphs.builder import build_graph
from orchestrator.graphs.context import RunContext
from orchestrator.ledger import Ledger
from orchestrator.pricing import load_prices
from orchestrator.recorded import recorded_graph
from orchestrator.run_store import RunStore
from tests.support.graph_script import JUNIOR, SENIOR, task, turn, verdict
from tests.support.scripted_model import Reply, ScriptedModel, ai, tool_call


@contextmanager
def no_blocking() -> Iterator[None]:
    """Any blocking call on the event loop raises BlockingError, as on the server."""
    detector = _enable_blockbuster()
    try:
        yield
    finally:
        detector.deactivate()


TOOLS = [
    tool_call("Glob", {"pattern": "**/*.md"}),
    tool_call("Grep", {"pattern": "alpha"}),
    tool_call("Read", {"file_path": "notes.md"}),
    tool_call("Edit", {"file_path": "notes.md", "old_string": "alpha", "new_string": "beta"}),
    tool_call("Write", {"file_path": "out/plan.md", "content": "# Plan\n"}),
    tool_call("Bash", {"command": "ls out"}),
]


async def test_a_delegated_run_with_every_file_tool_never_blocks_the_loop(tmp_path: Path) -> None:
    workspace = tmp_path / "ws" / "thread-1"
    workspace.mkdir(parents=True)
    (workspace / "notes.md").write_text("alpha\n")
    brief = task("use the tools", "Edit notes.md and create out/plan.md")
    script = [
        Reply(ai("", tool_call("Task", brief)), when=turn(SENIOR)),
        Reply(ai("", *TOOLS), when=turn(JUNIOR)),
        Reply(ai("Edited notes.md and wrote out/plan.md."), when=turn(JUNIOR, after="Exit code")),
        verdict("approve", brief="Edit notes.md"),
        Reply(ai("All done."), when=turn(SENIOR, after="approved")),
    ]
    model, store = ScriptedModel(script), RunStore(tmp_path / "runs.sqlite")
    inner = build_graph(
        load_agents(cwd=tmp_path, home=tmp_path).agents, provider=FixedProvider(model),
        ledger=Ledger(store, load_prices()), workspace_root=tmp_path / "root",
    ).compile()  # fmt: skip
    graph = recorded_graph(inner, store, "test").compile(checkpointer=InMemorySaver())
    context = RunContext(workspace_root=str(tmp_path / "ws"), permission_mode="bypassPermissions")

    with no_blocking():
        out = await graph.ainvoke({"task": "plan it"}, {"configurable": {"thread_id": "thread-1"}}, context=context)

    assert out["messages"][-1].text == "All done."
    assert (workspace / "notes.md").read_text() == "beta\n" and (workspace / "out/plan.md").is_file()
    assert [d["status"] for d in out["delegations"]] == ["approved"] and store.run("thread-1").status == "completed"
    model.assert_complete()
