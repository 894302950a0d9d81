"""Prompt caching on the Claude path, through the anthropic SDK, against a loopback Messages API that plays
Anthropic's cache rules (tests/support/prompt_cache.py: prefixes up to breakpoints, a 20-block lookback,
each model's minimum).

Once an agent's prompt is over its model's minimum, each later call of that agent reads everything its
previous call sent from the cache: the automatic breakpoint on the last block moves with the conversation.
Under the minimum nothing is cached, and the usage says so rather than claiming a saving.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from orchestrator import AnthropicProvider, Orchestrator, Settings, load_agents
from orchestrator.tools.permissions import PermissionPolicy
from tests.support.claude_team import LONG_SPEC as SPEC
from tests.support.claude_team import LONG_TASK as TASK
from tests.support.messages_server import Message, MessagesServer, Reply, text, tool_use
from tests.support.prompt_cache import minimum_tokens


def _user_texts(body: dict[str, Any]) -> str:
    return json.dumps(body["messages"])


def responder(body: dict[str, Any]) -> Reply:
    system = json.dumps(body.get("system"))
    results = "tool_result" in _user_texts(body)
    if "senior machine learning engineer" in system:
        if results:
            return Message([text("Ingestion designed; chunker in rag/chunk.py.")])
        brief = f"Create rag/chunk.py with chunk(text, size) honouring this spec:\n{SPEC[:3800]}"
        return Message([tool_use("Task", {"description": "write the chunker", "subagent_type": "ml-engineer",
                                          "prompt": brief})])  # fmt: skip
    if (body.get("tool_choice") or {}).get("name") == "Verdict":
        return Message([tool_use("Verdict", {"feedback": "Meets the brief.", "decision": "approve"})])
    if '"Write"' in _user_texts(body):  # the junior's third call: its Write came back
        return Message([text("Wrote rag/chunk.py.")])
    if results:  # its second: the Read came back
        code = "def chunk(t, n):\n    return [t]\n"
        return Message([tool_use("Write", {"file_path": "rag/chunk.py", "content": code})])
    return Message([tool_use("Read", {"file_path": "notes.md"})])


async def test_each_later_call_of_an_agent_reads_its_previous_prompt_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.md").write_text("Chunk by section.\n")
    with MessagesServer(responder) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cache-test")
        orchestrator = Orchestrator(load_agents(cwd=tmp_path, home=tmp_path), provider=AnthropicProvider(Settings()),
                                    workspace=tmp_path, permissions=PermissionPolicy(mode="acceptEdits"))  # fmt: skip
        result = await orchestrator.arun(TASK, agent="senior-ml-engineer")
        assert server.errors == []
    assert result.status == "completed", result.error
    calls = orchestrator.store.calls(result.run_id)
    turns: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for call in calls:
        if call.purpose == "turn":
            turns[(call.agent, call.delegation)].append(call)
    assert sorted((agent, len(c)) for (agent, _), c in turns.items()) == [("ml-engineer", 3), ("senior-ml-engineer", 2)]
    for (agent, _), context in turns.items():
        first, *later = context
        assert first.cache_write_tokens >= minimum_tokens(first.model) and first.cache_read_tokens == 0, agent
        for previous, call in zip(context, later, strict=False):
            # everything the previous call sent (its prompt) is read, only what came since is new
            assert call.cache_read_tokens == previous.cache_read_tokens + previous.cache_write_tokens, agent
            assert call.input_tokens < call.cache_read_tokens, agent
    usage = result.usage
    assert usage["cache_read_tokens"] == sum(c.cache_read_tokens for c in calls) > 0
    assert (
        usage["cost_usd"] < sum(c.input_tokens + c.cache_read_tokens + c.cache_write_tokens for c in calls) * 5 / 1e6
    )  # cheaper than all of it at Opus's full input price


async def test_a_prompt_under_the_models_minimum_is_not_cached_and_usage_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MessagesServer(lambda body: Message([text("Use a cross-encoder reranker.")])) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cache-test")
        orchestrator = Orchestrator(load_agents(cwd=tmp_path, home=tmp_path), provider=AnthropicProvider(Settings()),
                                    workspace=tmp_path)  # fmt: skip
        result = await orchestrator.arun("Should we rerank?", agent="senior-ml-engineer")
        (request,) = server.requests
    assert request.body["cache_control"] == {"type": "ephemeral"}  # asked for, like every request
    assert result.usage["cache_read_tokens"] == result.usage["cache_write_tokens"] == 0
    assert result.usage["input_tokens"] > 0
