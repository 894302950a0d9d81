"""A langchain-core chat model over a local llama.cpp model, so the graph drives it exactly like Claude.

llama-cpp-python's free tool choice (`tool_choice="auto"`) does not work, while JSON-schema-constrained
output does. An agent turn is therefore a few small steps:

1. *choose*: a tiny grammar `{"action": <tool name> | "answer"}` picks the next step, after a
   `[Progress]` note of facts taken from the conversation (the tool calls so far and how they went; the
   files the request asks for and whether they were written): small models lose track of them otherwise;
2. *act*: either the chosen tool's arguments, constrained by its schema (every string and array bounded
   so small models cannot loop and the grammar stays small enough not to crash llama.cpp), its *body*
   (Write's content, Task's prompt) then written as plain text; or a bounded free-text answer.

A forced call (`tool_choice="<Name>"`, or one tool with "any") skips step 1. The favourite loops of small
models are broken in `run_turn` (a repeated call that succeeded becomes an answer, one that failed is
asked again without that tool), free text carries a repeat penalty and stops when it starts looping
(`LoopGuard`), and a request that names files to create (or review feedback to act on) is not answered
before a tool call since it has worked.

Prompts are rendered compactly (prompt processing runs at ~95 tok/s on two cores), tool traffic as a log
on the user side (models imitate rendered calls they see in their own turns), and the step instruction
always comes last, so llama.cpp reuses the KV cache of the shared prefix between steps and across turns.

Everything that builds requests or parses responses is a pure function; the llama boundary is the
one-method `LlamaLike` protocol, wrapped by `LocalEngine` (lock, lazy load, loop guard, logging).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

import structlog
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict
from rich.console import Console

from orchestrator.errors import ModelCallError
from orchestrator.file_mentions import requested_files, same_file
from orchestrator.local_models import JUNIOR, MODELS, SENIOR, locate

__all__ = [
    "ANSWER",
    "DEFAULT_ALIASES",
    "LOOP_STOPPED",
    "MARKERS",
    "ChatLocalLlama",
    "GenerationSettings",
    "LlamaLike",
    "LocalEngine",
    "LocalModelError",
    "LocalProvider",
    "LoopGuard",
    "PromptLimits",
    "ToolDef",
    "answer_instruction",
    "answer_request",
    "body_field",
    "body_request",
    "bounded_schema",
    "candidate_actions",
    "choice_request",
    "load_llama",
    "loop_period",
    "parse_body",
    "parse_choice",
    "parse_text",
    "parse_tool_args",
    "progress_note",
    "render_messages",
    "run_turn",
    "tool_defs",
    "tool_request",
    "trim_loop",
    "usage_of",
]

log = structlog.get_logger()

ANSWER = "answer"
"""The choice-step action meaning "reply in text" rather than call a tool."""
N_CTX = 4096
_LONG_KEYS = ("content", "string", "command", "prompt", "text", "body", "code", "summary", "note", "reason")


class LocalModelError(ModelCallError):
    """A local model call failed: llama.cpp refused it (e.g. context overflow) or its output was unusable."""


class LlamaLike(Protocol):
    """The whole llama boundary: `llama_cpp.Llama` satisfies it, tests pass a scripted object."""

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]: ...


# --- tools and schemas ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolDef:
    """A tool as the local model sees it (from Anthropic dicts, OpenAI dicts, pydantic classes, ...)."""

    name: str
    description: str
    schema: dict[str, Any]

    def as_anthropic(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.schema}


def tool_defs(tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool]) -> list[ToolDef]:
    """Normalise whatever `bind_tools` received (langchain's converter knows every format we meet)."""
    out = []
    for tool in tools:
        fn = convert_to_openai_tool(tool)["function"]
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        out.append(ToolDef(fn["name"], fn.get("description", ""), schema))
    return out


def _resolve_refs(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """Inline local `$ref`s (pydantic `$defs`), so budgeting sees every string; recursion is cut off."""
    if isinstance(node, list):
        return [_resolve_refs(item, defs, depth) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and depth < 8:
        return _resolve_refs(defs.get(ref.removeprefix("#/$defs/"), {}), defs, depth + 1)
    return {k: _resolve_refs(v, defs, depth) for k, v in node.items() if k not in ("$defs", "$ref")}


def _is_free_string(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    return is_string and not any(k in node for k in ("enum", "const", "pattern", "format"))


_SHAPE_KEYS = ("type", "anyOf", "oneOf", "allOf", "enum", "const", "$ref", "properties", "items")


def _make_explicit(node: dict[str, Any]) -> None:
    """Rewrite shapes llama.cpp's converter would leave unbounded: a type list (it drops maxLength)
    becomes anyOf, an untyped value becomes a string, an array without items holds strings."""
    kind = node.get("type")
    if isinstance(kind, list):
        rest = {k: v for k, v in node.items() if k not in ("type", "description", "title", "default")}
        for k in rest:
            del node[k]
        del node["type"]
        node["anyOf"] = [{**rest, "type": t} if t != "null" else {"type": "null"} for t in kind]
    elif not any(k in node for k in _SHAPE_KEYS):
        node["type"] = "string"
    if node.get("type") == "array" and "items" not in node:
        node["items"] = {"type": "string"}


def _string_weight(key: str) -> int:
    """Prose-like fields (file content, commands, notes) get four times the room of names and paths."""
    return 4 if any(part in key.lower() for part in _LONG_KEYS) else 1


@dataclass(frozen=True)
class _Slot:
    """One free string in a schema: its node (to receive maxLength), weight, and possible copies."""

    node: dict[str, Any]
    weight: int
    copies: int


@dataclass
class _Walk:
    """One bounding pass over a schema: its options and the free strings found so far."""

    max_items: int
    keep_optional: bool
    slots: list[_Slot]

    def visit(self, node: Any, key: str, copies: int) -> None:
        """Bound arrays and close objects in place; record every free string with its weight and how
        many copies of it an answer may hold (strings inside arrays count once per allowed item)."""
        if not isinstance(node, dict):
            return
        _make_explicit(node)
        if _is_free_string(node):
            self.slots.append(_Slot(node, _string_weight(key), copies))
        if node.get("type") == "object" or "properties" in node:
            self._object(node, copies)
        if isinstance(node.get("items"), dict):
            node["maxItems"] = min(int(node.get("maxItems", self.max_items)), self.max_items)
            self.visit(node["items"], key, copies * node["maxItems"])
        for combinator in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(combinator, []):
                self.visit(sub, key, copies)

    def _object(self, node: dict[str, Any], copies: int) -> None:
        """Close the object; unless asked, drop optional properties: small models fill every knob they
        are shown (Read's offset and limit, Edit's replace_all), usually wrongly; the defaults apply."""
        node["additionalProperties"] = False
        properties = node.get("properties", {})
        if not self.keep_optional:
            required = set(node.get("required", []))
            node["properties"] = properties = {k: v for k, v in properties.items() if k in required}
        for name, sub in properties.items():
            self.visit(sub, name, copies)


def bounded_schema(
    schema: Mapping[str, Any], budget: int = 900, max_items: int = 6, keep_optional: bool = False
) -> dict[str, Any]:
    """A copy of `schema` safe for llama.cpp's grammar and small models: closed objects (optional
    properties dropped unless `keep_optional`), `maxItems` on arrays, and `maxLength` on strings sharing
    `budget` characters in total (a larger grammar crashes the process)."""
    bounded: dict[str, Any] = _resolve_refs(copy.deepcopy(dict(schema)), schema.get("$defs", {}))
    slots: list[_Slot] = []
    _Walk(max_items, keep_optional, slots).visit(bounded, "", 1)
    total = sum(slot.weight * slot.copies for slot in slots) or 1
    for slot in slots:
        share = max(4, budget * slot.weight // total)
        slot.node["maxLength"] = min(int(slot.node.get("maxLength", share)), share)
    return bounded


# --- prompt rendering -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptLimits:
    """Character budgets for the rendered prompt (~4 characters a token, ~95 tokens/s to process)."""

    system_chars: int = 3600
    request_chars: int = 7000
    """The first human turn: the task, a subagent's brief, or a review request with its evidence."""
    message_chars: int = 2000
    tool_result_chars: int = 800
    args_chars: int = 300
    total_chars: int = 9000


def _clip(text: str, limit: int) -> str:
    """Head and tail of a long text with the omission marked (the end of tool output matters too)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n…[{len(text) - limit} chars omitted]…\n{text[-tail:]}"


def _text_of(content: str | list[str | dict[str, Any]]) -> str:
    """Plain text of a message's content (string, or Anthropic/OpenAI content blocks)."""
    if isinstance(content, str):
        return content
    parts = [b if isinstance(b, str) else str(b.get("text", "")) for b in content]
    return "\n".join(p for p in parts if p)


def _clip_line(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render_call(call: ToolCall, limits: PromptLimits) -> str:
    """A tool call as a line of the user-side log, e.g. `[You called Read(file_path="a.py")]`."""
    per_arg = max(40, limits.args_chars // max(1, len(call["args"])))
    args = ", ".join(f"{k}={_clip_line(json.dumps(v, ensure_ascii=False), per_arg)}" for k, v in call["args"].items())
    return f"[You called {call['name']}({args})]"


def _render_one(message: BaseMessage, limits: PromptLimits, first: bool = False) -> list[dict[str, str]]:
    """One message as llama chat messages. Tool traffic is a log on the user side (calls and results):
    assistant turns hold only what the model said, so small models do not imitate rendered calls in
    their text, and any chat template copes."""
    text = _text_of(message.content)
    if isinstance(message, SystemMessage):
        return [{"role": "system", "content": _clip(text, limits.system_chars)}]
    if isinstance(message, ToolMessage):
        label = "error" if message.status == "error" else "result"
        name = message.name or "tool"
        return [{"role": "user", "content": f"[{name} {label}]\n{_clip(text, limits.tool_result_chars)}"}]
    if isinstance(message, AIMessage):
        said = [{"role": "assistant", "content": _clip(text, limits.message_chars)}] if text.strip() else []
        calls = [{"role": "user", "content": _render_call(c, limits)} for c in message.tool_calls]
        return [*said, *calls]
    return [{"role": "user", "content": _clip(text, limits.request_chars if first else limits.message_chars)}]


def _merge_roles(chat: list[dict[str, str]]) -> list[dict[str, str]]:
    """Join consecutive messages of one role: several chat templates demand alternation."""
    merged: list[dict[str, str]] = []
    for msg in chat:
        if merged and merged[-1]["role"] == msg["role"]:
            merged[-1] = {"role": msg["role"], "content": f"{merged[-1]['content']}\n\n{msg['content']}"}
        else:
            merged.append(dict(msg))
    return merged


def _fit(chat: list[dict[str, str]], budget: int) -> list[dict[str, str]]:
    """Keep the system prompt, the task (first user turn) and as many recent turns as fit the budget."""
    head = [m for m in chat[:2] if m["role"] == "system"]
    rest = chat[len(head) :]
    if not rest:
        return head
    first, tail = rest[0], rest[1:]
    room = budget - sum(len(m["content"]) for m in [*head, first])
    kept: list[dict[str, str]] = []
    for msg in reversed(tail):
        if room - len(msg["content"]) < 0 and kept:
            break
        room -= len(msg["content"])
        kept.insert(0, msg)
    omitted = len(tail) - len(kept)
    note = [{"role": "user", "content": f"[{omitted} earlier messages omitted]"}] if omitted else []
    return [*head, first, *note, *kept]


def render_messages(messages: Sequence[BaseMessage], limits: PromptLimits | None = None) -> list[dict[str, str]]:
    """The conversation as compact llama chat messages, within the limits' character budgets."""
    lim = limits or PromptLimits()
    first = next((i for i, m in enumerate(messages) if m.type == "human"), -1)
    parts = [part for i, m in enumerate(messages) for part in _render_one(m, lim, first=i == first)]
    chat = _merge_roles(_fit(parts, lim.total_chars))
    if not chat or chat[-1]["role"] != "user":
        chat.append({"role": "user", "content": "Continue."})
    return chat


# --- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSettings:
    """Generation settings of one turn."""

    answer_max_tokens: int = 640
    tool_max_tokens: int = 1024
    body_max_tokens: int = 768
    """For the argument written as plain text (`body_field`: a file's content, a brief)."""
    temperature: float = 0.0
    schema_budget: int = 900
    keep_optional: bool = False
    stop: tuple[str, ...] = ()
    repeat_penalty: float = 1.1
    """Penalty on tokens among the last 64 generated (1.0: none); greedy small models loop without it."""
    seed: int = 0
    """Sampling seed, so a temperature above 0 is reproducible too."""


def _with_instruction(chat: list[dict[str, str]], instruction: str) -> list[dict[str, str]]:
    """Append the step instruction at the very end, keeping the shared prefix (and its KV cache)."""
    last = chat[-1]
    return [*chat[:-1], {"role": last["role"], "content": f"{last['content']}\n\n{instruction}"}]


def _first_line(text: str, limit: int = 100) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _sampling(s: GenerationSettings) -> dict[str, Any]:
    return {"temperature": s.temperature, "repeat_penalty": s.repeat_penalty, "seed": s.seed}


def _json_request(
    chat: list[dict[str, str]], schema: dict[str, Any], max_tokens: int, s: GenerationSettings
) -> dict[str, Any]:
    return {
        "messages": chat,
        "response_format": {"type": "json_object", "schema": schema},
        "max_tokens": max_tokens,
        **_sampling(s),
    }


# What a turn has done so far, stated plainly: small models lose track of it in a rendered history.
_KEY_ARGS = ("file_path", "path", "pattern", "command", "url", "query", "description")
_EDITS = ("Write", "Edit")


@dataclass(frozen=True)
class _Call:
    """One tool call of the conversation and how it went (ok None: no result yet)."""

    name: str
    args: dict[str, Any]
    ok: bool | None
    result: str

    def summary(self) -> str:
        key = next((str(self.args[k]) for k in _KEY_ARGS if k in self.args), "")
        error = _first_line(self.result.strip().removeprefix("Error:"), 80)
        outcome = "no result" if self.ok is None else "ok" if self.ok else f"error: {error.strip()}"
        return f"{self.name} {_first_line(key, 60)} ({outcome})".replace("  ", " ")


def _calls(messages: Sequence[BaseMessage]) -> list[_Call]:
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    calls = []
    for message in messages:
        for call in message.tool_calls if isinstance(message, AIMessage) else []:
            result = results.get(call.get("id") or "")
            ok = None if result is None else result.status != "error"
            calls.append(_Call(call["name"], call["args"], ok, "" if result is None else _text_of(result.content)))
    return calls


def _request(messages: Sequence[BaseMessage]) -> str:
    """The request this conversation serves: its first human turn (the task, or a subagent's brief)."""
    first = next((m for m in messages if m.type == "human"), None)
    return "" if first is None else _text_of(first.content)


def progress_note(messages: Sequence[BaseMessage], recent: int = 6) -> str:
    """Facts for the choice step, derived from the conversation: the tool calls made so far and their
    outcomes, and which of the files the request asks for have been written."""
    calls = _calls(messages)
    if calls:
        shown = "; ".join(c.summary() for c in calls[-recent:])
        more = f" (and {len(calls) - recent} earlier)" if len(calls) > recent else ""
        lines = [f"Tool calls so far{more}: {shown}."]
    else:
        lines = ["No tool has been called yet for this request."]
    files = requested_files(_request(messages))
    if files:
        written = {
            f for f in files for c in calls if c.name in _EDITS and c.ok and same_file(c.args.get("file_path"), f)
        }
        states = ", ".join(f"{f} ({'written' if f in written else 'not written yet'})" for f in files)
        lines.append(f"Files the request asks for: {states}.")
    return "\n".join(lines)


_ANSWER_DESCRIPTION = (
    "reply in plain text: the task is complete (a tool result above confirms it) or is a question you can answer"
)


def choice_request(
    chat: list[dict[str, str]], tools: Sequence[ToolDef], actions: Sequence[str], s: GenerationSettings, note: str = ""
) -> dict[str, Any]:
    """Step 1: pick the next action among `actions` (tool names and maybe ANSWER), after the `note`
    (facts from `progress_note`), each action with a one-line description."""
    described = {t.name: _first_line(t.description) for t in tools}
    described[ANSWER] = _ANSWER_DESCRIPTION
    lines = "\n".join(f"- {a}: {described.get(a, '')}" for a in actions)
    facts = f"[Progress] {note}\n" if note else ""
    instruction = f"{facts}[Next step] Choose exactly one action:\n{lines}"
    schema = {
        "type": "object",
        "properties": {"action": {"type": "string", "enum": list(actions)}},
        "required": ["action"],
        "additionalProperties": False,
    }
    return _json_request(_with_instruction(chat, instruction), schema, 24, s)


def _describe_params(schema: Mapping[str, Any]) -> str:
    required = set(schema.get("required", []))
    lines = []
    for name, sub in schema.get("properties", {}).items():
        flag = "required" if name in required else "optional"
        text = _first_line(str(sub.get("description", "")), 160)
        if not text and isinstance(sub.get("enum"), list):
            text = "one of " + ", ".join(str(v) for v in sub["enum"])
        lines.append(f"- {name} ({flag}): {text}")
    return "\n".join(lines)


def tool_request(chat: list[dict[str, str]], tool: ToolDef, s: GenerationSettings, note: str = "") -> dict[str, Any]:
    """Step 2a: the chosen tool's arguments, as JSON constrained by its bounded schema, after the `note`."""
    schema = bounded_schema(tool.schema, s.schema_budget, keep_optional=s.keep_optional)
    facts = f"[Progress] {note}\n" if note else ""
    instruction = (
        f"{facts}[Next step] Call the tool {tool.name}: {_first_line(tool.description, 200)}\n"
        f"Arguments:\n{_describe_params(schema)}\nReply with the JSON arguments only."
    )
    return _json_request(_with_instruction(chat, instruction), schema, s.tool_max_tokens, s)


_BODY_KEYS = ("content", "prompt")


def body_field(tool: ToolDef) -> str | None:
    """The argument a small model writes as plain text after the others, not inside JSON: a required,
    unconstrained string named like a file body or a brief (Write's `content`, Task's `prompt`). Inside a
    grammar such text is slow, squeezed into the schema budget, and code loses its newlines."""
    properties = tool.schema.get("properties", {})
    for name in tool.schema.get("required", []):
        if name in _BODY_KEYS and isinstance(properties.get(name), dict) and _is_free_string(properties[name]):
            return str(name)
    return None


def _without(tool: ToolDef, field: str) -> ToolDef:
    schema = copy.deepcopy(tool.schema)
    schema["properties"] = {k: v for k, v in schema.get("properties", {}).items() if k != field}
    schema["required"] = [k for k in schema.get("required", []) if k != field]
    return ToolDef(tool.name, tool.description, schema)


def body_request(
    chat: list[dict[str, str]],
    tool: ToolDef,
    field: str,
    args: Mapping[str, Any],
    s: GenerationSettings,
    note: str = "",
) -> dict[str, Any]:
    """Step 2a': the body argument (`body_field`) as plain text, once the other arguments are known."""
    sub = tool.schema.get("properties", {}).get(field, {})
    what = _first_line(str(sub.get("description", "")), 200).rstrip(".")
    shown = ", ".join(f"{k}={_clip_line(json.dumps(v, ensure_ascii=False), 120)}" for k, v in args.items())
    facts = f"[Progress] {note}\n" if note else ""
    instruction = (
        f"{facts}[Next step] Now write the {field} of this {tool.name} call{f' ({what})' if what else ''}"
        f"{f'; its other arguments: {shown}' if shown else ''}. Reply with the {field} itself, nothing else."
    )
    messages = _with_instruction(chat, instruction)
    return {"messages": messages, "max_tokens": s.body_max_tokens, "stop": list(MARKERS), **_sampling(s)}


_FENCE = re.compile(r"^```[\w+.-]*[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


def parse_body(response: Mapping[str, Any]) -> str:
    """The body argument: the reply's text or, when it opens with a code fence, what the fence holds
    (small models wrap a file in ```python ... ``` and may comment on it after the fence)."""
    text = parse_text(response)
    fenced = _FENCE.match(text)
    return fenced.group(1).strip("\n") + "\n" if fenced else text


MARKERS = ("[You called", "[Next step]", "[Progress]")
"""How the adapter's own lines start: a free-text step stops there (small models copy the prompt)."""


def answer_instruction(request: str, worked: bool) -> str:
    """The answer step's instruction: after tool work, report it from the results, then give what was
    asked; a short request is restated, since a long history buries it."""
    asked = f"this request: {request.strip()}" if request.strip() and len(request) <= 200 else "the request above"
    base = (
        "Base it on the tool results above: say what you created or changed, and give what the request asks for."
        if worked
        else "Give what the request asks for."
    )
    return f"[Next step] Write your final reply to {asked}\nPlain text, no tool call. {base}"


def answer_request(chat: list[dict[str, str]], s: GenerationSettings, instruction: str | None = None) -> dict[str, Any]:
    """Step 2b: a bounded free-text reply, after the `instruction` (without one, small models imitate
    the rendered tool calls of the history in their text), stopping at the adapter's own markers."""
    messages = _with_instruction(chat, instruction) if instruction else chat
    stop = list(dict.fromkeys([*s.stop, *MARKERS]))
    return {"messages": messages, "max_tokens": s.answer_max_tokens, "stop": stop, **_sampling(s)}


# --- parsing --------------------------------------------------------------------------------------


def _content(response: Mapping[str, Any]) -> str:
    try:
        return str(response["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError) as exc:
        raise LocalModelError(f"malformed completion: {str(response)[:200]}") from exc


def _json_object(response: Mapping[str, Any], what: str) -> dict[str, Any]:
    text = _content(response)
    try:
        value = json.loads(text, strict=False)  # small models emit raw newlines inside strings
    except json.JSONDecodeError as exc:
        raise LocalModelError(f"{what}: output is not complete JSON: {text[:200]!r}") from exc
    if not isinstance(value, dict):
        raise LocalModelError(f"{what}: expected a JSON object, got {text[:200]!r}")
    return value


def parse_choice(response: Mapping[str, Any], actions: Sequence[str]) -> str:
    """The action chosen in step 1 (must be one of those offered)."""
    action = _json_object(response, "choice").get("action")
    if action not in actions:
        raise LocalModelError(f"choice: {action!r} is not one of {list(actions)}")
    return str(action)


def parse_tool_args(response: Mapping[str, Any], tool: ToolDef) -> dict[str, Any]:
    """The tool arguments of step 2a; a truncated or non-object output is a failed call."""
    args = _json_object(response, f"{tool.name} arguments")
    missing = [k for k in tool.schema.get("required", []) if k not in args]
    if missing:
        raise LocalModelError(f"{tool.name} arguments: missing required {missing}")
    return args


def parse_text(response: Mapping[str, Any]) -> str:
    """The free-text answer of step 2b; a reply that ran into a loop (stopped by `LoopGuard`, or cut at
    max_tokens) keeps one copy of the looping passage."""
    text = _content(response).strip()
    choice = (response.get("choices") or [{}])[0]
    cut = isinstance(choice, Mapping) and choice.get("finish_reason") == "length"
    if response.get(LOOP_STOPPED) or cut:
        text = trim_loop(text)
    if cut and text.rfind("\n") >= len(text) // 3:
        text = text[: text.rfind("\n")].rstrip()  # a reply cut at max_tokens ends at its last full line
    return text


# --- loops ----------------------------------------------------------------------------------------

LOOP_STOPPED = "loop_stopped"
"""Key the engine sets on a response whose generation `LoopGuard` ended."""


def loop_period(tokens: Sequence[int], max_period: int = 120, min_span: int = 48) -> int:
    """The period p of a loop that `tokens` end in (their last max(2p, min_span) tokens repeat with
    period p), the shortest such; 0 when they do not end in a loop."""
    tail = list(tokens[-max(2 * max_period, min_span) :])
    m = len(tail)
    for period in range(1, max_period + 1):
        span = max(2 * period, min_span)
        if span > m:
            break
        if tail[-1] == tail[-1 - period] and tail[m - span + period :] == tail[m - span : m - period]:
            return period
    return 0


def trim_loop(text: str, min_span: int = 60) -> str:
    """`text` cut back to one copy of the passage it ends up repeating (the shortest period P whose last
    max(2P, min_span) characters repeat); unchanged when it does not end in a loop."""
    n = len(text)
    for period in range(1, n // 2 + 1):
        span = max(2 * period, min_span)
        if span > n:
            break
        if text[n - span + period :] == text[n - span : n - period]:
            start = n - span
            while start > 0 and text[start - 1] == text[start - 1 + period]:
                start -= 1
            end = start + period  # the copy may start mid-sentence: finish the sentence it cuts
            while end < min(n, start + 2 * period) and text[:end].rstrip(" ")[-1:] not in (".", "!", "?", "\n"):
                end += 1
            return text[:end].rstrip()
    return text


class LoopGuard:
    """A llama.cpp logits processor that ends a free-text generation (forces end-of-sequence) as soon as
    the generated tokens fall into a loop: greedy small models otherwise repeat a sentence up to
    max_tokens, which costs a minute on two cores."""

    def __init__(self, eos: int, max_period: int = 120, min_span: int = 48) -> None:
        self.eos = eos
        self.max_period = max_period
        self.min_span = min_span
        self.prompt_len: int | None = None
        self.tripped = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.prompt_len is None:
            self.prompt_len = len(input_ids)
        generated = input_ids[self.prompt_len :]
        if len(generated) >= self.min_span and loop_period(generated.tolist(), self.max_period, self.min_span):
            self.tripped = True
            scores[:] = [float("-inf")] * len(scores)
            scores[self.eos] = 0.0
        return scores


def usage_of(response: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) of one completion; zeros when the backend reports none."""
    usage = response.get("usage") or {}
    return int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))


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


# --- the llama boundary ---------------------------------------------------------------------------


class LocalEngine:
    """One loaded model: loads lazily on first use, serialises calls (a `Llama` is not thread-safe),
    turns llama.cpp's refusals into `LocalModelError`, and logs every call."""

    def __init__(self, name: str, load: Callable[[], LlamaLike]) -> None:
        self.name = name
        self._load = load
        self._llama: LlamaLike | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, name: str, llama: LlamaLike) -> LocalEngine:
        """An engine over an already-built llama object (tests, benchmarks)."""
        return cls(name, lambda: llama)

    def complete(self, step: str, request: dict[str, Any], *, stop_loops: bool = False) -> dict[str, Any]:
        """One blocking completion, under this model's lock. `stop_loops` (free text only: a grammar
        would refuse the forced end) ends the generation when it starts looping, marking the response."""
        with self._lock:
            llama = self._loaded()
            eos = getattr(llama, "token_eos", None)
            guard = LoopGuard(int(eos())) if stop_loops and callable(eos) else None
            started = time.perf_counter()
            try:
                if guard is None:
                    response = llama.create_chat_completion(**request)
                else:
                    response = llama.create_chat_completion(**request, logits_processor=[guard])
            except (ValueError, RuntimeError) as exc:  # llama-cpp-python's refusals, e.g. context overflow
                raise LocalModelError(f"{self.name}: {exc}") from exc
            seconds = time.perf_counter() - started
        if guard is not None and guard.tripped:
            response = {**response, LOOP_STOPPED: True}
            log.info("local_loop_stopped", model=self.name, step=step)
        prompt, output = usage_of(response)
        log.info(
            "model_call",
            model=self.name,
            step=step,
            input_tokens=prompt,
            output_tokens=output,
            seconds=round(seconds, 3),
        )
        return response

    def _loaded(self) -> LlamaLike:
        if self._llama is None:
            try:
                self._llama = self._load()
            except (ValueError, RuntimeError, OSError) as exc:
                raise LocalModelError(f"cannot load local model {self.name}: {exc}") from exc
        return self._llama


@contextlib.contextmanager
def _status_line(message: str) -> Iterator[None]:
    """A rich status line on stderr that survives llama.cpp's loading, which points fd 2 (and
    sys.stderr) at /dev/null while verbose=False: the console writes to a duplicate of the real fd."""
    try:
        stream: TextIO = os.fdopen(os.dup(sys.stderr.fileno()), "w")
    except (OSError, ValueError):  # stderr without a file descriptor (captured): plain console
        with Console(stderr=True).status(message):
            yield
        return
    with stream, Console(file=stream).status(message):
        yield


def load_llama(path: Path, n_ctx: int = N_CTX) -> LlamaLike:
    """Load a GGUF file with llama.cpp's own chatter silenced and a status line on stderr instead."""
    from llama_cpp import Llama  # deferred: loading the native library costs time, and only this needs it

    started = time.perf_counter()
    with _status_line(f"Loading local model {path.name}…"):
        llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 1, verbose=False)
    log.info("model_loaded", model=path.name, seconds=round(time.perf_counter() - started, 3))
    # Llama's create_chat_completion spells out every keyword; we only rely on the kwargs-to-dict shape.
    return cast(LlamaLike, llama)


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
    for call in _calls(messages):
        if call.ok:
            failed.clear()
        elif call.ok is False:
            failed.append((call.name, call.args))
    return failed


def _tool_args(
    engine: LocalEngine,
    chat: list[dict[str, str]],
    tool: ToolDef,
    settings: GenerationSettings,
    note: str,
    usage: list[int],
) -> dict[str, Any]:
    """The chosen tool's arguments: JSON under the schema's grammar, then the body (if any) as text."""
    body = body_field(tool)
    short = tool if body is None else _without(tool, body)
    args: dict[str, Any] = {}
    if short.schema.get("properties"):
        args = parse_tool_args(_step(engine, "tool", tool_request(chat, short, settings, note), usage), short)
    if body is not None:
        request = body_request(chat, tool, body, args, settings, note)
        text = parse_body(_step(engine, "body", request, usage, stop_loops=True))
        limit = tool.schema["properties"][body].get("maxLength")
        args[body] = text[:limit] if isinstance(limit, int) else text
    return args


def _too_early_to_answer(messages: Sequence[BaseMessage], patience: int = 6) -> bool:
    """A request that asks for files is not answered before a tool call has worked, and review feedback
    sent back on such a request (a later human turn) not before a Write or Edit since has worked: such an
    answer would only go back to review. Review feedback on other work needs some tool call that worked.
    After `patience` calls the model may answer anyway."""
    turns = [i for i, m in enumerate(messages) if m.type == "human"]
    since = _calls(messages[turns[-1] :]) if turns else []
    files, revising = bool(requested_files(_request(messages))), len(turns) > 1
    if not (files or revising) or len(since) >= patience:
        return False
    needed = _EDITS if files and revising else None
    return not any(c.ok and (needed is None or c.name in needed) for c in since)


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
    repeating a call that failed with nothing succeeding since. Facts from `progress_note` go with the
    choice and the arguments."""
    actions = candidate_actions(tools, tool_choice)
    chat = render_messages(messages, limits)
    note = progress_note(messages) if len(actions) > 1 else ""
    last, failed = _last_success(messages), _failed_since_success(messages)
    usage = [0, 0]
    reply = None
    open_actions = list(actions)
    if ANSWER in actions and len(actions) > 1 and _too_early_to_answer(messages):
        open_actions.remove(ANSWER)
    action = _choose(engine, chat, tools, open_actions, settings, usage, note)
    while action != ANSWER or ANSWER in {t.name for t in tools}:
        tool = next(t for t in tools if t.name == action)
        args = _tool_args(engine, chat, tool, settings, note, usage)
        repeated = (tool.name, args) == last
        if repeated and ANSWER in open_actions:
            log.info("local_repeat_call_answered", model=engine.name, tool=tool.name)
            action = ANSWER
        elif (repeated or (tool.name, args) in failed) and len(open_actions) > 1:
            log.info("local_call_not_repeated", model=engine.name, tool=tool.name, failed=not repeated)
            open_actions.remove(tool.name)
            action = _choose(engine, chat, tools, open_actions, settings, usage, note)
            continue
        else:
            reply = _tool_message(tool.name, args)
        break
    if reply is None:
        calls = _calls(messages)
        instruction = answer_instruction(_request(messages), any(c.ok for c in calls)) if tools or calls else None
        request = answer_request(chat, settings, instruction)
        reply = AIMessage(content=parse_text(_step(engine, "answer", request, usage, stop_loops=True)))
    reply.usage_metadata = {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)}
    reply.response_metadata = {"model_name": engine.name, "action": action}
    return reply


# --- the chat model -------------------------------------------------------------------------------


class ChatLocalLlama(BaseChatModel):
    """A local llama.cpp model behind langchain-core's chat-model interface (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: LocalEngine
    model_name: str = "local"
    answer_max_tokens: int = GenerationSettings.answer_max_tokens
    tool_max_tokens: int = GenerationSettings.tool_max_tokens
    body_max_tokens: int = GenerationSettings.body_max_tokens
    temperature: float = GenerationSettings.temperature
    schema_budget: int = GenerationSettings.schema_budget
    keep_optional: bool = False
    """Offer optional tool arguments to the model too (off: small models misuse them)."""
    repeat_penalty: float = GenerationSettings.repeat_penalty
    seed: int = GenerationSettings.seed
    limits: PromptLimits = PromptLimits()

    @property
    def _llm_type(self) -> str:
        return "local-llama"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any langchain format) and a tool choice; an unknown forced name fails here."""
        defs = tool_defs(tools)
        candidate_actions(defs, tool_choice)
        return self.bind(tools=[d.as_anthropic() for d in defs], tool_choice=tool_choice, **kwargs)

    def _settings(self, stop: list[str] | None) -> GenerationSettings:
        return GenerationSettings(
            answer_max_tokens=self.answer_max_tokens,
            tool_max_tokens=self.tool_max_tokens,
            body_max_tokens=self.body_max_tokens,
            temperature=self.temperature,
            schema_budget=self.schema_budget,
            keep_optional=self.keep_optional,
            stop=tuple(stop or ()),
            repeat_penalty=self.repeat_penalty,
            seed=self.seed,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = tool_defs(kwargs.get("tools") or [])
        reply = run_turn(self.engine, messages, tools, kwargs.get("tool_choice"), self._settings(stop), self.limits)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Generation blocks for seconds: run it in a worker thread so the event loop stays free."""
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)


# --- the provider ---------------------------------------------------------------------------------

DEFAULT_ALIASES: dict[str, str] = {"opus": SENIOR.key, "sonnet": JUNIOR.key, "haiku": JUNIOR.key}
"""Claude model family -> local role: the planner/reviewer gets the bigger model."""


class LocalProvider:
    """The offline provider: agent model names -> chat models over the pulled (or user) GGUF files.
    One engine per file, so agents sharing a model share its weights, lock and KV cache."""

    name = "local"
    errors: tuple[type[BaseException], ...] = (LocalModelError,)

    def __init__(
        self,
        *,
        aliases: Mapping[str, str] | None = None,
        paths: Mapping[str, Path] | None = None,
        loader: Callable[[Path], LlamaLike] = load_llama,
    ) -> None:
        self._aliases = {**DEFAULT_ALIASES, **(aliases or {})}
        self._paths = dict(paths or {})
        self._loader = loader
        self._engines: dict[Path, LocalEngine] = {}
        self._lock = threading.Lock()

    def role_for(self, model: str) -> str:
        """ "senior"/"junior" for an agent's model field: alias, role name, or Claude family substring."""
        key = model.strip().lower()
        if key in self._aliases:
            return self._aliases[key]
        if key in MODELS:
            return key
        family = next((f for f in ("opus", "sonnet", "haiku") if f in key), None)
        if family is not None:
            return self._aliases[family]
        log.warning("local_model_fallback", model=model, role=JUNIOR.key)
        return JUNIOR.key

    def chat_model(self, model: str) -> BaseChatModel:
        """A chat model for `model`; the file is located and verified now, loaded on first call."""
        role = self.role_for(model)
        path = locate(MODELS[role], self._paths.get(role))
        return ChatLocalLlama(engine=self._engine(path), model_name=f"local-{role}:{path.name}")

    def model_id(self, model: str) -> str:
        """What records and the price table name (a local model costs nothing: no Claude family in it)."""
        role = self.role_for(model)
        override = self._paths.get(role)
        return f"local-{role}:{override.name if override else MODELS[role].filename}"

    def _engine(self, path: Path) -> LocalEngine:
        key = path.resolve()
        with self._lock:
            if key not in self._engines:
                self._engines[key] = LocalEngine(path.name, lambda: self._loader(key))
            return self._engines[key]
