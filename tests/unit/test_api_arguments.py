"""The public API refuses bad arguments with a UserError naming the argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import FixedProvider, Orchestrator, UserError, build_graph, load_agents
from tests.support.scripted_model import ScriptedModel


def test_a_workspace_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^workspace '.*/nope' is not an existing directory \(argument workspace\)$"):
        Orchestrator(load_agents(cwd=tmp_path, home=tmp_path), provider=FixedProvider(ScriptedModel()),
                     workspace=tmp_path / "nope", db=tmp_path / "r.db")  # fmt: skip


@pytest.mark.parametrize("agents", [["senior-ml-engineer"], {"a": "not a spec"}, {}])
def test_agents_of_the_wrong_kind_are_refused(agents: object, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^agents: "):
        Orchestrator(agents, provider=FixedProvider(ScriptedModel()), workspace=tmp_path, db=tmp_path / "r.db")  # type: ignore[arg-type]


def test_build_graph_takes_what_load_agents_returns(tmp_path: Path) -> None:
    graph = build_graph(load_agents(cwd=tmp_path, home=tmp_path), provider=FixedProvider(ScriptedModel()))
    assert {"route", "senior-ml-engineer", "ml-engineer"} <= set(graph.nodes)


def test_permission_mode_alone_sets_the_mode(tmp_path: Path) -> None:
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    orchestrator = Orchestrator(
        agents, provider=FixedProvider(ScriptedModel()), workspace=tmp_path, db=tmp_path / "r.db",
        permission_mode="acceptEdits",
    )  # fmt: skip
    with orchestrator:
        assert orchestrator.permissions.mode == "acceptEdits"
