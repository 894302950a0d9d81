"""The permission gate in front of the tool node: allow, deny, or ask the user through an interrupt.

Every call of a turn is decided before any runs, so an "ask" (a LangGraph interrupt that surfaces at the
top of the run, also from a junior branch) never re-runs a tool with side effects when the node resumes.
The runner answers each ask: interactively, with a handler the caller passed, or by denying it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict

from langgraph.types import interrupt

from orchestrator.graphs.deps import Deps

__all__ = ["Answer", "PermissionRequest", "check_permission", "summarize_call"]

Answer = Literal["allow", "deny", "always"]


class PermissionRequest(TypedDict):
    """What the user is asked: which agent wants to do what, and which rule or flag would allow it."""

    tool: str
    agent: str
    depth: int
    summary: str
    reason: str
    key: str
    """What "always" remembers for the rest of the run: the tool, and for Bash its command's first word."""


def summarize_call(tool: str, args: Mapping[str, object]) -> str:
    for field in ("file_path", "command", "url", "pattern"):
        if field in args:
            return f"{tool} {str(args[field])[:200]}"
    return tool


def _key(tool: str, args: Mapping[str, object]) -> str:
    words = str(args.get("command", "")).split()
    return f"Bash({words[0]}:*)" if tool == "Bash" and words else tool


def check_permission(tool: str, args: Mapping[str, object], *, agent: str, depth: int, deps: Deps) -> str | None:
    """None if the call may run, else the refusal text the model reads (it names the way out)."""
    decision = deps.permissions.decide(tool, args, deps.workspace)
    if decision.kind == "allow":
        return None
    if decision.kind == "ask":
        request = PermissionRequest(
            tool=tool,
            agent=agent,
            depth=depth,
            summary=summarize_call(tool, args),
            reason=decision.reason,
            key=_key(tool, args),
        )
        answer: Answer = interrupt(request)
        if answer in ("allow", "always"):
            return None
        return f"Permission denied: the user declined {request['summary']}. {decision.reason}"
    return f"Permission denied: {decision.reason}"
