"""The permission gate in front of the tool node: allow, deny, or ask the user through an interrupt.

Every call of a turn is decided before any runs, so an "ask" (a LangGraph interrupt that surfaces at the
top of the run, also from a junior branch) never re-runs a tool with side effects when the node resumes.
The interrupt's value is a `PermissionRequest`; the resume value is "allow", "deny" or "always" (or a
boolean). The CLI's runner answers interactively, with a handler the caller passed, or by denying; a
LangGraph Server client answers with `Command(resume={interrupt_id: "allow"})`. An answer that is none of
these is asked again with an `error` saying what to send, never taken for a deny. The answer is a
"permission" event of the run, and an "always" is the run's from then on: later asks for the same exact
rule in that run (thread) are allowed without asking.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Mapping
from typing import Literal, NotRequired, TypedDict, get_args

from langgraph.types import interrupt

from orchestrator.graphs.context import current_context, thread_id
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.progress import emit
from orchestrator.run_events import granted_rules
from orchestrator.tools.permissions import exact_rule

__all__ = [
    "ANSWERS",
    "Answer",
    "PermissionRequest",
    "check_permission",
    "preview_call",
    "read_answer",
    "summarize_call",
]

Answer = Literal["allow", "deny", "always"]
ANSWERS: tuple[Answer, ...] = get_args(Answer)


class PermissionRequest(TypedDict):
    """What the user is asked: which agent wants to do what, why it asks, and which rule or flag would
    allow it (`hint`: for the user only, never for the model)."""

    tool: str
    agent: str
    depth: int
    delegation: str
    """The delegation path of the asking agent ("id1/id2/"; "" for the top agent)."""
    call_id: str
    summary: str
    """The tool and its main argument ("Write notes/plan.md")."""
    reason: str
    hint: str
    preview: str
    """What would happen: the command for Bash, size and first lines for Write, a diff for Edit."""
    rule: str
    """The exact rule "always" stores for the rest of the run, as the user is shown it: this command, this
    file, this domain (never a prefix the user did not see)."""
    options: list[Answer]
    """What the resume value may be (a boolean also works: true = allow, false = deny)."""
    error: NotRequired[str]
    """Why the previous answer was not taken (asked again)."""


def read_answer(value: object) -> Answer | None:
    """The answer a resume value means, or None when it means none of them."""
    if isinstance(value, bool):
        return "allow" if value else "deny"
    if isinstance(value, str) and (word := value.strip().lower()) in ANSWERS:
        return word
    return None


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


async def check_permission(
    tool: str, args: Mapping[str, object], *, agent: str, depth: int, call_id: str, deps: Deps
) -> str | None:
    """None if the call may run, else the refusal text the model reads (what decided, never a rule it could
    write for itself)."""
    workspace = deps.run_workspace()
    decision = deps.run_policy().decide(tool, args, workspace)
    if decision.kind == "allow":
        return None
    if decision.kind == "deny":
        return f"Permission denied: {decision.reason}."
    request = PermissionRequest(
        tool=tool, agent=agent, depth=depth, delegation=current_context().delegation, call_id=call_id,
        summary=summarize_call(tool, args), reason=decision.reason, hint=decision.hint,
        preview=preview_call(tool, args), rule=exact_rule(tool, args, workspace), options=list(ANSWERS),
    )  # fmt: skip
    if request["rule"] in await _granted(deps):
        return None
    answer = _ask(request)
    emit(
        "permission", agent, depth=depth, tool=tool, summary=request["summary"], answer=answer,
        hint=request["hint"], rule=request["rule"], call_id=call_id, detail=f"{request['summary']}: {answer}",
    )  # fmt: skip
    if answer in ("allow", "always"):
        return None
    return f"Permission denied: {request['summary']} was not approved ({decision.reason})."


def _ask(request: PermissionRequest) -> Answer:
    """Interrupt the run with the request until the resume value is an answer."""
    while (answer := read_answer(value := interrupt(request))) is None:
        choices = ", ".join(ANSWERS)
        request = {**request, "error": f"{value!r:.80} is not an answer: resume with one of {choices} (or a boolean)"}
    return answer


async def _granted(deps: Deps) -> set[str]:
    """The rules answered "always" earlier in this run (from its recorded events)."""
    run_id = thread_id()
    if deps.ledger is None or not run_id:
        return set()
    return granted_rules(await asyncio.to_thread(deps.ledger.store.events, run_id))
