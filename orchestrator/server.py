"""What langgraph.json names: `orchestrator.server:graph`, built at import (orchestrator/server_graph.py
says from what), so the server's event loop never waits on a file or a database while building it."""

from orchestrator.server_graph import make_graph

__all__ = ["graph"]

graph = make_graph()
