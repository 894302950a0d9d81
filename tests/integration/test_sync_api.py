"""The synchronous API in one process, as a script would use it: batch(), then run() three times, on the
real SDKs of both API providers against their loopback servers; and the sync graph API refused clearly."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import (
    AnthropicProvider,
    ModelProvider,
    OpenAIProvider,
    Orchestrator,
    PermissionPolicy,
    Settings,
    UserError,
    build_graph,
    load_agents,
)
from orchestrator.graphs.route import SYNC_REFUSED
from tests.support.claude_team import FINAL, team_responder
from tests.support.messages_server import MessagesServer
from tests.support.openai_server import ChatServer
from tests.support.openai_team import openai_team

TASK = "design a RAG pipeline"


def _anthropic(monkeypatch: pytest.MonkeyPatch) -> tuple[AbstractContextManager[object], Callable[[], ModelProvider]]:
    server = MessagesServer(team_responder(junior_delay=0.0))

    def provider() -> ModelProvider:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-sync-test")
        return AnthropicProvider(Settings())

    return server, provider


def _openai(monkeypatch: pytest.MonkeyPatch) -> tuple[AbstractContextManager[object], Callable[[], ModelProvider]]:
    server = ChatServer(openai_team())

    def provider() -> ModelProvider:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-sync-test")
        return OpenAIProvider()

    return server, provider


@pytest.fixture(params=[_anthropic, _openai], ids=["anthropic", "openai"])
def provider(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelProvider]:
    server, make = request.param(monkeypatch)
    with server:
        yield make()


def test_batch_then_run_three_times_in_one_process(provider: ModelProvider, tmp_path: Path) -> None:
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    with Orchestrator(agents, provider=provider, workspace=tmp_path, permissions=PermissionPolicy(mode="acceptEdits"),
                      db=tmp_path / "runs.sqlite") as orchestrator:  # fmt: skip
        results = orchestrator.batch([TASK, TASK], max_concurrency=2)
        for _ in range(3):  # each from a workspace without the files (the juniors create them, never Read them)
            shutil.rmtree(tmp_path / "rag")
            results.append(orchestrator.run(TASK))
    assert [(r.status, r.final) for r in results] == [("completed", FINAL)] * 5


def test_the_sync_graph_api_is_refused_saying_what_to_use(tmp_path: Path) -> None:
    graph = build_graph(load_agents(cwd=tmp_path, home=tmp_path).agents, provider=OpenAIProvider()).compile(
        checkpointer=InMemorySaver()
    )
    with pytest.raises(UserError, match=r"^the orchestration graph is async") as refused:
        graph.invoke({"task": TASK}, {"configurable": {"thread_id": "t"}})
    assert str(refused.value) == SYNC_REFUSED and "ainvoke" in SYNC_REFUSED
