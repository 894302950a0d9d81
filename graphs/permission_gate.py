"""The permission gate in front of the tool node: allow, deny, or ask the user through an interrupt.

Every call of a turn is decided before any runs, so an "ask" (a LangGraph interrupt that surfaces at the
top of the run, also from a junior branch) never re-runs a tool with side effects when the node resumes.
The runner answers each ask: interactively, with a handler the caller passed, or by denying it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Literal, TypedDict

from langgraph.types import interrupt

from orchestrator.graphs.deps import Deps
from orchestrator.tools.permissions import exact_rule

__all__ = ["Answer", "PermissionRequest", "check_permission", "preview_call", "summarize_call"]

Answer = Literal["allow", "deny", "always"]


class PermissionRequest(TypedDict):
    """What the user is asked: which agent wants to do what, why it asks, and which rule or flag would
    allow it (`hint`: for the user only, never for the model)."""

    tool: str
    agent: str
    depth: int
    summary: str
    reason: str
    hint: str
    preview: str
    """What would happen: the command for Bash, size and first lines for Write, a diff for Edit."""
    rule: str
    """The exact rule "always" stores for the rest of the run, as the user is shown it: this command, this
    file, this domain (never a prefix the user did not see)."""


_PREVIEW_LINES = 12


def preview_call(tool: str, args: Mapping[str, object]) -> str:
    """What the call would do, for the person who approves it."""
    if tool == "Bash":
        return str(args.get("command", ""))
    if tool == "Write":
        content = str(args.get("content", ""))
        lines = content.splitlines()
        shown = "\n".join(lines[:_PREVIEW_LINES]) + ("\n…" if len(lines) > _PREVIEW_LINES else "")
        return f"{args.get('file_path')}: {len(content.encode())} bytes, {len(lines)} lines\n{shown}"
    if tool == "Edit":
        old, new = str(args.get("old_string", "")).splitlines(), str(args.get("new_string", "")).splitlines()
        diff = list(difflib.unified_diff(old, new, str(args.get("file_path")), str(args.get("file_path")), lineterm=""))
        return "\n".join(diff[: _PREVIEW_LINES * 2]) + ("\n…" if len(diff) > _PREVIEW_LINES * 2 else "")
    return ", ".join(f"{k}={str(v)[:80]}" for k, v in args.items())


def summarize_call(tool: str, args: Mapping[str, object]) -> str:
    for field in ("file_path", "command", "url", "pattern"):
        if field in args:
            return f"{tool} {str(args[field])[:200]}"
    return tool


def check_permission(tool: str, args: Mapping[str, object], *, agent: str, depth: int, deps: Deps) -> str | None:
    """None if the call may run, else the refusal text the model reads (what decided, never a rule it could
    write for itself)."""
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
            hint=decision.hint,
            preview=preview_call(tool, args),
            rule=exact_rule(tool, args, deps.workspace),
        )
        answer: Answer = interrupt(request)
        if answer in ("allow", "always"):
            return None
        return f"Permission denied: {request['summary']} was not approved ({decision.reason})."
    return f"Permission denied: {decision.reason}."
