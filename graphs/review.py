"""The review loop: a delegated subtask is worked, reviewed, and revised until approved (bounded).

    START → work → review ─┬─ approved, or max_revisions used → END
                           └─ revise ─→ work (same subagent context + the feedback)

`work` runs the subagent's own agent loop with a fresh context that holds only the brief. `review` asks
the delegating agent's model for a structured `Verdict` (a forced tool call) on the brief, the report and
the evidence (tool calls and changed files); the deterministic evidence check can overrule an approval.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from pathlib import Path
from typing import Any, Literal

import structlog
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import START, StateGraph
from pydantic import BaseModel, Field, ValidationError

from orchestrator.graphs.context import RunContext, current_context
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.evidence import contradicted_claims, missing_work, review_request
from orchestrator.graphs.forced_tool import call_forced_tool
from orchestrator.graphs.progress import emit
from orchestrator.graphs.prompts import (
    FEEDBACK_MAX,
    VERDICT_SCHEMA,
    review_system_prompt,
    revision_message,
)
from orchestrator.graphs.routers import route_after_review
from orchestrator.graphs.state import AgentState, BranchState, Verdict
from orchestrator.isolation import BranchWorkspace, Change, branch_diff, branch_patch, commit_round

__all__ = ["build_branch", "final_text"]


class _VerdictArgs(BaseModel):
    decision: Literal["approve", "revise"]
    feedback: str = Field(default="", max_length=FEEDBACK_MAX * 2)


def final_text(messages: list[AnyMessage]) -> str:
    """The last thing the agent said."""
    return next((m.text for m in reversed(messages) if isinstance(m, AIMessage) and m.text.strip()), "")


async def work(state: BranchState, *, deps: Deps) -> dict[str, Any]:
    """One round of the subagent's own agent loop (with the last feedback, from round 2 on)."""
    brief, conversation = state["brief"], list(state["conversation"])
    if state["verdicts"]:
        conversation.append(HumanMessage(revision_message(state["verdicts"][-1]["feedback"], state["round"])))
    loop_input = AgentState(
        agent=brief["agent"],
        model=state["model"],
        depth=brief["depth"],
        messages=conversation,
        briefs=state["briefs"],
        files_read=state["files_read"],
    )
    out = await deps.agent_loop.ainvoke(loop_input)
    return {
        "conversation": out["messages"],
        "report": final_text(out["messages"]),
        "round": state["round"] + 1,
        "briefs": out["briefs"],
        "files_read": out.get("files_read", {}),
        "files_changed": out.get("files_changed", []),
        "tool_log": out.get("tool_log", []),
        "delegations": out.get("delegations", []),
    }


UNREADABLE = "the review could not be read: the reviewing model gave no Verdict (tool call or JSON object)"


def _parse_verdict(args: dict[str, Any] | None) -> Verdict:
    """The reviewer's verdict, or an `unreadable` one (which ends the branch and is an issue of the run:
    never taken for a revise nobody asked for)."""
    try:
        parsed = _VerdictArgs.model_validate(args if args is not None else {})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "verdict"
        return Verdict(decision="unreadable", feedback=f"{UNREADABLE} ({where}: {problem['msg']})", by="reviewer")
    return Verdict(decision=parsed.decision, feedback=parsed.feedback, by="reviewer")


def _overrule(verdict: Verdict, problems: list[str]) -> Verdict:
    if verdict["decision"] != "approve" or not problems:
        return verdict
    return Verdict(decision="revise", feedback="Evidence check failed: " + "; ".join(problems) + ".", by="evidence")


async def _judge(
    messages: list[BaseMessage], *, deps: Deps, agent: str, model: str, workspace: Path
) -> tuple[Verdict, list[str]]:
    """One review call: the verdict, and (for a revise) its statements about files that the files contradict."""
    with structlog.contextvars.bound_contextvars(agent=agent, node="review"):
        args = await call_forced_tool(messages, VERDICT_SCHEMA, deps=deps, agent=agent, model=model, purpose="review")
    verdict = _parse_verdict(args)
    if verdict["decision"] != "revise":
        return verdict, []
    return verdict, await asyncio.to_thread(contradicted_claims, verdict["feedback"], workspace)


def _round_diff(branch: BranchWorkspace, commit: str) -> tuple[list[Change], dict[str, str]]:
    """The round's diff against the branch's base: the changes, and each modified file's hunks."""
    changes = branch_diff(branch, commit)
    return changes, {c.path: branch_patch(branch, commit, c.path) for c in changes if c.status == "modified"}


def _evidence(state: BranchState, workspace: Path, branch: BranchWorkspace | None) -> tuple[str, list[str], str | None]:
    """The review request (brief, report, tool calls, the changed files as they are, the `branch`'s diff),
    the evidence check's problems and the branch's commit of the round (None: no branch). It reads files and
    commits the branch, so it runs in one thread hop."""
    brief = state["brief"]
    commit = commit_round(branch, state["files_changed"]) if branch else None
    diff = _round_diff(branch, commit) if branch and commit else None
    files = state["files_changed"] if diff is None else [c.path for c in diff[0] if c.status != "deleted"]
    problems = missing_work(brief, state["report"], files, workspace, diff=None if diff is None else diff[0])
    request = review_request(
        brief, state["report"], state["tool_log"], files, workspace=workspace, problems=problems, diff=diff
    )
    return request, problems, commit


async def review(state: BranchState, *, deps: Deps) -> dict[str, Any]:
    """The delegating agent judges the round's result against the brief and the evidence (in a workspace
    of its own: the branch's diff)."""
    brief = state["brief"]
    reviewer = deps.agents[brief["parent"]]
    workspace, lazy = deps.run_workspace(), current_context().branch
    branch = lazy.branch if lazy is not None else None  # None too while the subagent has used no tool
    request, problems, commit = await asyncio.to_thread(_evidence, state, workspace, branch)
    messages: list[BaseMessage] = [SystemMessage(review_system_prompt(reviewer)), HumanMessage(request)]
    judge = partial(_judge, deps=deps, agent=reviewer.name, model=brief["parent_model"], workspace=workspace)
    verdict, misread = await judge(messages)
    if misread:  # a verdict that misread a file is asked for again, once, with the file's facts
        correction = f"The evidence check contradicts your verdict: {'; '.join(misread)}. Judge the work again."
        verdict, misread = await judge([*messages, AIMessage(json.dumps(dict(verdict))), HumanMessage(correction)])
        if misread:  # the facts overrule the statements that contradict them
            facts = f"Evidence check: {'; '.join(misread)}. "
            verdict = Verdict(decision="revise", feedback=facts + verdict["feedback"], by="evidence")
    verdict = _overrule(verdict, problems)
    emit(
        "verdict",
        brief["agent"],
        depth=brief["depth"],
        decision=verdict["decision"],
        by=verdict["by"],
        detail=verdict["feedback"][:200],
        round=state["round"],
        call_id=brief["call_id"],
    )
    return {"verdicts": [verdict], **({"reviewed_commit": commit} if commit else {})}


def build_branch(deps: Deps) -> StateGraph[BranchState, RunContext, BranchState, BranchState]:
    graph = StateGraph(BranchState, context_schema=RunContext)
    graph.add_node("work", partial(work, deps=deps))
    graph.add_node("review", partial(review, deps=deps))
    graph.add_edge(START, "work")
    graph.add_edge("work", "review")
    graph.add_conditional_edges("review", route_after_review, ["work", "__end__"])
    return graph
