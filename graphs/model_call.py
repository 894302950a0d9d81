"""One place where the graph calls a model: budget check, timing, pricing, recording, logging, and error
translation. Retries are the provider SDK's business, never ours."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any, Literal

import structlog
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, message_to_dict, messages_to_dict
from langchain_core.runnables import Runnable, RunnableBinding, ensure_config

from orchestrator.errors import ModelCallError
from orchestrator.graphs.deps import Deps
from orchestrator.ledger import DELEGATION
from orchestrator.logs import scrub
from orchestrator.pricing import TokenCounts
from orchestrator.run_store import CallRecord

__all__ = ["Purpose", "call_model", "request_fingerprint", "token_counts"]

log = structlog.get_logger("orchestrator.model")

Purpose = Literal["turn", "review", "route", "summarize"]


def token_counts(message: AIMessage) -> TokenCounts:
    """Tokens of one reply; langchain counts cached input inside input_tokens, we keep them apart."""
    meta = message.usage_metadata
    if meta is None:
        return TokenCounts(0, 0)
    details = meta.get("input_token_details") or {}
    read, write = int(details.get("cache_read") or 0), int(details.get("cache_creation") or 0)
    return TokenCounts(meta["input_tokens"] - read - write, meta["output_tokens"], write, read)


def request_fingerprint(
    runnable: Runnable[LanguageModelInput, Any], messages: Sequence[BaseMessage], *, model: str, workspace: str
) -> tuple[str, str]:
    """(request JSON, its hash). The hash ignores message ids and the workspace location, so a replay of
    the same run asks identical questions and finds the recorded answers."""
    bound = runnable.kwargs if isinstance(runnable, RunnableBinding) else {}
    tools = [t.get("name", t.get("type")) if isinstance(t, dict) else str(t) for t in bound.get("tools") or []]
    said = messages_to_dict(list(messages))
    for item in said:
        item["data"].pop("id", None)
    request = {"model": model, "tools": tools, "tool_choice": bound.get("tool_choice"), "messages": said}
    text = scrub(json.dumps(request, sort_keys=True, default=str).replace(workspace, "$WORKSPACE"))
    return text, hashlib.sha256(text.encode()).hexdigest()[:32]


async def _record(
    deps: Deps, run_id: str, reply: AIMessage, request: tuple[str, str], *, agent: str, model: str, purpose: str,
    started: float, seconds: float,
) -> float:  # fmt: skip
    assert deps.ledger is not None
    tokens = token_counts(reply)
    cost = deps.ledger.cost(deps.provider.model_id(model), tokens)
    response = scrub(json.dumps(message_to_dict(reply), default=str))
    await deps.ledger.arecord(run_id, CallRecord(
        agent=agent, purpose=purpose, model=deps.provider.model_id(model), delegation=DELEGATION.get(),
        started=started, seconds=seconds, input_tokens=tokens.input, output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read, cache_write_tokens=tokens.cache_write, cost_usd=cost,
        request_hash=request[1], request=request[0], response=response,
    ))  # fmt: skip
    return cost


async def call_model(
    runnable: Runnable[LanguageModelInput, Any],
    messages: Sequence[BaseMessage],
    *,
    deps: Deps,
    agent: str,
    model: str,
    purpose: Purpose,
) -> AIMessage:
    """Invoke a chat model once (after the budget check) and record what it cost."""
    config = ensure_config()
    config["metadata"] = {**config.get("metadata", {}), "orchestrate_agent": agent, "orchestrate_purpose": purpose}
    run_id = str(config.get("configurable", {}).get("thread_id", ""))
    if deps.ledger is not None and run_id:
        await deps.ledger.acheck(run_id, DELEGATION.get())
    request = request_fingerprint(runnable, messages, model=model, workspace=str(deps.workspace))
    started, clock = time.time(), time.perf_counter()
    try:
        reply = await runnable.ainvoke(list(messages), config)
    except deps.provider.errors as exc:
        log.error("model_call_failed", agent=agent, model=model, purpose=purpose, error=type(exc).__name__)
        raise ModelCallError(f"{agent} ({model}) {purpose} call failed: {exc}") from exc
    if not isinstance(reply, AIMessage):
        raise ModelCallError(f"{agent} ({model}) returned {type(reply).__name__}, not an AIMessage")
    seconds = round(time.perf_counter() - clock, 3)
    cost = 0.0
    if deps.ledger is not None and run_id:
        cost = await _record(deps, run_id, reply, request, agent=agent, model=model, purpose=purpose, started=started,
                       seconds=seconds)  # fmt: skip
    tokens = token_counts(reply)
    log.info("model_call", agent=agent, model=model, purpose=purpose, seconds=seconds, input_tokens=tokens.input,
             output_tokens=tokens.output, cache_read_tokens=tokens.cache_read, cost_usd=round(cost, 6))  # fmt: skip
    return reply
