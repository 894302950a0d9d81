"""One model turn by the two-step protocol: `candidate_actions` reads the tool choice, and `run_turn`
chooses an action (unless there is one option), then fills the chosen tool's arguments or writes a text
answer, breaking the favourite loops of small models (repeated calls) on the way.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import ToolCall

from orchestrator.file_mentions import requested_files
from orchestrator.local.engine import LocalEngine, usage_of
from orchestrator.local.render import PromptLimits, render_messages
from orchestrator.local.schema import ToolDef
from orchestrator.local.steps import (
    ANSWER,
    Call,
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
from orchestrator.tools.permissions import EDIT_TOOLS

__all__ = [
    "candidate_actions",
    "open_actions",
    "run_turn",
]

log = structlog.get_logger()


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


def _last_success(messages: Sequence[BaseMessage]) -> tuple[str, dict[str, Any]] | None:
    """The previous turn's single tool call, if the conversation ends with it and it succeeded."""
    if len(messages) < 2 or not isinstance(messages[-1], ToolMessage) or messages[-1].status == "error":
        return None
    previous = messages[-2]
    if not isinstance(previous, AIMessage) or len(previous.tool_calls) != 1:
        return None
    return previous.tool_calls[0]["name"], previous.tool_calls[0]["args"]


def _failed_since_success(messages: Sequence[BaseMessage]) -> list[tuple[str, dict[str, Any]]]:
    """The calls that failed since the last call that succeeded: repeating one cannot help."""
    failed: list[tuple[str, dict[str, Any]]] = []
    for call in calls_of(messages):
        if call.ok:
            failed.clear()
        elif call.ok is False:
            failed.append((call.name, call.args))
    return failed


def _shape(text: str) -> str:
    """Text with its numbers blanked, so "Updated file a.md (18 lines)." matches "... (17 lines)."."""
    return re.sub(r"\d+", "#", text.strip())


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
    results: frozenset[str] = frozenset(),
) -> dict[str, Any] | None:
    """The chosen tool's arguments: JSON under the schema's grammar, then the body (if any) as text.
    A body that only repeats one of the conversation's tool results (`results` holds their `_shape`) is
    asked for once more; if it repeats one again, there are no usable arguments (None)."""
    body = body_field(tool)
    short = tool if body is None else without(tool, body)
    args: dict[str, Any] = {}
    if short.schema.get("properties"):
        args = parse_tool_args(_step(engine, "tool", tool_request(chat, short, settings, note), usage), short)
    if body is None:
        return args
    text = _body(engine, chat, tool, body, args, settings, note, usage)
    if _shape(text) in results:
        log.info("local_body_repeated_a_result", model=engine.name, tool=tool.name)
        retry_note = f"{note}\nThe {body} must be new text of its own, not a copy of a tool result.".strip()
        text = _body(engine, chat, tool, body, args, settings, retry_note, usage)
    return None if _shape(text) in results else {**args, body: text}


def _calls_this_round(messages: Sequence[BaseMessage]) -> list[Call]:
    """The tool calls since the latest human turn (the request, or the latest review feedback)."""
    turns = [i for i, m in enumerate(messages) if m.type == "human"]
    return calls_of(messages[turns[-1] :]) if turns else []


def _too_early_to_answer(messages: Sequence[BaseMessage], patience: int = 6) -> bool:
    """A request that asks for files is not answered before a tool call has worked, and review feedback
    sent back on such a request (a later human turn) not before a Write or Edit since has worked: such an
    answer would only go back to review. Review feedback on other work needs some tool call that worked.
    After `patience` calls the model may answer anyway."""
    since = _calls_this_round(messages)
    files = bool(requested_files(request_of(messages)))
    revising = sum(m.type == "human" for m in messages) > 1
    if not (files or revising) or len(since) >= patience:
        return False
    needed = EDIT_TOOLS if files and revising else None
    return not any(c.ok and (needed is None or c.name in needed) for c in since)


def open_actions(actions: Sequence[str], messages: Sequence[BaseMessage], max_failures: int = 2) -> list[str]:
    """The actions offered this turn: no answer while it is too early, and no tool that has failed
    `max_failures` times this round (small models retry a failing Edit forever; Write is the way out).
    Never empty: when everything would be closed, everything stays open."""
    failures = Counter(c.name for c in _calls_this_round(messages) if c.ok is False)
    early = len(actions) > 1 and ANSWER in actions and _too_early_to_answer(messages)
    kept = [a for a in actions if failures[a] < max_failures and not (early and a == ANSWER)]
    return kept or list(actions)


def run_turn(
    engine: LocalEngine,
    messages: Sequence[BaseMessage],
    tools: Sequence[ToolDef],
    tool_choice: object,
    settings: GenerationSettings,
    limits: PromptLimits | None = None,
) -> AIMessage:
    """One model turn by the two-step protocol: choose (unless there is one option), then act. The
    favourite loops of small models are broken: repeating the call that just succeeded becomes an answer
    (or, while it is too early to answer, goes back to the choice without that tool), and so does
    repeating a call that failed with nothing succeeding since, or a call whose body only repeats a tool
    result; `open_actions` says what is offered at all. Facts from `progress_note` go with the choice and
    the arguments."""
    actions = candidate_actions(tools, tool_choice)
    chat = render_messages(messages, limits)
    note = progress_note(messages) if len(actions) > 1 else ""
    last, failed = _last_success(messages), _failed_since_success(messages)
    results = frozenset(_shape(c.result) for c in calls_of(messages) if c.result.strip())
    usage = [0, 0]
    reply = None
    open_now = open_actions(actions, messages)
    action = _choose(engine, chat, tools, open_now, settings, usage, note)
    while action != ANSWER or ANSWER in {t.name for t in tools}:
        tool = next(t for t in tools if t.name == action)
        args = _tool_args(engine, chat, tool, settings, note, usage, results)
        repeated = (tool.name, args) == last
        if repeated and ANSWER in open_now:
            log.info("local_repeat_call_answered", model=engine.name, tool=tool.name)
            action = ANSWER
        elif (args is None or repeated or (tool.name, args) in failed) and len(open_now) > 1:
            log.info("local_call_not_repeated", model=engine.name, tool=tool.name, failed=not repeated)
            open_now.remove(tool.name)
            action = _choose(engine, chat, tools, open_now, settings, usage, note)
            continue
        elif args is None:  # nothing usable and nothing else to offer: answer rather than clobber a file
            action = ANSWER
        else:
            reply = _tool_message(tool.name, args)
        break
    if reply is None:
        calls = calls_of(messages)
        instruction = answer_instruction(request_of(messages), any(c.ok for c in calls)) if tools or calls else None
        request = answer_request(chat, settings, instruction)
        reply = AIMessage(content=parse_text(_step(engine, "answer", request, usage, stop_loops=True)))
    reply.usage_metadata = {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)}
    reply.response_metadata = {"model_name": engine.name, "action": action}
    return reply
