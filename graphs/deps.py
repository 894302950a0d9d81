"""What the graph's nodes need from outside, injected once when the graph is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.ledger import Ledger
from orchestrator.providers import ModelProvider
from orchestrator.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from orchestrator.routing import Router
    from orchestrator.tools.base import ToolSpec


@dataclass
class Deps:
    """Agents, models, tools and bounds for one graph. The agent loop and the review branch refer to each
    other (a subagent may delegate again), so both are compiled lazily from here."""

    agents: Mapping[str, AgentSpec]
    provider: ModelProvider
    router: Router
    tools: Mapping[str, ToolSpec[Any]]
    workspace: Path
    settings: Settings = field(default_factory=Settings)
    permissions: PermissionPolicy = field(default_factory=PermissionPolicy)
    ledger: Ledger | None = None
    """Prices, records and budgets every model call; None records nothing (a bare graph)."""

    def resolve_model(self, spec: AgentSpec, inherited: str) -> str:
        return inherited if spec.model == "inherit" else spec.model

    @cached_property
    def agent_loop(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        from orchestrator.graphs.agent_loop import build_agent_loop

        return build_agent_loop(self).compile()

    @cached_property
    def branch(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        from orchestrator.graphs.review import build_branch

        return build_branch(self).compile()
