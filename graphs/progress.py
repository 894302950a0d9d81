"""Progress events nodes emit for the CLI and `Orchestrator.astream` (LangGraph's "custom" stream).

Outside a streaming run LangGraph hands nodes a no-op writer, so emitting is always safe and cheap.
Events carry names, counts and short titles, never prompts or tool payloads; "text" events carry an agent's
reply as it streams (masked), for display only: they are never recorded.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from langgraph.config import get_stream_writer

from orchestrator.graphs.context import current_context

__all__ = ["EventKind", "ProgressEvent", "emit"]

EventKind = Literal[
    "route",
    "turn",
    "tool",
    "denied",
    "delegate",
    "refused",
    "verdict",
    "returned",
    "failed",
    "permission",
    "policy",
    "text",
]


class ProgressEvent(TypedDict, total=False):
    """One event. `detail` is for people; every fact a reader needs (the trace, replay) is a field of its own."""

    event: EventKind
    agent: str
    depth: int
    detail: str
    """A short human line: the route reason, a tool name, a delegation's title, a verdict's feedback, what a
    permission ask was and how it was answered, what the local adapter's policy decided."""
    call_id: str
    """The tool call this event is about: a Task call (delegate, verdict, returned, refused, failed) or a tool call."""
    round: int
    """turn: the agent's turn number; verdict: the review round."""
    confidence: float
    """route: the router's calibrated probability for the agent."""
    method: str
    """route: how it was decided (classifier, description, tiebreak-model, default, forced)."""
    decision: str
    """verdict: approve or revise."""
    by: str
    """verdict: reviewer, or evidence when the evidence check overruled an approval."""
    status: str
    """returned: approved or unapproved."""
    merge: str
    """returned, for a delegation with a workspace of its own: merged, conflict or not merged."""
    changes: int
    """returned, with `merge`: how many files the branch added, modified or deleted."""
    description: str
    """delegate, returned, refused, failed: the Task call's description (what the delegation was for)."""
    reason: str
    """returned (unapproved): the last review feedback; denied: why the tool call did not run."""
    tool: str
    """permission: the tool asked for."""
    summary: str
    """permission: what the user was asked about (the tool and its argument, e.g. "Bash: git status")."""
    answer: str
    """permission: allow, deny or always."""
    hint: str
    """permission: what would allow such a call (a flag, a settings line), for the user."""
    rule: str
    """policy: which rule of the local adapter's turn policy decided (orchestrator/local/policy.py)."""
    text: str
    """text: the next whole lines of an agent's reply as the model streams them (secrets masked). Shown
    live, never recorded: the reply itself is in the run's records."""
    delegation: str
    """The delegation path the event happened in ("id1/id2/"; absent at the top)."""


def emit(event: EventKind, agent: str, **fields: object) -> None:
    """Send one event; it names the delegation it happens in (the run context's path), if any."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # outside any graph (a model call made for `orchestrate route`): nobody listens
        return
    path = current_context().delegation
    writer({"event": event, "agent": agent, **fields, **({"delegation": path} if path else {})})
