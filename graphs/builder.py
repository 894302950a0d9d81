"""The orchestration graph, uncompiled so the caller picks the checkpointer (or embeds it as a subgraph).

START → route → <one node per agent: that agent's loop> → END
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.progress import emit
from orchestrator.graphs.routers import route_to_agent
from orchestrator.graphs.state import RouteInfo, RunState
from orchestrator.ledger import Ledger
from orchestrator.models import ModelProvider
from orchestrator.router import Router, build_router
from orchestrator.tools.base import ToolSpec
from orchestrator.tools.permissions import PermissionPolicy
from orchestrator.tools.registry import ALL_TOOLS

__all__ = ["build_graph"]

log = structlog.get_logger("orchestrator.route")


async def route_task(state: RunState, *, deps: Deps) -> dict[str, Any]:
    """Pick the agent (unless the caller already did) and open its conversation with the task."""
    route = state.get("route")
    if route is None:
        decision = await deps.router.aroute(state["task"])
        route = RouteInfo(
            agent=decision.agent,
            confidence=decision.confidence,
            reason=decision.reason,
            method=decision.method,
        )
    spec = deps.agents[route["agent"]]
    log.info("routed", agent=spec.name, confidence=round(route["confidence"], 4), method=route["method"])
    emit("route", spec.name, depth=0, confidence=route["confidence"], detail=route["reason"], method=route["method"])
    return {
        "route": route,
        "agent": spec.name,
        "depth": 0,
        "briefs": [],
        "model": deps.resolve_model(spec, deps.settings.default_model),
        "messages": [HumanMessage(state["task"])],
    }


def build_graph(
    agents: Mapping[str, AgentSpec],
    *,
    provider: ModelProvider,
    workspace: Path | str = ".",
    settings: Settings | None = None,
    router: Router | None = None,
    tools: Mapping[str, ToolSpec[Any]] | None = None,
    permissions: PermissionPolicy | None = None,
    ledger: Ledger | None = None,
) -> StateGraph[RunState, None, RunState, RunState]:
    """Build the orchestration graph for these agents; compile it with your checkpointer."""
    deps = Deps(
        agents=dict(agents),
        provider=provider,
        router=router or build_router(agents),
        tools=dict(ALL_TOOLS if tools is None else tools),
        workspace=Path(workspace).resolve(),
        settings=settings or Settings(),
        permissions=permissions or PermissionPolicy(),
        ledger=ledger,
    )
    graph = StateGraph(RunState)
    graph.add_node("route", partial(route_task, deps=deps))
    for name in deps.agents:
        graph.add_node(name, deps.agent_loop)
        graph.add_edge(name, END)
    graph.add_edge(START, "route")
    graph.add_conditional_edges("route", route_to_agent, list(deps.agents))
    return graph
