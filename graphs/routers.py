"""Pure routing functions: state in, next node(s) out. Table-tested without models or I/O."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from langchain_core.messages import AIMessage
from langchain_core.messages.tool import ToolCall
from langgraph.types import Send

from orchestrator.graphs.prompts import TASK_ALIASES
from orchestrator.graphs.state import AgentState, BranchState, Brief, RunState

__all__ = ["brief_key", "route_after_review", "route_after_turn", "route_to_agent"]


def route_to_agent(state: RunState) -> str:
    """After routing: the node named after the chosen agent."""
    return state["agent"]


def brief_key(agent: str, prompt: str) -> str:
    """Identity of a brief: the same prompt to the same agent, whitespace aside."""
    normalised = re.sub(r"\s+", " ", prompt).strip().lower()
    return hashlib.sha256(f"{agent}\n{normalised}".encode()).hexdigest()[:16]


def _brief(state: AgentState, call: ToolCall, seen: list[str], position: int) -> Brief:
    args = call["args"]
    return Brief(
        call_id=str(call["id"]),
        agent=str(args.get("subagent_type", "")),
        description=str(args.get("description", "")),
        prompt=str(args.get("prompt", "")),
        parent=state["agent"],
        parent_model=state["model"],
        depth=state["depth"] + 1,
        briefs=list(seen),
        position=position,
    )


def route_after_turn(state: AgentState) -> list[Send] | Literal["tools", "__end__"]:
    """No tool calls: the agent is done. Task calls fan out to `delegate` (one Send each, in parallel);
    other tool calls go to `tools` (alongside the Sends when a turn mixes both)."""
    last = state["messages"][-1]
    calls = last.tool_calls if isinstance(last, AIMessage) else []
    if not calls:
        return "__end__"
    seen = list(state["briefs"])
    sends = []
    for position, call in enumerate(c for c in calls if c["name"] in TASK_ALIASES):
        brief = _brief(state, call, seen, position)
        sends.append(Send("delegate", brief))
        seen.append(brief_key(brief["agent"], brief["prompt"]))
    if len(sends) == len(calls):
        return sends
    return [Send("tools", state), *sends] if sends else "tools"


def route_after_review(state: BranchState) -> Literal["work", "__end__"]:
    """Approved, unreadable (another round would not read better) or out of revision rounds: return the
    result. Otherwise another round of work."""
    verdicts = state["verdicts"]
    if verdicts[-1]["decision"] != "revise" or len(verdicts) > state["max_revisions"]:
        return "__end__"
    return "work"
