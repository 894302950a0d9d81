"""Logs carry who did what and what it cost, never what was said or a secret."""

from __future__ import annotations

from pathlib import Path

from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from orchestrator import FixedProvider, Orchestrator, load_agents
from orchestrator.logs import redact
from tests.support.scripted_model import Reply, ScriptedModel, ai


async def test_model_calls_are_logged_with_run_agent_node_model_and_tokens(tmp_path: Path) -> None:
    model = ScriptedModel([Reply(ai("the secret design is ready"))])
    orchestrator = Orchestrator(load_agents(cwd=tmp_path, home=tmp_path), provider=FixedProvider(model))
    with capture_logs(processors=[merge_contextvars]) as logs:
        result = await orchestrator.arun("top secret task text", agent="ml-engineer")
    [call] = [e for e in logs if e["event"] == "model_call"]
    assert call["run_id"] == result.run_id and call["agent"] == "ml-engineer" and call["node"] == "model"
    assert call["model"] == "sonnet" and call["input_tokens"] > 0 and call["output_tokens"] > 0
    assert "secret" not in repr(logs)
    assert [e["event"] for e in logs if e["event"].startswith("run_")] == ["run_started", "run_finished"]


def test_redact_drops_payloads_and_masks_credentials() -> None:
    event = {"event": "x", "prompt": "hello", "url": "https://h/?api_key=abc123", "note": "Bearer sk-ant-api03-XYZ"}
    clean = redact(None, "info", event)
    assert clean["prompt"] == "[redacted]"
    assert "abc123" not in clean["url"] and "sk-ant" not in clean["note"]


async def test_the_routing_decision_is_logged_with_its_method(tmp_path: Path) -> None:
    model = ScriptedModel([Reply(ai("done"))])
    orchestrator = Orchestrator(load_agents(cwd=tmp_path, home=tmp_path), provider=FixedProvider(model))
    with capture_logs() as logs:
        result = await orchestrator.arun("Write a pytest unit test for parse_config in config.py")
    [routed] = [e for e in logs if e["event"] == "routed"]
    assert (routed["agent"], routed["method"]) == ("ml-engineer", "classifier") and routed["confidence"] > 0.6
    assert result.route is not None and result.route["method"] == "classifier"
