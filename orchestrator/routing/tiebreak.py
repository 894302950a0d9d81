"""The tie-break: when the router is unsure, one cheap forced tool call asks a model to pick the agent.

The tool is an Anthropic-format dict whose `agent` argument is an enum of the candidates, so a
constrained decoder (the local llama model) can only produce a valid name; `maxLength` on the reason
bounds its output. The answer is still validated with pydantic: a model that ignores the schema, names
an agent that is not a candidate, or fails outright yields a `TiebreakResult` with `choice=None`, and the
router falls back to its safe default. How the question reaches a model is the caller's `Ask`: the graph
sends it through graphs/model_call.py like every other model call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ModelCallError
from orchestrator.logs import get_logger

__all__ = [
    "REASON_MAX_CHARS",
    "TOOL_NAME",
    "Ask",
    "Tiebreak",
    "TiebreakChoice",
    "TiebreakResult",
    "messages",
    "parse_reply",
    "tool_schema",
]

log = get_logger("orchestrator.routing")

TOOL_NAME = "choose_agent"
REASON_MAX_CHARS = 200
_TASK_MAX_CHARS = 4000
_DESCRIPTION_MAX_CHARS = 500
_PASSAGE_MAX_CHARS = 200

Ask = Callable[[list[BaseMessage], dict[str, Any]], Awaitable[AIMessage]]
"""Puts the question (messages, the forced tool's schema) to the tie-break model and returns its reply;
a failed call raises `ModelCallError` (what graphs/model_call.py raises)."""

_SYSTEM = (
    "You route a task to the agent whose speciality it is. Judge by what the task is about: the systems, "
    "tools, data and deliverables it names. Words like plan, design, review, debug or test belong to every "
    "agent's work and decide nothing on their own. Call "
    f"{TOOL_NAME} once: first one short sentence saying what the task is about and whose speciality that is, "
    "then the agent's exact name. When two agents "
    "share a field and differ in seniority, prefer the implementation agent only for a well-specified "
    "task, and the senior one for design, trade-offs, estimates and debugging with an unknown cause."
)


class TiebreakChoice(BaseModel):
    """The tool call's arguments, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=REASON_MAX_CHARS)


@dataclass(frozen=True)
class TiebreakResult:
    """A valid choice, or None and what went wrong (for the fallback decision's reason)."""

    choice: TiebreakChoice | None
    problem: str = ""


def tool_schema(candidates: Sequence[str]) -> dict[str, Any]:
    """The forced tool, in Anthropic format: {"name", "description", "input_schema"}."""
    return {
        "name": TOOL_NAME,
        "description": "Pick the one agent that should take the task.",
        "input_schema": {
            "type": "object",
            "properties": {  # the reason first: a model that names the task's subject before the agent picks better
                "reason": {
                    "type": "string",
                    "maxLength": REASON_MAX_CHARS,
                    "description": "One short sentence: what the task is about, and whose speciality that is.",
                },
                "agent": {"type": "string", "enum": list(candidates), "description": "The agent's name."},
            },
            "required": ["reason", "agent"],
            "additionalProperties": False,
        },
    }


def messages(task: str, candidates: Mapping[str, str], passages: Mapping[str, str] | None = None) -> list[BaseMessage]:
    """System instructions plus the task and each candidate's (truncated) description, and where the
    router matched the task by meaning, the line of the agent's file it matched best."""
    shown = task if len(task) <= _TASK_MAX_CHARS else task[:_TASK_MAX_CHARS] + " [truncated]"
    passages = passages or {}
    lines = [
        f"- {name}: {desc[:_DESCRIPTION_MAX_CHARS]}"
        + (f"\n  Closest line of its file: {passages[name][:_PASSAGE_MAX_CHARS]}" if name in passages else "")
        for name, desc in candidates.items()
    ]
    body = f"Task:\n{shown}\n\nAgents:\n" + "\n".join(lines)
    return [SystemMessage(_SYSTEM), HumanMessage(body)]


@dataclass(frozen=True)
class Tiebreak:
    """How long the tie-break may take, and how its answer is judged."""

    timeout_s: float | None = 30.0

    async def decide(
        self, task: str, candidates: Mapping[str, str], ask: Ask, passages: Mapping[str, str] | None = None
    ) -> TiebreakResult:
        """One forced tool call; never raises for a failed call, a timeout or a bad answer (see module doc).
        A budget stop is not a failure of the tie-break: it ends the run."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                reply = await ask(messages(task, candidates, passages), tool_schema(list(candidates)))
        except (ModelCallError, TimeoutError) as exc:
            log.warning("route_tiebreak_failed", error=type(exc).__name__, detail=str(exc)[:200])
            return TiebreakResult(None, f"the tie-break model failed ({type(exc).__name__})")
        log.info("route_tiebreak", seconds=round(time.perf_counter() - started, 3))
        return parse_reply(reply, candidates)


def parse_reply(reply: object, candidates: Mapping[str, str]) -> TiebreakResult:
    """Validate the model's tool call against the schema and the candidate list."""
    if not isinstance(reply, AIMessage) or not reply.tool_calls:
        return TiebreakResult(None, "the tie-break model did not call the tool")
    try:
        choice = TiebreakChoice.model_validate(reply.tool_calls[0]["args"])
    except ValidationError as exc:
        return TiebreakResult(None, f"the tie-break answer was invalid ({exc.error_count()} errors)")
    if choice.agent not in candidates:
        return TiebreakResult(None, f"the tie-break model named {choice.agent[:60]!r}, not a candidate")
    return TiebreakResult(choice)
