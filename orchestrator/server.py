"""The graph for LangGraph Server / `langgraph dev` (see langgraph.json): many workers, one Postgres.

The server brings its own checkpointer and thread store, so this returns the uncompiled graph. Agents,
provider and workspace come from the environment, as for the CLI: ANTHROPIC_API_KEY selects Claude,
ORCHESTRATE_WORKSPACE the directory the file tools work in (default: the server's working directory).
"""

from __future__ import annotations

import os
from typing import Any

from langgraph.graph import StateGraph

from orchestrator.config import Settings
from orchestrator.graphs.builder import build_graph
from orchestrator.loader import load_agents
from orchestrator.providers import select_provider

__all__ = ["make_graph"]


def make_graph() -> StateGraph[Any, Any, Any, Any]:
    settings = Settings.from_env()
    provider, _ = select_provider(None, settings=settings)
    workspace = os.environ.get("ORCHESTRATE_WORKSPACE", ".")
    return build_graph(load_agents().agents, provider=provider, workspace=workspace, settings=settings)
