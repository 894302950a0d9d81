"""One agent's conversation: model ⇄ tools, and Task calls leaving as Send edges to `delegate`.

START → model ─┬─ (no tool calls) ────────────→ END
               ├─ tools ────────────────────────→ model
               └─ delegate x N (Send, parallel) → model
"""

from __future__ import annotations

from functools import partial
from typing import Any

import structlog
from langgraph.graph import START, StateGraph

from orchestrator.agent_spec import AgentSpec
from orchestrator.graphs.context import RunContext
from orchestrator.graphs.delegation import delegate
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.model_call import call_model
from orchestrator.graphs.progress import emit
from orchestrator.graphs.prompts import agent_system_prompt, system_message, task_tool_schema
from orchestrator.graphs.routers import route_after_turn
from orchestrator.graphs.state import AgentState, Brief
from orchestrator.graphs.tool_node import run_tools
from orchestrator.tools.web_search import anthropic_server_tool

__all__ = ["build_agent_loop", "offered_tools"]


def _schema(deps: Deps, name: str) -> dict[str, Any]:
    if name == "WebSearch" and deps.provider.name == "anthropic":
        return anthropic_server_tool()  # Anthropic runs the searches server-side
    return deps.tools[name].schema()


def offered_tools(deps: Deps, spec: AgentSpec, depth: int) -> list[dict[str, Any]]:
    """Tool schemas this agent may see: its allowlist less what cannot work here (WebSearch has a backend
    only on Anthropic, which runs it server-side), and Task, listing the other agents, only while it may
    still delegate."""
    names = deps.tools.keys() if spec.tools is None else [n for n in spec.tools if n in deps.tools]
    if deps.provider.name != "anthropic":
        names = [n for n in names if n != "WebSearch"]
    schemas = [_schema(deps, name) for name in names]
    if spec.can_delegate and depth < deps.settings.max_depth:
        others = [agent for agent in deps.agents.values() if agent.name != spec.name]
        if others:  # its own description is its system prompt; handing itself its task is no delegation
            schemas.append(task_tool_schema(others))
    return schemas


async def agent_turn(state: AgentState, *, deps: Deps) -> dict[str, Any]:
    """Call the agent's model once with its tools."""
    spec = deps.agents[state["agent"]]
    turns = state.get("turns", 0)
    tools_left = turns < deps.settings.max_turns
    schemas = offered_tools(deps, spec, state["depth"]) if tools_left else []
    chat = deps.chat_model(state["model"])
    runnable = chat.bind_tools(schemas) if schemas else chat
    prompt = agent_system_prompt(spec, deps.named_workspace(), tools_left=tools_left)
    system = system_message(prompt, cache=deps.provider.name == "anthropic")
    emit("turn", spec.name, depth=state["depth"], round=turns + 1)
    with structlog.contextvars.bound_contextvars(agent=spec.name, node="model"):
        reply = await call_model(
            runnable,
            [system, *state["messages"]],
            deps=deps,
            agent=spec.name,
            model=state["model"],
            purpose="turn",
            stream_fields={"depth": state["depth"], "round": turns + 1},
        )
    if not tools_left and reply.tool_calls:  # out of turns: a model that calls tools anyway is not obeyed
        note = f"[turn limit of {deps.settings.max_turns} reached: the tool calls of this last turn were not run]"
        reply = reply.model_copy(update={"tool_calls": [], "content": f"{reply.text}\n\n{note}".strip()})
    return {"messages": [reply], "turns": turns + 1}


def build_agent_loop(deps: Deps) -> StateGraph[AgentState, RunContext, AgentState, AgentState]:
    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("model", partial(agent_turn, deps=deps))
    graph.add_node("tools", partial(run_tools, deps=deps))
    graph.add_node("delegate", partial(delegate, deps=deps), input_schema=Brief)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route_after_turn, ["tools", "delegate", "__end__"])
    graph.add_edge("tools", "model")
    graph.add_edge("delegate", "model")
    return graph
