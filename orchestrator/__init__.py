"""orchestrate: a senior ML agent plans, delegates over graph edges and reviews; juniors implement.

    from orchestrator import Orchestrator, load_agents, AnthropicProvider
    result = Orchestrator(load_agents(), provider=AnthropicProvider()).run("design a RAG pipeline")

`build_graph` returns the uncompiled LangGraph StateGraph for callers who bring their own checkpointer
or embed it as a subgraph. Everything else lives in submodules and may change.
"""

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.errors import AgentFileError, OrchestrateError, RunError, UserError
from orchestrator.graphs.builder import build_graph
from orchestrator.graphs.context import RunContext
from orchestrator.ledger import Budget
from orchestrator.loader import AgentSet, load_agents
from orchestrator.logs import configure_logging
from orchestrator.providers import AnthropicProvider, FixedProvider, ModelProvider, OpenAIProvider
from orchestrator.runner import Orchestrator, RunResult
from orchestrator.tools.permissions import PermissionPolicy

__all__ = [
    "AgentFileError",
    "AgentSet",
    "AgentSpec",
    "AnthropicProvider",
    "Budget",
    "FixedProvider",
    "ModelProvider",
    "OpenAIProvider",
    "OrchestrateError",
    "Orchestrator",
    "PermissionPolicy",
    "RunContext",
    "RunError",
    "RunResult",
    "Settings",
    "UserError",
    "build_graph",
    "configure_logging",
    "load_agents",
]
