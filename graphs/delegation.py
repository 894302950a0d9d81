"""The `delegate` node: one Task call becomes one review branch, and its result becomes the tool result.

Refusals the delegating model can act on (unknown subagent, no Task tool, too deep, a repeated brief) come
back as error tool results. A branch that fails (its model call failed after retries) also returns an
error result, and its siblings, running in parallel, carry on.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage

from orchestrator.errors import ModelCallError
from orchestrator.graphs.context import current_context
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.progress import EventKind, emit
from orchestrator.graphs.routers import brief_key
from orchestrator.graphs.state import BranchState, Brief, DelegationRecord, Verdict
from orchestrator.graphs.tool_node import cap_result
from orchestrator.logs import get_logger

__all__ = ["delegate", "refusal"]

log = get_logger(__name__)


def refusal(brief: Brief, deps: Deps) -> str | None:
    """Why this Task call may not run, or None."""
    parent = deps.agents[brief["parent"]]
    if not parent.can_delegate:
        return f"{parent.name} has no Task tool and cannot delegate."
    if brief["agent"] not in deps.agents:
        return f"no subagent named {brief['agent']!r}; available: {', '.join(sorted(deps.agents))}."
    if not brief["prompt"].strip():
        return "the prompt is empty: write the full brief for the subagent."
    if brief["position"] >= deps.settings.max_parallel_tasks:
        cap = deps.settings.max_parallel_tasks
        return f"too many Task calls in one turn: at most {cap} run per turn; call the rest in a later turn."
    if brief["depth"] > deps.settings.max_depth:
        return f"delegation depth {brief['depth']} exceeds the cap of {deps.settings.max_depth}: do this yourself."
    if brief_key(brief["agent"], brief["prompt"]) in brief["briefs"]:
        return "an identical brief was already delegated in this run: use its result or change the brief."
    return None


def _record(brief: Brief, status: Any, verdicts: list[Verdict], files: list[str]) -> DelegationRecord:
    return DelegationRecord(
        id=brief["call_id"],
        agent=brief["agent"],
        description=brief["description"],
        depth=brief["depth"],
        parent=brief["parent"],
        status=status,
        rounds=len(verdicts),
        verdicts=verdicts,
        files_changed=files,
    )


def _error_result(brief: Brief, text: str, status: Any) -> dict[str, Any]:
    kind: EventKind = "refused" if status == "refused" else "failed"
    emit(kind, brief["agent"], depth=brief["depth"], detail=text, description=brief["description"],
         call_id=brief["call_id"])  # fmt: skip
    record = _record(brief, status, [], [])
    message = ToolMessage(f"Error: {text}", tool_call_id=brief["call_id"], name="Task", status="error", artifact=record)
    return {"messages": [message], "delegations": [record]}


def _branch_input(brief: Brief, deps: Deps) -> BranchState:
    spec = deps.agents[brief["agent"]]
    return BranchState(
        brief=brief,
        model=deps.resolve_model(spec, brief["parent_model"]),
        conversation=[HumanMessage(brief["prompt"])],
        round=0,
        max_revisions=deps.max_revisions(),
        report="",
        files_read={},
        verdicts=[],
        briefs=[*brief["briefs"], brief_key(brief["agent"], brief["prompt"])],
        files_changed=[],
        tool_log=[],
        delegations=[],
    )


def _footer(verdicts: list[Verdict], files: list[str]) -> str:
    last = verdicts[-1]
    outcome = (
        f"approved in round {len(verdicts)}"
        if last["decision"] == "approve"
        else (f"NOT approved after {len(verdicts)} rounds; last feedback: {last['feedback']}")
    )
    return f"\n\n[review: {outcome}; files changed: {', '.join(files) or 'none'}]"


async def delegate(brief: Brief, *, deps: Deps) -> dict[str, Any]:
    """Run one delegated subtask through its review branch."""
    if (reason := refusal(brief, deps)) is not None:
        return _error_result(brief, reason, "refused")
    emit(
        "delegate",
        brief["agent"],
        depth=brief["depth"],
        detail=brief["description"],
        call_id=brief["call_id"],
    )
    context = current_context().delegated(brief["call_id"])
    try:
        out = await deps.branch.ainvoke(_branch_input(brief, deps), context=context)
    except ModelCallError as exc:  # a budget stop (RunError too) must end the run, not just this branch
        log.warning("delegation_failed", agent=brief["agent"], error=str(exc))
        return _error_result(brief, f"subagent {brief['agent']} failed: {exc}", "error")
    verdicts, files = out["verdicts"], out["files_changed"]
    last = verdicts[-1]["decision"]
    status = "approved" if last == "approve" else "unreadable" if last == "unreadable" else "unapproved"
    reason = "" if status == "approved" else verdicts[-1]["feedback"][:300]
    emit("returned", brief["agent"], depth=brief["depth"], detail=status, status=status, reason=reason,
         description=brief["description"], call_id=brief["call_id"], round=len(verdicts))  # fmt: skip
    report = cap_result(out["report"], deps.settings.max_report_chars)
    record = _record(brief, status, verdicts, files)
    # the outcome also travels as the result's artifact (never sent to the model), for code that reads it
    result = ToolMessage(report + _footer(verdicts, files), tool_call_id=brief["call_id"], name="Task", artifact=record)
    return {"messages": [result], "briefs": out["briefs"], "delegations": [record, *out["delegations"]]}
