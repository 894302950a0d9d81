"""Graph state: plain TypedDicts and their reducers.

`AgentState` is one agent's conversation (the agent loop). `BranchState` is one delegated subtask: the
subagent's conversation plus the review loop around it. `RunState` is the top of a run: the task, the
routing decision and the chosen agent's conversation; `RunInput` is what a run may start from.

Accumulators (`tool_log`, `delegations`, ...) start empty each time a loop is invoked, so what a
loop returns is exactly what that invocation added; callers merge it into their own state.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict  # on 3.11, pydantic (LangGraph Server's schemas) needs this one

__all__ = [
    "AgentState",
    "BranchRecord",
    "BranchState",
    "Brief",
    "DelegationRecord",
    "RouteInfo",
    "RunInput",
    "RunState",
    "ToolEvent",
    "Verdict",
    "merge_versions",
    "union",
]


def merge_versions(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    """Path -> the file version an agent context last saw; newer reports win."""
    return {**left, **right}


def union(left: list[str], right: list[str]) -> list[str]:
    """Ordered set union (first occurrence wins)."""
    return list(dict.fromkeys([*left, *right]))


class ToolEvent(TypedDict):
    """One tool call as review evidence: what was asked and whether it worked."""

    tool: str
    args: str
    ok: bool
    result: str
    path: NotRequired[str]
    """The file it names (`file_path`), workspace-relative; absent when it names none."""


class Verdict(TypedDict):
    decision: Literal["approve", "revise", "unreadable"]
    """unreadable: the reviewing model gave no verdict that could be read (the branch ends, as an issue)."""
    feedback: str
    by: Literal["reviewer", "evidence"]
    """Who decided: the reviewing model, or the evidence check overriding an approval."""


class BranchRecord(TypedDict):
    """A writing delegation's own workspace (graphs/isolated.py) and what became of its work."""

    kind: Literal["worktree", "snapshot"]
    where: str
    """The directory the subagent worked in."""
    ref: str
    """Its git branch (in `repo`), which holds each reviewed round as a commit."""
    repo: str
    commit: str
    """The branch's last commit: the work as it was reviewed last."""
    changes: list[dict[str, str]]
    """Files added, modified or deleted against the branch's base: {"status", "path"}."""
    merge: Literal["merged", "conflict", "not merged"]
    conflicts: list[str]
    """Paths that conflicted (nothing of the branch landed)."""
    kept: bool
    """Whether the branch still exists (a merged one is removed unless kept)."""


class DelegationRecord(TypedDict):
    """What happened to one Task call (also nested ones)."""

    id: str
    agent: str
    description: str
    depth: int
    parent: str
    status: Literal["approved", "unapproved", "unreadable", "refused", "error"]
    rounds: int
    verdicts: list[Verdict]
    files_changed: list[str]
    branch: NotRequired[BranchRecord]
    """Absent when the delegation shared the main workspace (its agent only reads)."""


class RouteInfo(TypedDict):
    agent: str
    confidence: float
    reason: str
    method: str


class _Accumulators(TypedDict, total=False):
    turns: int
    files_read: Annotated[dict[str, int], merge_versions]
    """Workspace-relative path -> mtime_ns when this context last read or wrote it (Write/Edit need it)."""
    files_changed: Annotated[list[str], union]
    tool_log: Annotated[list[ToolEvent], operator.add]
    delegations: Annotated[list[DelegationRecord], operator.add]


class AgentState(_Accumulators):
    agent: str
    """Name of the agent whose conversation this is."""
    model: str
    """Its model, resolved ("inherit" already replaced by the parent's)."""
    depth: int
    """0 for the top agent, parent's depth + 1 for a subagent."""
    messages: Annotated[list[AnyMessage], add_messages]
    briefs: Annotated[list[str], union]
    """Every Task brief seen in this run so far (an identical brief is refused)."""


class RunState(AgentState):
    task: str
    route: NotRequired[RouteInfo]


class RunInput(TypedDict, total=False):
    """What a run starts from: a `task`, or chat `messages` whose last human message is the task (what
    LangGraph Studio and Agent Chat UI send); `route` forces the agent."""

    task: str
    messages: Annotated[list[AnyMessage], add_messages]
    route: RouteInfo


class Brief(TypedDict):
    """A Task call on its way to a subagent."""

    call_id: str
    agent: str
    description: str
    prompt: str
    parent: str
    parent_model: str
    depth: int
    briefs: list[str]
    position: int
    """Its place among the turn's Task calls (0-based): calls past `max_parallel_tasks` are refused."""


class BranchState(TypedDict):
    brief: Brief
    model: str
    conversation: list[AnyMessage]
    """The subagent's own context across revision rounds (overwritten each round)."""
    round: int
    max_revisions: int
    """Review rounds that may send the result back (the run's context, else the graph's settings)."""
    report: str
    files_read: Annotated[dict[str, int], merge_versions]
    verdicts: Annotated[list[Verdict], operator.add]
    briefs: Annotated[list[str], union]
    files_changed: Annotated[list[str], union]
    tool_log: Annotated[list[ToolEvent], operator.add]
    delegations: Annotated[list[DelegationRecord], operator.add]
    reviewed_commit: NotRequired[str]
    """The branch's commit the last review judged: what merges (nothing works on the branch after it)."""
