"""The `delegate` node: one Task call becomes one review branch, and its result becomes the tool result.

Refusals the delegating model can act on (unknown subagent, no Task tool, too deep, a repeated brief) come
back as error tool results. A branch that fails (its model call failed after retries) also returns an
error result, and its siblings, running in parallel, carry on. A delegation whose agent may write works in
a workspace of its own (made at its first tool call) and merges back when approved (graphs/isolated.py);
the Task result says how the merge went, and a conflict's paths and hunks.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage

from orchestrator.errors import ModelCallError
from orchestrator.graphs.context import current_context
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.isolated import BranchUnavailable, LazyBranch, close_branch, finish_branch, plan_for, writes
from orchestrator.graphs.progress import EventKind, emit
from orchestrator.graphs.routers import brief_key
from orchestrator.graphs.state import BranchRecord, BranchState, Brief, DelegationRecord, Verdict
from orchestrator.graphs.tool_node import cap_result
from orchestrator.isolation import GitError
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


def _record(
    brief: Brief, status: Any, verdicts: list[Verdict], files: list[str], branch: BranchRecord | None = None
) -> DelegationRecord:
    record = DelegationRecord(
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
    if branch is not None:
        record["branch"] = branch
    return record


def _error_result(brief: Brief, text: str, status: Any) -> dict[str, Any]:
    kind: EventKind = "refused" if status == "refused" else "failed"
    emit(kind, brief["agent"], depth=brief["depth"], detail=text, description=brief["description"],
         call_id=brief["call_id"])  # fmt: skip
    record = _record(brief, status, [], [])
    message = ToolMessage(f"Error: {text}", tool_call_id=brief["call_id"], name="Task", status="error", artifact=record)
    return {"messages": [message], "delegations": [record]}


def _in_branch(brief: Brief, branch: LazyBranch | None) -> Brief:
    """The brief as the branch reads it: absolute paths into the main workspace point into the branch's."""
    if branch is None:
        return brief
    prompt = re.sub(re.escape(str(branch.main)) + r"(?=/|\s|$)", lambda _: str(branch.workspace), brief["prompt"])
    return {**brief, "prompt": prompt}


def _branch_input(brief: Brief, deps: Deps, branch: LazyBranch | None) -> BranchState:
    spec = deps.agents[brief["agent"]]
    brief = _in_branch(brief, branch)
    state = BranchState(
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
    return state


_MERGE_WORDS = {
    "merged": "merged into the workspace",
    "conflict": "NOT merged: conflict",
    "not merged": "not merged (unapproved)",
}


def _footer(verdicts: list[Verdict], files: list[str], branch: BranchRecord | None) -> str:
    last = verdicts[-1]
    outcome = (
        f"approved in round {len(verdicts)}"
        if last["decision"] == "approve"
        else (f"NOT approved after {len(verdicts)} rounds; last feedback: {last['feedback']}")
    )
    merge = f"; {_MERGE_WORDS[branch['merge']]}" if branch is not None else ""
    return f"\n\n[review: {outcome}; files changed: {', '.join(files) or 'none'}{merge}]"


async def _plan_branch(brief: Brief, deps: Deps) -> tuple[LazyBranch, dict[str, Any] | None] | str | None:
    """The delegation's own workspace, made when its agent first uses a tool, and what a previous attempt
    recorded for it (None: it shares the main one), or why it cannot have one. A delegation from inside a
    branch starts from that branch, so the branch is made first."""
    try:
        if (parent := current_context().branch) is not None:
            await parent.ready()
        if not (deps.settings.isolation and writes(deps.agents[brief["agent"]])):
            return None
        return await asyncio.to_thread(plan_for, deps.run_workspace(), deps.settings.branches_dir, brief["call_id"])
    except BranchUnavailable as exc:
        return str(exc)
    except (GitError, OSError) as exc:
        return f"cannot give {brief['agent']} a workspace of its own: {exc}"


def _recorded(brief: Brief, saved: dict[str, Any]) -> dict[str, Any]:
    """What a previous attempt of this run returned for the delegation (its branch already merged)."""
    record: DelegationRecord = saved["record"]
    message = ToolMessage(saved["content"], tool_call_id=brief["call_id"], name="Task", artifact=record)
    return {"messages": [message], "briefs": saved["briefs"], "delegations": [record, *saved["nested"]]}


async def delegate(brief: Brief, *, deps: Deps) -> dict[str, Any]:
    """Run one delegated subtask through its review branch (in its own workspace, when it writes)."""
    if (reason := refusal(brief, deps)) is not None:
        return _error_result(brief, reason, "refused")
    planned = await _plan_branch(brief, deps)
    if isinstance(planned, str):
        return _error_result(brief, planned, "error")
    lazy, recorded = planned if planned is not None else (None, None)
    if recorded is not None:
        return _recorded(brief, recorded)
    emit(
        "delegate",
        brief["agent"],
        depth=brief["depth"],
        detail=brief["description"],
        call_id=brief["call_id"],
    )
    context = current_context().delegated(brief["call_id"], lazy)
    if lazy is not None and lazy.branch is None:
        lazy.pending()
    try:
        out = await deps.branch.ainvoke(_branch_input(brief, deps, lazy), context=context)
    except (ModelCallError, BranchUnavailable) as exc:  # a budget stop (RunError) must end the run, not this branch
        log.warning("delegation_failed", agent=brief["agent"], error=str(exc))
        return _error_result(brief, f"subagent {brief['agent']} failed: {exc}", "error")
    finally:
        if lazy is not None:
            lazy.settled()
    branch = lazy.branch if lazy is not None else None  # None: the subagent used no tool, so made no branch
    verdicts, files = out["verdicts"], out["files_changed"]
    last = verdicts[-1]["decision"]
    status = "approved" if last == "approve" else "unreadable" if last == "unreadable" else "unapproved"
    merged, conflict = None, ""
    if branch is not None:
        try:
            merge = status == "approved" or deps.merge_unapproved()
            merged, conflict = await finish_branch(branch, deps.run_workspace(), out.get("reviewed_commit"), files,
                                                   merge=merge, keep=deps.keep_branches())  # fmt: skip
        except (GitError, OSError) as exc:
            return _error_result(brief, f"{brief['agent']}'s branch could not be merged: {exc}; it is kept in "
                                 f"{branch.workspace} (git branch {branch.ref} in {branch.repo})", "error")  # fmt: skip
    reason = "" if status == "approved" else verdicts[-1]["feedback"][:300]
    merge_fields = {"merge": merged["merge"], "changes": len(merged["changes"])} if merged else {}
    emit("returned", brief["agent"], depth=brief["depth"], detail=status, status=status, reason=reason,
         description=brief["description"], call_id=brief["call_id"], round=len(verdicts), **merge_fields)  # fmt: skip
    report = cap_result(out["report"], deps.settings.max_report_chars)
    record = _record(brief, status, verdicts, files, merged)
    content = report + _footer(verdicts, files, merged) + (f"\n{conflict}" if conflict else "")
    # the outcome also travels as the result's artifact (never sent to the model), for code that reads it
    result = ToolMessage(content, tool_call_id=brief["call_id"], name="Task", artifact=record)
    if branch is not None and merged is not None:
        saved = {"content": content, "record": record, "briefs": out["briefs"], "nested": out["delegations"]}
        await close_branch(branch, saved, merged)
    return {"messages": [result], "briefs": out["briefs"], "delegations": [record, *out["delegations"]]}
