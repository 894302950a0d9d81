"""langgraph.json names a graph built from the environment; tests/integration/test_langgraph_server.py serves it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from orchestrator.graphs.context import RunContext
from orchestrator.server_graph import make_graph, workspace_root
from tests.conftest import REPO


def test_langgraph_json_names_a_module_attribute_not_a_file_path() -> None:
    config = json.loads((REPO / "langgraph.json").read_text())
    module, name = config["graphs"]["orchestrate"].split(":")
    assert importlib.util.find_spec(module) is not None and name == "graph"  # works from any directory


def test_the_graph_records_its_runs_in_the_store_the_environment_names(tmp_path: Path) -> None:
    env = {"ANTHROPIC_API_KEY": "x", "ORCHESTRATE_DB": str(tmp_path / "runs.sqlite")}
    graph = make_graph(env)
    assert graph.context_schema is RunContext and set(graph.nodes) == {"run"}
    assert (tmp_path / "runs.sqlite").is_file()


def test_workspaces_default_to_a_data_directory_never_the_working_directory(tmp_path: Path) -> None:
    assert workspace_root({"ORCHESTRATE_WORKSPACE_ROOT": str(tmp_path)}) == tmp_path
    default = workspace_root({})
    assert default.name == "workspaces" and default != Path.cwd() and Path.cwd() not in default.parents
