"""Progress events nodes emit for the CLI and `Orchestrator.astream` (LangGraph's "custom" stream).

Outside a streaming run LangGraph hands nodes a no-op writer, so emitting is always safe and cheap.
Events carry names, counts and short titles, never prompts or tool payloads.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from langgraph.config import get_stream_writer

__all__ = ["EventKind", "ProgressEvent", "emit"]

EventKind = Literal["route", "turn", "tool", "delegate", "refused", "verdict", "returned", "failed", "permission"]


class ProgressEvent(TypedDict, total=False):
    event: EventKind
    agent: str
    depth: int
    detail: str
    """A short human line: the route reason, a tool name, a delegation's title, a verdict's feedback."""
    confidence: float
    decision: str
    round: int
    call_id: str
    """The tool call this event is about: a Task call (delegate, verdict, returned, refused, failed) or a tool call."""
    method: str
    """How the route was decided (route events): classifier, description, tiebreak-model, default, forced."""


def emit(event: EventKind, agent: str, **fields: object) -> None:
    get_stream_writer()({"event": event, "agent": agent, **fields})
