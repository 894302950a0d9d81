"""RunContext: the run's configuration, validated at the edge (a server's client, the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from pydantic import ValidationError
from typing_extensions import TypedDict

from orchestrator.errors import UserError
from orchestrator.graphs.context import RunContext, current_context
from orchestrator.ledger import Budget
from orchestrator.tools.permissions import PermissionPolicy

DEFAULT = PermissionPolicy()


def test_the_schema_has_exactly_the_documented_keys() -> None:
    assert list(RunContext.model_json_schema()["properties"]) == [
        "workspace_root", "permission_mode", "settings", "max_cost", "max_delegation_cost", "max_revisions", "models",
        "merge_unapproved", "keep_branches",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "culprit"),
    [
        ({"permission_mode": "yolo"}, "permission_mode"),
        ({"max_cost": 0}, "max_cost"),
        ({"max_cost": float("inf")}, "max_cost"),
        ({"max_revisions": -1}, "max_revisions"),
        ({"workspace": "/etc"}, "workspace"),  # what only the CLI sets is not a client's to set
        ({"run_id": "other"}, "run_id"),
    ],
)
def test_bad_fields_are_refused_naming_them(fields: dict[str, object], culprit: str) -> None:
    with pytest.raises(ValidationError, match=culprit):
        RunContext.model_validate(fields)


def test_settings_are_claude_code_json_and_a_bad_rule_names_its_key() -> None:
    context = RunContext(settings={"permissions": {"allow": ["Bash(git status)"], "defaultMode": "acceptEdits"}})
    policy = context.policy(DEFAULT)
    assert policy.mode == "acceptEdits" and [r.text for r in policy.rules.allow] == ["Bash(git status)"]
    assert (
        RunContext(permission_mode="plan", settings={"permissions": {"defaultMode": "acceptEdits"}})
        .policy(DEFAULT)
        .mode
        == "plan"
    )
    with pytest.raises(ValidationError, match=r"context.settings: permissions.deny\[1\]: invalid rule"):
        RunContext(settings={"permissions": {"deny": ["Read", "Bash("]}})


def test_unset_fields_keep_the_graphs_defaults(tmp_path: Path) -> None:
    context = RunContext()
    assert context.policy(DEFAULT) is DEFAULT and context.workspace(tmp_path, None) == tmp_path
    assert context.budget == Budget()


def test_a_local_context_carries_its_workspace_policy_and_budget_into_delegations(tmp_path: Path) -> None:
    policy = PermissionPolicy(mode="acceptEdits")
    context = RunContext.local(workspace=tmp_path, policy=policy, budget=Budget(max_cost=2.0)).delegated("a")
    nested = context.delegated("b")
    assert nested.delegation == "a/b/" and nested.policy(DEFAULT) is policy
    assert nested.workspace(Path("/elsewhere"), Path("/root")) == tmp_path and nested.budget.max_cost == 2.0


class _State(TypedDict):
    workspace: str


async def test_a_workspace_root_gives_each_thread_its_own_directory(tmp_path: Path) -> None:
    async def where(state: _State) -> _State:
        return {"workspace": str(current_context().workspace(Path("/default"), None))}

    graph = StateGraph(_State, context_schema=RunContext)
    graph.add_node("where", where)
    graph.add_edge(START, "where")
    graph.add_edge("where", END)
    compiled = graph.compile(checkpointer=InMemorySaver())
    context = {"workspace_root": str(tmp_path)}  # as a server passes it: a dict, coerced to RunContext
    seen = [
        (await compiled.ainvoke({"workspace": ""}, {"configurable": {"thread_id": t}}, context=context))["workspace"]
        for t in ("t-1", "t-2")
    ]
    assert seen == [str(tmp_path / "t-1"), str(tmp_path / "t-2")]
    bad = {"configurable": {"thread_id": "../up"}}
    with pytest.raises(UserError, match=r"thread id '\.\./up' cannot name a workspace directory"):
        await compiled.ainvoke({"workspace": ""}, bad, context=context)
