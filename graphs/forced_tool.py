"""A forced tool call that works on every model: the review's Verdict, the router's tie-break.

Claude honours a named `tool_choice`. OpenAI-compatible servers differ: some reject a named choice with
400 (then "any", which ChatOpenAI sends as "required", is tried, then no choice at all), some ignore it
and answer in text (then the text is read strictly: a JSON object with the tool's arguments). What still
cannot be read is None, for the caller to report as such, never to guess from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from orchestrator.errors import ModelCallError
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.model_call import Purpose, call_model

__all__ = ["call_forced_tool", "json_object"]

_CHOICES: tuple[str | None, ...] = ("named", "any", None)
_REJECTED = frozenset({400, 422})
"""HTTP statuses with which servers refuse a tool_choice they do not support."""


def json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` (also inside a ```json fence), or None."""
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _arguments(reply: AIMessage, name: str) -> dict[str, Any] | None:
    call = next((c for c in reply.tool_calls if c["name"] == name), None)
    if call is not None:
        return dict(call["args"])
    return json_object(reply.text)


def _rejected(exc: ModelCallError) -> bool:
    return getattr(exc.__cause__, "status_code", None) in _REJECTED


async def call_forced_tool(
    messages: Sequence[BaseMessage], tool: dict[str, Any], *, deps: Deps, agent: str, model: str, purpose: Purpose
) -> dict[str, Any] | None:
    """The arguments the model gave `tool`, or None when its answer holds none that can be read."""
    name = str(tool["name"])
    for choice in _CHOICES:
        chat = deps.chat_model(model)
        runnable = chat.bind_tools([tool], tool_choice=name if choice == "named" else choice)
        try:
            reply = await call_model(runnable, messages, deps=deps, agent=agent, model=model, purpose=purpose)
        except ModelCallError as exc:
            if choice is not None and _rejected(exc):
                continue  # this server refuses that kind of tool_choice: the next one
            raise
        return _arguments(reply, name)
    return None
