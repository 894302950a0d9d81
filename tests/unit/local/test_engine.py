"""The llama boundary: llama.cpp refusals as errors, logging, serialised calls, lazy loading, the loop guard."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from structlog.testing import capture_logs

from orchestrator.local.engine import LocalEngine, LocalModelError
from orchestrator.local.loops import LOOP_STOPPED
from orchestrator.local.steps import (
    GenerationSettings,
)
from orchestrator.local.turn import run_turn
from tests.support.scripted_llama import (
    TASK,
    TOOLS,
    ScriptedLlama,
    TokenIds,
    chat_model,
)


def test_llama_refusals_become_local_model_errors() -> None:
    class Overflow:
        def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
            raise ValueError("Requested tokens (5000) exceed context window of 4096")

    engine = LocalEngine.of("tiny", Overflow())
    with pytest.raises(LocalModelError, match="exceed context window"):
        run_turn(engine, TASK, [], None, GenerationSettings())


def test_every_call_is_logged_with_tokens_and_time() -> None:
    llama = ScriptedLlama('{"action": "answer"}', "done")
    with capture_logs() as logs:
        run_turn(LocalEngine.of("tiny", llama), [HumanMessage("Say done.")], TOOLS, None, GenerationSettings())
    calls = [entry for entry in logs if entry["event"] == "local_completion"]
    assert [c["step"] for c in calls] == ["choose", "answer"]
    assert {k for k in calls[0] if k != "log_level"} >= {"model", "input_tokens", "output_tokens", "seconds"}
    assert calls[0]["model"] == "tiny"
    assert calls[0]["input_tokens"] == 10


async def test_calls_to_one_model_are_serialised_and_the_loop_stays_free() -> None:
    llama = ScriptedLlama(*["x"] * 3, delay=0.05)
    model = chat_model(llama)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(10):
            await asyncio.sleep(0.01)
            ticks += 1

    await asyncio.gather(*(model.ainvoke([HumanMessage(str(n))]) for n in range(3)), ticker())
    assert llama.max_active == 1
    assert ticks == 10


def test_a_model_is_loaded_once_lazily_and_loading_errors_are_call_errors() -> None:
    loads: list[int] = []

    def load() -> ScriptedLlama:
        loads.append(1)
        return ScriptedLlama("a", "b")

    engine = LocalEngine("tiny", load)
    assert loads == []
    for _ in range(2):
        run_turn(engine, TASK, [], None, GenerationSettings())
    assert loads == [1]

    def broken() -> ScriptedLlama:
        raise ValueError("Failed to load model from file")

    with pytest.raises(LocalModelError, match="cannot load"):
        run_turn(LocalEngine("bad", broken), TASK, [], None, GenerationSettings())


def test_the_engine_guards_free_text_against_loops_when_the_model_can() -> None:
    class Looping(ScriptedLlama):
        def token_eos(self) -> int:
            return 0

        def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
            [guard] = kwargs.pop("logits_processor")
            guard(TokenIds([5]), [0.0])
            guard(TokenIds([5, *([1, 2] * 30)]), [0.0, 0.0])
            return super().create_chat_completion(**kwargs)

    engine = LocalEngine.of("tiny", Looping("ab" * 30))
    with capture_logs() as logs:
        response = engine.complete("answer", {"messages": []}, stop_loops=True)
    assert response[LOOP_STOPPED] is True
    assert "local_loop_stopped" in [entry["event"] for entry in logs]
    plain = ScriptedLlama("x")
    assert LOOP_STOPPED not in LocalEngine.of("tiny", plain).complete("answer", {"messages": []}, stop_loops=True)
    assert "logits_processor" not in plain.requests[0]
