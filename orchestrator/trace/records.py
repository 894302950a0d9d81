"""Reading a stored model call's request and response JSON (langchain's `message_to_dict` records) into
the views the trace shows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orchestrator.content import content_text
from orchestrator.local.policy import POLICY_KEY
from orchestrator.run_store import CallRecord
from orchestrator.trace.model import CallTrace, MessageView, PolicyNote, ToolRequest

__all__ = ["call_trace", "message_view"]


def _tool_requests(data: Mapping[str, Any]) -> tuple[ToolRequest, ...]:
    calls = data.get("tool_calls") or []
    return tuple(ToolRequest(str(c.get("id")), str(c.get("name")), dict(c.get("args") or {})) for c in calls)


def message_view(item: Mapping[str, Any]) -> MessageView:
    """A langchain `message_to_dict` record ({"type", "data"}) as a MessageView."""
    data = item.get("data") or {}
    return MessageView(
        role=str(item.get("type", "?")), text=content_text(data.get("content")), tool_calls=_tool_requests(data),
        tool_call_id=data.get("tool_call_id"), name=data.get("name"), status=data.get("status"),
        policy=_policy(data.get("response_metadata") or {}),
    )  # fmt: skip


def _policy(metadata: Mapping[str, Any]) -> tuple[PolicyNote, ...]:
    decisions = metadata.get(POLICY_KEY) or []
    return tuple(PolicyNote(str(d.get("rule")), str(d.get("detail", ""))) for d in decisions if isinstance(d, dict))


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _choice(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def call_trace(step: int, record: CallRecord) -> CallTrace:
    request = _loads(record.request)
    return CallTrace(
        step=step, record=record, tools=tuple(str(t) for t in request.get("tools") or []),
        tool_choice=_choice(request.get("tool_choice")),
        messages=tuple(message_view(m) for m in request.get("messages") or []),
        reply=message_view(_loads(record.response)),
    )  # fmt: skip
