"""One place where the graph calls a model: budget check, timing, pricing, recording, logging, and error
translation. Retries are the provider SDK's business, never ours."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    message_chunk_to_message,
    message_to_dict,
    messages_to_dict,
)
from langchain_core.runnables import Runnable, RunnableBinding, ensure_config
from pydantic import ValidationError

from orchestrator.errors import ModelCallError
from orchestrator.graphs.context import RunContext, current_context, thread_id
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.progress import emit
from orchestrator.ledger import Budget
from orchestrator.local.policy import POLICY_KEY
from orchestrator.logs import get_logger, scrub
from orchestrator.pricing import TokenCounts
from orchestrator.run_store import CallRecord
from orchestrator.secrets import mask_secrets

__all__ = ["Purpose", "answering_model", "call_model", "request_fingerprint", "token_counts"]

log = get_logger("orchestrator.model")

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
        item["data"].pop("artifact", None)  # a tool result's artifact is never sent to the model
    request = {"model": model, "tools": tools, "tool_choice": bound.get("tool_choice"), "messages": said}
    text = scrub(json.dumps(request, sort_keys=True, default=str).replace(workspace, "$WORKSPACE"))
    return text, hashlib.sha256(text.encode()).hexdigest()[:32]


async def _record(
    deps: Deps, run_id: str, context: RunContext, reply: AIMessage, request: tuple[str, str], *, agent: str, model: str,
    purpose: str, started: float, seconds: float,
) -> float:  # fmt: skip
    assert deps.ledger is not None
    tokens, answered = token_counts(reply), answering_model(reply, deps.model_id(model))
    cost = deps.ledger.cost(answered, tokens)
    if not deps.ledger.prices.priced(answered) and context.budget != Budget():
        _warn_unpriced(run_id, answered)
    response = scrub(json.dumps(message_to_dict(reply), default=str))
    await deps.ledger.arecord(run_id, CallRecord(
        agent=agent, purpose=purpose, model=answered, delegation=context.delegation,
        started=started, seconds=seconds, input_tokens=tokens.input, output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read, cache_write_tokens=tokens.cache_write, cost_usd=cost,
        request_hash=request[1], request=request[0], response=response,
    ))  # fmt: skip
    return cost


def answering_model(reply: AIMessage, configured: str) -> str:
    """The model that answered, as the response names it (a server may serve another than asked for),
    else the configured id: what the call is priced and recorded as."""
    named = reply.response_metadata.get("model_name") or reply.response_metadata.get("model")
    return str(named) if named else configured


_warned: set[tuple[str, str]] = set()


def _warn_unpriced(run_id: str, model: str) -> None:
    """Once per run and model: a cost cap cannot hold for a model without a price."""
    if (run_id, model) not in _warned:
        _warned.add((run_id, model))
        log.warning("unpriced_model", model=model, detail="not in the price table: its calls count $0 toward "
                    "--max-cost / --max-delegation-cost (add it to a price table: ORCHESTRATE_PRICES)")  # fmt: skip


def masked_reply(reply: AIMessage) -> AIMessage:
    """The reply with the environment's secret values masked in its text and tool arguments, before it
    enters the graph's state (and so the checkpoints) or the records."""
    said = json.dumps([reply.content, reply.tool_calls], default=str)
    if mask_secrets(said) == said:
        return reply
    content: Any = json.loads(mask_secrets(json.dumps(reply.content)))
    calls = [{**call, "args": json.loads(mask_secrets(json.dumps(call["args"])))} for call in reply.tool_calls]
    return reply.model_copy(update={"content": content, "tool_calls": calls})


class _TextStream:
    """Turns a streaming reply's text into "text" events, a whole line at a time, each masked: a line is
    what a terminal shows, and a secret split across two chunks is still whole in its line."""

    def __init__(self, agent: str, fields: dict[str, object]) -> None:
        self.agent, self.fields, self.pending = agent, fields, ""

    def feed(self, chunk: AIMessageChunk) -> None:
        self.pending += chunk.text
        if "\n" in self.pending:
            lines, _, self.pending = self.pending.rpartition("\n")
            self._send(lines + "\n")

    def close(self) -> None:
        if self.pending:
            self._send(self.pending)
            self.pending = ""

    def _send(self, text: str) -> None:
        emit("text", self.agent, text=mask_secrets(text), **self.fields)


async def _streamed(
    runnable: Runnable[LanguageModelInput, Any], messages: list[BaseMessage], config: Any, text: _TextStream | None
) -> Any:
    """The reply, streamed when the chat model streams (its `streaming` setting; else one piece), with its
    text sent on as it arrives. The chunks add up to the same message a plain call returns."""
    whole: Any = None
    async for chunk in runnable.astream(messages, config):
        if not isinstance(chunk, AIMessageChunk):  # a model that does not stream: its whole reply
            whole = chunk
            continue
        whole = chunk if whole is None else whole + chunk
        if text is not None:
            text.feed(chunk)
    if text is not None:
        text.close()
    return _one_text_as_string(message_chunk_to_message(whole)) if isinstance(whole, AIMessageChunk) else whole


def _one_text_as_string(reply: BaseMessage) -> BaseMessage:
    """A streamed reply that is one text block, as the plain string a non-streamed reply carries (so the
    conversation, its checkpoints and its replay fingerprints do not depend on streaming)."""
    content = reply.content
    block = content[0] if isinstance(content, list) and len(content) == 1 else None
    if isinstance(block, dict) and block.get("type") == "text" and set(block) <= {"type", "text", "index"}:
        return reply.model_copy(update={"content": block["text"]})
    return reply


def _announce_policy(reply: AIMessage, agent: str) -> None:
    """Decisions a model adapter made on the model's behalf (the local turn policy) become events."""
    for decision in reply.response_metadata.get(POLICY_KEY) or ():
        emit("policy", agent, rule=str(decision.get("rule")), detail=str(decision.get("detail", "")))


async def call_model(
    runnable: Runnable[LanguageModelInput, Any],
    messages: Sequence[BaseMessage],
    *,
    deps: Deps,
    agent: str,
    model: str,
    purpose: Purpose,
    stream_fields: dict[str, object] | None = None,
) -> AIMessage:
    """Invoke a chat model once (after the budget check) and record what it cost. With `stream_fields`,
    its text streams as "text" events carrying those fields (an agent's turn: its depth and round)."""
    config = ensure_config()
    config["metadata"] = {**config.get("metadata", {}), "orchestrate_agent": agent, "orchestrate_purpose": purpose}
    context, run_id = current_context(), thread_id()
    if deps.ledger is not None and run_id:
        await deps.ledger.acheck(run_id, context.delegation, context.budget)
    request = request_fingerprint(runnable, messages, model=model, workspace=str(deps.named_workspace()))
    started, clock = time.time(), time.perf_counter()
    try:
        text = None if stream_fields is None else _TextStream(agent, stream_fields)
        reply = await _streamed(runnable, list(messages), config, text)
    except ValidationError as exc:  # the client could not even build a message from the server's reply
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"]))
        raise ModelCallError(
            f"{agent} ({model}) {purpose} call got a reply that cannot be read: {where}: {problem['msg']} "
            f"(got {problem.get('input')!r:.80})"
        ) from exc
    except deps.provider.errors as exc:
        log.error("model_call_failed", agent=agent, model=model, purpose=purpose, error=type(exc).__name__)
        url = getattr(getattr(exc, "request", None), "url", None)  # the SDKs' connection errors carry it
        target = f" to {url}" if url is not None else ""
        raise ModelCallError(mask_secrets(f"{agent} ({model}) {purpose} call{target} failed: {exc}")) from exc
    if not isinstance(reply, AIMessage):
        raise ModelCallError(f"{agent} ({model}) returned {type(reply).__name__}, not an AIMessage")
    if reply.invalid_tool_calls:  # a streamed tool input that is not a JSON object
        broken = reply.invalid_tool_calls[0]
        raise ModelCallError(
            f"{agent} ({model}) {purpose} call got a reply that cannot be read: tool_calls.args of "
            f"{broken.get('name')}: not a JSON object (got {broken.get('args')!r:.80})"
        )
    reply = masked_reply(reply)
    seconds = round(time.perf_counter() - clock, 3)
    cost = 0.0
    if deps.ledger is not None and run_id:
        cost = await _record(deps, run_id, context, reply, request, agent=agent, model=model, purpose=purpose,
                             started=started, seconds=seconds)  # fmt: skip
    _announce_policy(reply, agent)
    tokens = token_counts(reply)
    log.info("model_call", agent=agent, model=model, purpose=purpose, seconds=seconds, input_tokens=tokens.input,
             output_tokens=tokens.output, cache_read_tokens=tokens.cache_read, cost_usd=round(cost, 6))  # fmt: skip
    return reply
