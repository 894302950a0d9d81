"""How the graph LangGraph Server serves is built (orchestrator/server.py builds it at import).

It is built once, never on the server's event loop (which rejects blocking calls): the agents
are read, the provider picked (ANTHROPIC_API_KEY selects Claude, else the local models) and the run store
opened here. Each run is configured by its context (RunContext: Studio renders it, an assistant stores it,
a run may override it) and works in its thread's own directory under the workspace root. Runs are recorded
in the run store the CLI reads (`orchestrate runs`, `show`, `replay`).

Environment: ORCHESTRATE_DB (a SQLite file or a postgresql:// URL), else POSTGRES_URI (what a self-hosted
LangGraph Platform sets), else the per-user SQLite file; ORCHESTRATE_WORKSPACE_ROOT, the default root of the
threads' workspaces (else a per-user data directory; never the server's working directory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from langgraph.graph import StateGraph

from orchestrator.config import Settings
from orchestrator.graphs.builder import build_graph
from orchestrator.ledger import Ledger
from orchestrator.loader import load_agents
from orchestrator.pricing import load_prices
from orchestrator.providers import select_provider
from orchestrator.recorded import recorded_graph
from orchestrator.run_store import open_store, this_owner

__all__ = ["make_graph", "workspace_root"]


def workspace_root(env: Mapping[str, str] | None = None) -> Path:
    """Where the threads' workspaces go unless a run's context names a `workspace_root`."""
    env = os.environ if env is None else env
    chosen = env.get("ORCHESTRATE_WORKSPACE_ROOT")
    return Path(chosen).expanduser() if chosen else Path(platformdirs.user_data_dir("orchestrate")) / "workspaces"


def make_graph(env: Mapping[str, str] | None = None) -> StateGraph[Any, Any, Any, Any]:
    """The recorded orchestration graph, configured from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    provider, _ = select_provider(None, settings=settings, env=env)
    store = open_store(env.get("ORCHESTRATE_DB") or env.get("POSTGRES_URI") or None)
    inner = build_graph(
        load_agents().agents, provider=provider, settings=settings, ledger=Ledger(store, load_prices()),
        workspace_root=workspace_root(env),
    ).compile()  # fmt: skip
    return recorded_graph(inner, store, this_owner())
