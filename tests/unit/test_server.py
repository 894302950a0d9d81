"""langgraph.json points at a factory that builds the orchestration graph from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.server import make_graph
from tests.conftest import REPO


def test_langgraph_json_names_the_factory() -> None:
    config = json.loads((REPO / "langgraph.json").read_text())
    path, name = config["graphs"]["orchestrate"].split(":")
    assert (REPO / path).is_file() and name == "make_graph"


def test_factory_builds_the_graph_with_claude_when_a_key_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    monkeypatch.setenv("ORCHESTRATE_WORKSPACE", str(tmp_path))
    nodes = set(make_graph().compile().get_graph().nodes)
    assert {"route", "senior-ml-engineer", "ml-engineer"} <= nodes
