"""One place where the graph calls a model: timing, token counts, logging, and error translation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import structlog
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, ensure_config

from orchestrator.errors import ModelCallError
from orchestrator.graphs.state import Usage

__all__ = ["Purpose", "call_model", "usage_of"]

log = structlog.get_logger("orchestrator.model")

Purpose = Literal["turn", "review", "route", "summarize"]


def usage_of(message: AIMessage) -> Usage:
    meta = message.usage_metadata
    if meta is None:
        return Usage(input_tokens=0, output_tokens=0)
    return Usage(input_tokens=meta["input_tokens"], output_tokens=meta["output_tokens"])


async def call_model(
    runnable: Runnable[LanguageModelInput, Any],
    messages: Sequence[BaseMessage],
    *,
    errors: tuple[type[BaseException], ...],
    agent: str,
    model: str,
    purpose: Purpose,
) -> AIMessage:
    """Invoke a chat model once (the provider's SDK does the retrying) and log what it cost."""
    config = ensure_config()
    config["metadata"] = {
        **config.get("metadata", {}),
        "orchestrate_agent": agent,
        "orchestrate_purpose": purpose,
    }
    started = time.perf_counter()
    try:
        reply = await runnable.ainvoke(list(messages), config)
    except errors as exc:
        log.error("model_call_failed", agent=agent, model=model, purpose=purpose, error=type(exc).__name__)
        raise ModelCallError(f"{agent} ({model}) {purpose} call failed: {exc}") from exc
    if not isinstance(reply, AIMessage):
        raise ModelCallError(f"{agent} ({model}) returned {type(reply).__name__}, not an AIMessage")
    usage = usage_of(reply)
    seconds = round(time.perf_counter() - started, 3)
    log.info("model_call", agent=agent, model=model, purpose=purpose, seconds=seconds, **usage)
    return reply
