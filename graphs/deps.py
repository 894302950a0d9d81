"""What the graph's nodes need from outside, injected once when the graph is built, and the run's view of
it: the run's context (graphs/context.py) overrides the workspace, permissions, models and revision bound."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.graphs.context import current_context
from orchestrator.ledger import Ledger
from orchestrator.providers import ModelProvider
from orchestrator.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
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
    workspace_root: Path | None = None
    """When set, each thread works in its own directory under it (LangGraph Server), not in `workspace`."""

    def resolve_model(self, spec: AgentSpec, inherited: str) -> str:
        return inherited if spec.model == "inherit" else spec.model

    def run_workspace(self) -> Path:
        """The running run's workspace directory."""
        return current_context().workspace(self.workspace, self.workspace_root)

    def named_workspace(self) -> Path:
        """The workspace the agent's prompts name: inside a writing delegation its branch's, made or not yet
        (so the prompt stays the same when the branch is made), else the run's."""
        return current_context().branch_workspace or self.run_workspace()

    def run_policy(self) -> PermissionPolicy:
        """The running run's permission policy."""
        return current_context().policy(self.permissions)

    def merge_unapproved(self) -> bool:
        chosen = current_context().merge_unapproved
        return self.settings.merge_unapproved if chosen is None else chosen

    def keep_branches(self) -> bool:
        chosen = current_context().keep_branches
        return self.settings.keep_branches if chosen is None else chosen

    def max_revisions(self) -> int:
        chosen = current_context().max_revisions
        return self.settings.max_revisions if chosen is None else chosen

    def chat_model(self, model: str) -> BaseChatModel:
        """The provider's chat model for `model` (an alias the run's context may map to another id)."""
        return self.provider.chat_model(current_context().models.get(model, model))

    def model_id(self, model: str) -> str:
        return self.provider.model_id(current_context().models.get(model, model))

    @cached_property
    def agent_loop(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        from orchestrator.graphs.agent_loop import build_agent_loop

        return build_agent_loop(self).compile()

    @cached_property
    def branch(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        from orchestrator.graphs.review import build_branch

        return build_branch(self).compile()
