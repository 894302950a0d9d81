"""One model turn by the two-step protocol: `candidate_actions` reads the tool choice, and `run_turn`
chooses an action (unless there is one option), then fills the chosen tool's arguments or writes a text
answer, under the turn policy (`policy`), which breaks the favourite loops of small models.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.tool import ToolCall

from orchestrator.local.engine import LocalEngine, usage_of
from orchestrator.local.guides import Guide
from orchestrator.local.planning import (
    BRIEF_MAX_TOKENS,
    brief_hint,
    guided_task,
    planned_action,
    planning_guide,
    reference_note,
    sectioned_answer,
)
from orchestrator.local.policy import POLICY_KEY, PolicyDecision, TurnPolicy, requested_write, write_first
from orchestrator.local.render import PromptLimits, render_messages
from orchestrator.local.schema import ToolDef
from orchestrator.local.steps import (
    ANSWER,
    GenerationSettings,
    answer_instruction,
    answer_request,
    body_field,
    body_request,
    calls_of,
    choice_request,
    parse_body,
    parse_choice,
    parse_text,
    parse_tool_args,
    progress_note,
    request_of,
    tool_request,
    without,
)
from orchestrator.logs import get_logger

__all__ = ["candidate_actions", "run_turn"]

log = get_logger(__name__)


# --- tool choice ----------------------------------------------------------------------------------


def _forced_name(tool_choice: object) -> str | None:
    """The tool name of a forced choice in any of the accepted spellings, else None."""
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "any", "required", "none"):
        return tool_choice
    if isinstance(tool_choice, Mapping):
        if tool_choice.get("type") == "tool":
            return str(tool_choice["name"])
        if tool_choice.get("type") == "function":
            return str(tool_choice["function"]["name"])
    return None


def _choice_kind(tool_choice: object) -> str | None:
    if isinstance(tool_choice, Mapping):
        return str(tool_choice.get("type"))
    return tool_choice if isinstance(tool_choice, str) else None


def candidate_actions(tools: Sequence[ToolDef], tool_choice: object) -> list[str]:
    """The actions open to this turn: a forced tool; all tools ("any"); nothing but text ("none", or no
    tools); otherwise all tools plus ANSWER. An unknown forced name is a programming error."""
    names = [t.name for t in tools]
    forced = _forced_name(tool_choice)
    if forced is not None:
        if forced not in names:
            raise ValueError(f"tool_choice names {forced!r}, which is not among the bound tools {names}")
        return [forced]
    kind = _choice_kind(tool_choice)
    if kind == "none" or not names:
        return [ANSWER]
    if kind in ("any", "required"):
        return names
    return [*names, ANSWER] if ANSWER not in names else names


# --- one turn -------------------------------------------------------------------------------------


def _tool_message(name: str, args: dict[str, Any]) -> AIMessage:
    call = ToolCall(name=name, args=args, id=f"toolu_local_{uuid.uuid4().hex[:16]}", type="tool_call")
    return AIMessage(content="", tool_calls=[call])


def _step(
    engine: LocalEngine, step: str, request: dict[str, Any], usage: list[int], *, stop_loops: bool = False
) -> dict[str, Any]:
    response = engine.complete(step, request, stop_loops=stop_loops)
    prompt, output = usage_of(response)
    usage[0] += prompt
    usage[1] += output
    return response


def _choose(
    engine: LocalEngine,
    chat: list[dict[str, str]],
    tools: Sequence[ToolDef],
    actions: list[str],
    settings: GenerationSettings,
    usage: list[int],
    note: str,
) -> str:
    if len(actions) == 1:
        return actions[0]
    response = _step(engine, "choose", choice_request(chat, tools, actions, settings, note), usage)
    return parse_choice(response, actions)


def _body(
    engine: LocalEngine,
    chat: list[dict[str, str]],
    tool: ToolDef,
    field: str,
    args: dict[str, Any],
    settings: GenerationSettings,
    note: str,
    usage: list[int],
) -> str:
    request = body_request(chat, tool, field, args, settings, note)
    text = parse_body(_step(engine, "body", request, usage, stop_loops=True))
    limit = tool.schema["properties"][field].get("maxLength")
    return text[:limit] if isinstance(limit, int) else text


def _tool_args(
    engine: LocalEngine,
    chat: list[dict[str, str]],
    tool: ToolDef,
    settings: GenerationSettings,
    note: str,
    usage: list[int],
    policy: TurnPolicy,
    body_hint: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any] | None:
    """The chosen tool's arguments: JSON under the schema's grammar, then the body (if any) as text, with
    `body_hint(args)` added to the note when given. A body that only repeats a tool result is asked for
    once more; if it repeats one again, there are no usable arguments (None)."""
    body = body_field(tool)
    short = tool if body is None else without(tool, body)
    args: dict[str, Any] = {}
    if short.schema.get("properties"):
        args = parse_tool_args(_step(engine, "tool", tool_request(chat, short, settings, note), usage), short)
    if body is None:
        return args
    if body_hint is not None:
        note = f"{note}\n{body_hint(args)}".strip()
    text = policy.without_orchestration_text(tool.name, _body(engine, chat, tool, body, args, settings, note, usage))
    if policy.repeats_a_result(tool.name, text, again=False):
        retry_note = f"{note}\nThe {body} must be new text of its own, not a copy of a tool result.".strip()
        text = _body(engine, chat, tool, body, args, settings, retry_note, usage)
        if policy.repeats_a_result(tool.name, text, again=True):
            return None
    return {**args, body: text}


def _first_action(
    engine: LocalEngine, chat: list[dict[str, str]], tools: Sequence[ToolDef], open_now: list[str],
    settings: GenerationSettings, usage: list[int], note: str, policy: TurnPolicy, guide: Guide | None,
    first_write: tuple[list[str], PolicyDecision] | None,
) -> str:  # fmt: skip
    """The planned action of a guided senior (planning.py), a first Write (`write_requested`), else the
    model's choice."""
    planned = planned_action(policy.messages, open_now) if guide is not None else None
    if planned is None and first_write is not None:
        planned = "Write", first_write[1]
    if planned is None:
        return _choose(engine, chat, tools, open_now, settings, usage, note)
    policy.decisions.append(planned[1])
    return planned[0]


def run_turn(
    engine: LocalEngine,
    messages: Sequence[BaseMessage],
    tools: Sequence[ToolDef],
    tool_choice: object,
    settings: GenerationSettings,
    limits: PromptLimits | None = None,
) -> AIMessage:
    """One model turn by the two-step protocol: choose (unless there is one option), then act, under the
    turn policy (orchestrator/local/policy.py: what is offered, which moves are overruled). Facts from
    `progress_note` go with the choice and the arguments. A delegating agent with a guide for its request
    follows the plan in planning.py. The reply carries the policy's decisions."""
    actions = candidate_actions(tools, tool_choice)
    chat = render_messages(messages, limits)
    note = progress_note(messages) if len(actions) > 1 else ""
    guide = planning_guide(messages, tools)
    if guide is not None:
        note = f"{reference_note(guide)}\n{note}".strip()
    policy = TurnPolicy(messages, model=engine.name)
    usage = [0, 0]
    reply = None
    open_now = policy.offered(actions)
    first_write = write_first(messages, open_now) if guide is None else None
    action = _first_action(engine, chat, tools, open_now, settings, usage, note, policy, guide, first_write)
    while action != ANSWER or ANSWER in {t.name for t in tools}:
        tool = next(t for t in tools if t.name == action)
        if first_write is not None and tool.name == "Write":
            tool = requested_write(tool, first_write[0])
        if guide is not None and tool.name == "Task":
            brief = replace(settings, body_max_tokens=BRIEF_MAX_TOKENS)
            hint = partial(brief_hint, guide)
            args = _tool_args(engine, chat, guided_task(tool, guide), brief, note, usage, policy, hint)
        else:
            args = _tool_args(engine, chat, tool, settings, note, usage, policy)
        move = policy.judge(tool.name, args, open_now)
        if move == "choose_again":
            open_now.remove(tool.name)
            action = _choose(engine, chat, tools, open_now, settings, usage, note)
            continue
        if move == "answer" or args is None:
            action = ANSWER
        else:
            reply = _tool_message(tool.name, args)
        break
    if reply is None and guide is not None:

        def complete(request: dict[str, Any]) -> dict[str, Any]:
            # a pick under a grammar cannot be forced to end; free text can
            return _step(engine, "section", request, usage, stop_loops="response_format" not in request)

        text, dropped = sectioned_answer(complete, chat, guide, messages, settings)
        policy.decisions.extend(dropped)
        reply = AIMessage(content=text)
    if reply is None:
        calls = calls_of(messages)
        instruction = answer_instruction(request_of(messages), any(c.ok for c in calls)) if tools or calls else None
        request = answer_request(chat, settings, instruction)
        reply = AIMessage(content=parse_text(_step(engine, "answer", request, usage, stop_loops=True)))
    reply.usage_metadata = {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)}
    decisions = [d.as_dict() for d in policy.decisions]
    reply.response_metadata = {"model_name": engine.name, "action": action, POLICY_KEY: decisions}
    return reply
