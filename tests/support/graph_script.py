"""The orchestration graph driven by the scripted fake: who answers what (`turn`, `review_of`, `verdict`),
Task arguments (`task`) and an orchestrator over one scripted model (`make`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import FixedProvider, Orchestrator, Settings
from orchestrator.loader import AgentSet
from orchestrator.runner import AskHandler
from orchestrator.tools.permissions import PermissionMode, PermissionPolicy
from tests.support.scripted_model import Call, Reply, ScriptedModel, ai, tool_call

__all__ = ["JUNIOR", "SENIOR", "FakeAPIError", "make", "review_of", "task", "turn", "verdict"]

SENIOR, JUNIOR = "senior-ml-engineer", "ml-engineer"


class FakeAPIError(Exception):
    """Stands for a provider error that survived the SDK's retries."""


def turn(agent: str, *, brief: str | None = None, after: str | None = None) -> Callable[[Call], bool]:
    """A model turn of `agent`; optionally only in the branch whose brief contains `brief`, and only once
    a tool result containing `after` is in its context."""

    def accepts(call: Call) -> bool:
        if call.agent != agent or call.purpose != "turn":
            return False
        if brief is not None and brief not in call.first_human:
            return False
        results = " ".join(m.text for m in call.tool_results)
        return after is None or after in results

    return accepts


def review_of(brief: str) -> Callable[[Call], bool]:
    return lambda call: call.purpose == "review" and brief in call.last.text


def task(description: str, prompt: str, agent: str = JUNIOR) -> dict[str, str]:
    return {"description": description, "prompt": prompt, "subagent_type": agent}


def verdict(decision: str, feedback: str = "ok", *, brief: str = "") -> Reply:
    """A review answer, only for a review (of the brief containing `brief`)."""
    answer = ai("", tool_call("Verdict", {"decision": decision, "feedback": feedback}))
    return Reply(answer, when=review_of(brief))


def make(
    agents: AgentSet,
    script: list[Reply],
    workspace: Path,
    *,
    mode: PermissionMode = "acceptEdits",
    ask: AskHandler | None = None,
    **settings: Any,
) -> tuple[Orchestrator, ScriptedModel]:
    model = ScriptedModel(script)
    provider = FixedProvider(model, errors=(FakeAPIError,))
    orchestrator = Orchestrator(
        agents, provider=provider, workspace=workspace, settings=Settings(**settings),
        permissions=PermissionPolicy(mode=mode), ask=ask,
    )  # fmt: skip
    return orchestrator, model
