"""Any OpenAI-compatible server runs the team: langchain-openai's ChatOpenAI against a loopback Chat
Completions server that honours, ignores or rejects a forced tool choice, as real servers do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import OpenAIProvider, Orchestrator, PermissionPolicy, RunResult, load_agents
from tests.support.claude_team import FINAL, SUBTASKS
from tests.support.openai_server import ChatServer, ToolChoice
from tests.support.openai_team import openai_team

SENIOR = "senior-ml-engineer"
ENV = {"OPENAI_API_KEY": "sk-openai-test", "ORCHESTRATE_MODEL_OPUS": "big", "ORCHESTRATE_MODEL_SONNET": "small"}


@pytest.fixture(autouse=True)
def openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


def _reviews(server: ChatServer) -> list[dict[str, Any]]:
    return [r for r in server.requests if [t["function"]["name"] for t in r.get("tools", [])] == ["Verdict"]]


async def _run(server: ChatServer, workspace: Path, monkeypatch: pytest.MonkeyPatch, streaming: bool) -> RunResult:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    agents = load_agents(cwd=workspace, home=workspace)
    orchestrator = Orchestrator(
        agents, provider=OpenAIProvider(streaming=streaming), workspace=workspace,
        permissions=PermissionPolicy(mode="acceptEdits"), db=workspace / "runs.sqlite",
    )  # fmt: skip
    async with orchestrator:
        return await orchestrator.arun("design a RAG pipeline", agent=SENIOR)


@pytest.mark.parametrize(
    ("behaviour", "streaming"), [("honour", False), ("honour", True), ("ignore", False), ("reject", False)]
)
async def test_the_team_completes_whatever_the_server_does_with_a_forced_tool_choice(
    behaviour: ToolChoice, streaming: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ChatServer(openai_team(), tool_choice=behaviour) as server:
        result = await _run(server, tmp_path, monkeypatch, streaming)
    assert server.errors == []
    assert result.status == "completed" and result.final == FINAL and result.issues == ()
    assert [d["status"] for d in result.delegations] == ["approved", "approved"]
    assert {p: (tmp_path / p).read_text() for p in SUBTASKS} == SUBTASKS
    assert {r["model"] for r in server.requests} == {"big", "small"}  # the aliases, mapped to the server's names
    # recorded and priced as the models that answered, which no price table prices: $0, said so
    assert set(result.usage["by_model"]) == {"served-big", "served-small"}
    assert result.usage["unpriced"] == ["served-big", "served-small"] and result.usage["cost_usd"] == 0.0
    if behaviour == "reject":  # each of the two reviews: the named choice refused, then "required"
        choices = sorted(json.dumps(r.get("tool_choice")) for r in _reviews(server))
        assert choices == [
            '"required"',
            '"required"',
            *[json.dumps({"type": "function", "function": {"name": "Verdict"}})] * 2,
        ]


async def test_a_verdict_that_cannot_be_read_is_an_issue_not_a_silent_revise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ChatServer(openai_team(verdict_text="Looks good to me!"), tool_choice="ignore") as server:
        result = await _run(server, tmp_path, monkeypatch, False)
    assert result.status == "incomplete"
    assert [d["status"] for d in result.delegations] == ["unreadable", "unreadable"]
    assert [i["kind"] for i in result.issues] == ["unreadable", "unreadable"]
    assert len(_reviews(server)) == 2  # one review each: an unreadable verdict is not sent back for more rounds


def test_orchestrate_run_with_provider_openai(tmp_path: Path) -> None:
    with ChatServer(openai_team()) as server:
        env = {**os.environ, **ENV, "OPENAI_BASE_URL": f"{server.url}/v1", "ORCHESTRATE_DB": str(tmp_path / "r.db")}
        ran = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", "--provider", "openai", "--permission-mode", "acceptEdits",
             "--workspace", str(tmp_path), "--json", "design a RAG pipeline"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert out["status"] == "completed" and out["final"] == FINAL
    assert f"provider: openai ({server.url}/v1)" in ran.stderr
