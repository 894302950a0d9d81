"""The Claude path for real: the anthropic SDK (through ChatAnthropic) against a loopback Messages API.

The senior delegates two subtasks in one turn, the juniors write files in a temp workspace, the senior's
reviews approve, the final answer returns. The server proves the two junior conversations overlapped,
that a 529 was retried by the SDK (the one retry layer), and that JSON and SSE both work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import AnthropicProvider, Orchestrator, Settings, load_agents
from orchestrator.tools.permissions import PermissionPolicy
from tests.support.claude_team import FINAL, LONG_TASK, SUBTASKS, team_responder
from tests.support.messages_server import Fault, MessagesServer, RecordedRequest, faults_then, overlapping


@pytest.fixture
def server() -> Iterator[MessagesServer]:
    with MessagesServer(faults_then(team_responder(), [Fault(529, retry_after_ms=10)])) as running:
        yield running
    assert running.errors == []


def _junior_first_turns(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [
        r
        for r in requests
        if r.status == 200
        and "turns clear briefs" in json.dumps(r.body.get("system"))
        and not any(
            b.get("type") == "tool_result"
            for m in r.body["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
        )
    ]


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
async def test_senior_delegates_two_parallel_subtasks_over_the_messages_api(
    server: MessagesServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streaming: bool
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret")
    provider = AnthropicProvider(Settings(), streaming=streaming)
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    permissions = PermissionPolicy(mode="acceptEdits")
    orchestrator = Orchestrator(agents, provider=provider, workspace=tmp_path, permissions=permissions)

    result = await orchestrator.arun("design a RAG pipeline", agent="senior-ml-engineer")

    assert result.status == "completed" and result.final == FINAL
    for path, content in SUBTASKS.items():
        assert (tmp_path / path).read_text() == content
    assert sorted((d["status"], d["rounds"]) for d in result.delegations) == [("approved", 1)] * 2
    requests = server.requests
    assert [r.status for r in requests[:2]] == [529, 200]  # retried by the SDK, not by the graph
    assert all(r.stream is streaming for r in requests)
    first, second = _junior_first_turns(requests)
    assert overlapping(first, second)
    assert "sk-ant-test-secret" not in repr(requests)
    usage = result.usage
    assert usage["input_tokens"] > 0  # these prompts are under the cache minimum: see test_prompt_cache.py
    assert set(usage["by_model"]) == {"claude-opus-4-6", "claude-sonnet-4-6"}
    assert set(usage["by_agent"]) == {"senior-ml-engineer", "ml-engineer"}
    assert usage["cost_usd"] == pytest.approx(sum(m["cost_usd"] for m in usage["by_model"].values()))
    assert all(d["cost_usd"] > 0 for d in result.delegations)


def test_cli_run_json_against_the_server(server: MessagesServer, tmp_path: Path) -> None:
    env = {**os.environ, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "x", "HOME": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "run",
            "--json",
            "--permission-mode",
            "acceptEdits",
            "--workspace",
            str(tmp_path),
            LONG_TASK,  # the senior's prompt is over Opus's cache minimum: its second call reads the cache
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "completed" and payload["final"] == FINAL
    assert payload["route"]["agent"] == "senior-ml-engineer" and 0 < payload["route"]["confidence"] <= 1
    assert [(d["agent"], d["rounds"], d["verdicts"][0]["decision"]) for d in payload["delegations"]] == [
        ("ml-engineer", 1, "approve")
    ] * 2
    assert payload["usage"]["input_tokens"] > 0 and payload["usage"]["output_tokens"] > 0
    assert payload["usage"]["cost_usd"] > 0 and set(payload["usage"]["by_agent"]) == {
        "senior-ml-engineer",
        "ml-engineer",
    }
    assert "provider: anthropic (ANTHROPIC_API_KEY is set)" in done.stderr
    assert "delegating to ml-engineer" in done.stderr
    # one definition of tokens: `run --json`, its closing line and `show` count the same, cache reads apart
    usage, names = payload["usage"], ("input", "output", "cache_read", "cache_write")
    assert usage["cache_read_tokens"] > 0 and usage["cache_write_tokens"] > 0
    shown = subprocess.run([sys.executable, "-m", "orchestrator", "show", payload["run_id"], "--format", "json"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    totals = json.loads(shown.stdout)["totals"]
    assert {n: totals[f"{n}_tokens"] for n in names} == {n: usage[f"{n}_tokens"] for n in names}
    line = f"{usage['input_tokens']:,} input + {usage['cache_read_tokens']:,} cache read + "
    assert (
        line + f"{usage['cache_write_tokens']:,} cache write / {usage['output_tokens']:,} output tokens" in done.stderr
    )
    tree = subprocess.run([sys.executable, "-m", "orchestrator", "show", payload["run_id"]], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert f"{usage['input_tokens']:,} input + {usage['cache_read_tokens']:,} cache read" in tree.stdout
