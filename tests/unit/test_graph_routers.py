"""The graph's routers and readers are pure: tables of state in, decision out."""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Send

from orchestrator.errors import UserError
from orchestrator.graphs.permission_gate import read_answer
from orchestrator.graphs.route import read_task
from orchestrator.graphs.routers import route_after_review, route_after_turn
from tests.support.scripted_model import ai, tool_call

APPROVE = {"decision": "approve", "feedback": "ok", "by": "reviewer"}
REVISE = {"decision": "revise", "feedback": "redo", "by": "reviewer"}


@pytest.mark.parametrize(
    ("verdicts", "max_revisions", "expected"),
    [
        ([APPROVE], 2, "__end__"),
        ([REVISE], 2, "work"),
        ([REVISE, REVISE], 2, "work"),
        ([REVISE, REVISE, REVISE], 2, "__end__"),  # out of revision rounds: the result returns as it is
        ([REVISE], 0, "__end__"),  # the run's context may allow no revision at all
        ([REVISE, APPROVE], 0, "__end__"),
    ],
)
def test_route_after_review(verdicts: list[Any], max_revisions: int, expected: str) -> None:
    assert route_after_review({"verdicts": verdicts, "max_revisions": max_revisions}) == expected  # type: ignore[typeddict-item]


def _turn(message: AIMessage) -> Any:
    return {"messages": [message], "briefs": [], "agent": "senior", "model": "opus", "depth": 0}


TASK = tool_call("Task", {"description": "d", "prompt": "p", "subagent_type": "ml-engineer"})


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (ai("done"), "__end__"),
        (ai("", tool_call("Read", {"file_path": "a"})), "tools"),
        (ai("", TASK), ["delegate"]),
        (ai("", tool_call("Read", {"file_path": "a"}), TASK), ["tools", "delegate"]),
    ],
)
def test_route_after_turn(message: AIMessage, expected: object) -> None:
    route = route_after_turn(_turn(message))
    assert (route if isinstance(route, str) else [s.node for s in route if isinstance(s, Send)]) == expected


@pytest.mark.parametrize(
    ("state", "task", "opening"),
    [
        ({"task": "plan it"}, "plan it", ["plan it"]),  # a task opens the conversation as a human message
        ({"messages": [HumanMessage("chat it")]}, "chat it", []),  # chat input: already in the conversation
        ({"task": "old", "messages": [HumanMessage("old"), AIMessage("answer"), HumanMessage("next")]}, "next", []),
        ({"task": "new", "messages": [HumanMessage("old"), AIMessage("answer")]}, "new", ["new"]),
    ],
)
def test_read_task(state: Any, task: str, opening: list[str]) -> None:
    read, messages = read_task(state)
    assert (read, [m.text for m in messages]) == (task, opening)


@pytest.mark.parametrize(("state", "culprit"), [({}, "task"), ({"messages": [HumanMessage("  ")]}, "messages[-1]")])
def test_read_task_names_the_missing_input(state: Any, culprit: str) -> None:
    with pytest.raises(UserError, match=f"^{re.escape(culprit)}: "):
        read_task(state)


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        ("allow", "allow"), ("deny", "deny"), ("always", "always"), (" Allow ", "allow"), (True, "allow"),
        (False, "deny"), ("yes", None), ("", None), (None, None), (1, None), ({"answer": "allow"}, None),
    ],
)  # fmt: skip
def test_read_answer(value: object, answer: str | None) -> None:
    assert read_answer(value) == answer
