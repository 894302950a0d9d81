"""The orchestration graph, uncompiled so the caller picks the checkpointer (or embeds it as a subgraph).

START → route → <one node per agent: that agent's loop> → END
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.graphs.context import RunContext
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.route import async_only, route_task
from orchestrator.graphs.routers import route_to_agent
from orchestrator.graphs.state import RunInput, RunState
from orchestrator.ledger import Ledger
from orchestrator.loader import AgentSet, agent_mapping
from orchestrator.providers import ModelProvider
from orchestrator.routing import Router, build_router
from orchestrator.tools.base import ToolSpec
from orchestrator.tools.permissions import PermissionPolicy
from orchestrator.tools.registry import ALL_TOOLS

__all__ = ["build_graph"]


def build_graph(
    agents: AgentSet | Mapping[str, AgentSpec],
    *,
    provider: ModelProvider,
    workspace: Path | str = ".",
    settings: Settings | None = None,
    router: Router | None = None,
    tools: Mapping[str, ToolSpec[Any]] | None = None,
    permissions: PermissionPolicy | None = None,
    ledger: Ledger | None = None,
    workspace_root: Path | str | None = None,
) -> StateGraph[RunState, RunContext, RunInput, RunState]:
    """Build the orchestration graph for these agents; compile it with your checkpointer. Tools work in
    `workspace`, or, with `workspace_root`, each thread in its own directory under it; a run's context
    (RunContext) may choose either for itself."""
    by_name = agent_mapping(agents)
    deps = Deps(
        agents=by_name,
        provider=provider,
        router=router or build_router(by_name),
        tools=dict(ALL_TOOLS if tools is None else tools),
        workspace=Path(workspace).resolve(),
        settings=settings or Settings(),
        permissions=permissions or PermissionPolicy(),
        ledger=ledger,
        workspace_root=None if workspace_root is None else Path(workspace_root).expanduser().resolve(),
    )
    graph = StateGraph(RunState, context_schema=RunContext, input_schema=RunInput)
    graph.add_node("route", async_only(partial(route_task, deps=deps)))
    for name in deps.agents:
        graph.add_node(name, deps.agent_loop)
        graph.add_edge(name, END)
    graph.add_edge(START, "route")
    graph.add_conditional_edges("route", route_to_agent, list(deps.agents))
    return graph
