"""Prompt rendering: a langchain conversation as compact llama chat messages within character budgets
(`PromptLimits`), tool traffic as a log on the user side, and the system prompt, the request and the latest
turns kept when a long history is trimmed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall

from orchestrator.content import content_text

__all__ = [
    "PromptLimits",
    "clip_line",
    "render_messages",
]


@dataclass(frozen=True)
class PromptLimits:
    """Character budgets for the rendered prompt (~4 characters a token, ~95 tokens/s to process)."""

    system_chars: int = 3600
    request_chars: int = 7000
    """The first human turn: the task, a subagent's brief, or a review request with its evidence."""
    message_chars: int = 2000
    tool_result_chars: int = 800
    args_chars: int = 300
    total_chars: int = 9000


def _clip(text: str, limit: int) -> str:
    """Head and tail of a long text with the omission marked (the end of tool output matters too)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n…[{len(text) - limit} chars omitted]…\n{text[-tail:]}"


def clip_line(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render_call(call: ToolCall, limits: PromptLimits) -> str:
    """A tool call as a line of the user-side log, e.g. `[You called Read(file_path="a.py")]`."""
    per_arg = max(40, limits.args_chars // max(1, len(call["args"])))
    args = ", ".join(f"{k}={clip_line(json.dumps(v, ensure_ascii=False), per_arg)}" for k, v in call["args"].items())
    return f"[You called {call['name']}({args})]"


def _render_one(message: BaseMessage, limits: PromptLimits, first: bool = False) -> list[dict[str, str]]:
    """One message as llama chat messages. Tool traffic is a log on the user side (calls and results):
    assistant turns hold only what the model said, so small models do not imitate rendered calls in
    their text, and any chat template copes."""
    text = content_text(message.content, placeholders=False)
    if isinstance(message, SystemMessage):
        return [{"role": "system", "content": _clip(text, limits.system_chars)}]
    if isinstance(message, ToolMessage):
        label = "error" if message.status == "error" else "result"
        name = message.name or "tool"
        return [{"role": "user", "content": f"[{name} {label}]\n{_clip(text, limits.tool_result_chars)}"}]
    if isinstance(message, AIMessage):
        said = [{"role": "assistant", "content": _clip(text, limits.message_chars)}] if text.strip() else []
        calls = [{"role": "user", "content": _render_call(c, limits)} for c in message.tool_calls]
        return [*said, *calls]
    return [{"role": "user", "content": _clip(text, limits.request_chars if first else limits.message_chars)}]


def _merge_roles(chat: list[dict[str, str]]) -> list[dict[str, str]]:
    """Join consecutive messages of one role: several chat templates demand alternation."""
    merged: list[dict[str, str]] = []
    for msg in chat:
        if merged and merged[-1]["role"] == msg["role"]:
            merged[-1] = {"role": msg["role"], "content": f"{merged[-1]['content']}\n\n{msg['content']}"}
        else:
            merged.append(dict(msg))
    return merged


def _fit(chat: list[dict[str, str]], budget: int) -> list[dict[str, str]]:
    """Keep the system prompt, the task (first user turn) and as many recent turns as fit the budget."""
    head = [m for m in chat[:2] if m["role"] == "system"]
    rest = chat[len(head) :]
    if not rest:
        return head
    first, tail = rest[0], rest[1:]
    room = budget - sum(len(m["content"]) for m in [*head, first])
    kept: list[dict[str, str]] = []
    for msg in reversed(tail):
        if room - len(msg["content"]) < 0 and kept:
            break
        room -= len(msg["content"])
        kept.insert(0, msg)
    omitted = len(tail) - len(kept)
    note = [{"role": "user", "content": f"[{omitted} earlier messages omitted]"}] if omitted else []
    return [*head, first, *note, *kept]


def render_messages(messages: Sequence[BaseMessage], limits: PromptLimits | None = None) -> list[dict[str, str]]:
    """The conversation as compact llama chat messages, within the limits' character budgets."""
    lim = limits or PromptLimits()
    first = next((i for i, m in enumerate(messages) if m.type == "human"), -1)
    parts = [part for i, m in enumerate(messages) for part in _render_one(m, lim, first=i == first)]
    chat = _merge_roles(_fit(parts, lim.total_chars))
    if not chat or chat[-1]["role"] != "user":
        chat.append({"role": "user", "content": "Continue."})
    return chat
