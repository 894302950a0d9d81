"""A langchain-core chat model over a local llama.cpp model, so the graph drives it exactly like Claude.

llama-cpp-python's free tool choice (`tool_choice="auto"`) does not work, while JSON-schema-constrained
output does. An agent turn is therefore two constrained steps:

1. *choose*: a tiny grammar `{"action": <tool name> | "answer"}` picks the next step;
2. *act*: either the chosen tool's arguments, constrained by its schema (every string and array bounded
   so small models cannot loop and the grammar stays small enough not to crash llama.cpp), or a bounded
   free-text answer.

A forced call (`tool_choice="<Name>"`, or one tool with "any") skips step 1. Prompts are rendered compactly
(prompt processing runs at ~95 tok/s on two cores) and the step instruction always comes last, so
llama.cpp reuses the KV cache of the shared prefix between the two steps and across turns.

Everything that builds requests or parses responses is a pure function; the llama boundary is the
one-method `LlamaLike` protocol, wrapped by `LocalEngine` (lock, lazy load, logging).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
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
from orchestrator.local_models import JUNIOR, MODELS, SENIOR, locate

__all__ = [
    "ANSWER",
    "DEFAULT_ALIASES",
    "ChatLocalLlama",
    "LlamaLike",
    "LocalEngine",
    "LocalModelError",
    "LocalProvider",
    "PromptLimits",
    "Settings",
    "ToolDef",
    "answer_request",
    "bounded_schema",
    "candidate_actions",
    "choice_request",
    "load_llama",
    "parse_choice",
    "parse_text",
    "parse_tool_args",
    "render_messages",
    "run_turn",
    "tool_defs",
    "tool_request",
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

    system_chars: int = 2000
    message_chars: int = 1500
    tool_result_chars: int = 800
    args_chars: int = 300
    total_chars: int = 6000


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


def _render_call(call: ToolCall, limits: PromptLimits) -> str:
    args = json.dumps(call["args"], ensure_ascii=False)
    return f"[called {call['name']} {_clip(args, limits.args_chars)}]"


def _render_one(message: BaseMessage, limits: PromptLimits) -> dict[str, str]:
    """One message as a llama chat message; tool results become user turns (any chat template copes)."""
    text = _text_of(message.content)
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": _clip(text, limits.system_chars)}
    if isinstance(message, ToolMessage):
        label = "error" if message.status == "error" else "result"
        name = message.name or "tool"
        return {"role": "user", "content": f"[{name} {label}]\n{_clip(text, limits.tool_result_chars)}"}
    if isinstance(message, AIMessage):
        calls = [_render_call(c, limits) for c in message.tool_calls]
        body = "\n".join([_clip(text, limits.message_chars), *calls]).strip()
        return {"role": "assistant", "content": body}
    return {"role": "user", "content": _clip(text, limits.message_chars)}


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
    chat = _merge_roles([_render_one(m, lim) for m in messages])
    chat = _merge_roles(_fit(chat, lim.total_chars))
    if not chat or chat[-1]["role"] != "user":
        chat.append({"role": "user", "content": "Continue."})
    return chat


# --- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Generation settings of one turn."""

    answer_max_tokens: int = 512
    tool_max_tokens: int = 1024
    temperature: float = 0.0
    schema_budget: int = 900
    keep_optional: bool = False
    stop: tuple[str, ...] = ()


def _with_instruction(chat: list[dict[str, str]], instruction: str) -> list[dict[str, str]]:
    """Append the step instruction at the very end, keeping the shared prefix (and its KV cache)."""
    last = chat[-1]
    return [*chat[:-1], {"role": last["role"], "content": f"{last['content']}\n\n{instruction}"}]


def _first_line(text: str, limit: int = 100) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _json_request(chat: list[dict[str, str]], schema: dict[str, Any], max_tokens: int, s: Settings) -> dict[str, Any]:
    return {
        "messages": chat,
        "response_format": {"type": "json_object", "schema": schema},
        "max_tokens": max_tokens,
        "temperature": s.temperature,
    }


def choice_request(
    chat: list[dict[str, str]], tools: Sequence[ToolDef], actions: Sequence[str], s: Settings
) -> dict[str, Any]:
    """Step 1: pick the next action among `actions` (tool names and maybe ANSWER)."""
    described = {t.name: _first_line(t.description) for t in tools}
    described[ANSWER] = (
        "reply in plain text: the task is complete (a tool result above confirms it) or is a question you can answer"
    )
    lines = "\n".join(f"- {a}: {described.get(a, '')}" for a in actions)
    instruction = f"[Next step] Choose exactly one action:\n{lines}"
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
        lines.append(f"- {name} ({flag}): {_first_line(str(sub.get('description', '')), 80)}")
    return "\n".join(lines)


def tool_request(chat: list[dict[str, str]], tool: ToolDef, s: Settings) -> dict[str, Any]:
    """Step 2a: the chosen tool's arguments, as JSON constrained by its bounded schema."""
    schema = bounded_schema(tool.schema, s.schema_budget, keep_optional=s.keep_optional)
    instruction = (
        f"[Next step] Call the tool {tool.name}: {_first_line(tool.description, 200)}\n"
        f"Arguments:\n{_describe_params(schema)}\nReply with the JSON arguments only."
    )
    return _json_request(_with_instruction(chat, instruction), schema, s.tool_max_tokens, s)


_ANSWER_INSTRUCTION = "[Next step] Now write your full reply to the user, in plain text (no tool call)."


def answer_request(chat: list[dict[str, str]], s: Settings, after_choice: bool = False) -> dict[str, Any]:
    """Step 2b: a bounded free-text reply. After a choice (tools were on offer) the instruction says so
    plainly; otherwise small models imitate the rendered tool calls of the history in their text."""
    messages = _with_instruction(chat, _ANSWER_INSTRUCTION) if after_choice else chat
    request: dict[str, Any] = {
        "messages": messages,
        "max_tokens": s.answer_max_tokens,
        "temperature": s.temperature,
    }
    if s.stop:
        request["stop"] = list(s.stop)
    return request


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
    """The free-text answer of step 2b."""
    return _content(response).strip()


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

    def complete(self, step: str, request: dict[str, Any]) -> dict[str, Any]:
        """One blocking completion, under this model's lock."""
        with self._lock:
            llama = self._loaded()
            started = time.perf_counter()
            try:
                response = llama.create_chat_completion(**request)
            except (ValueError, RuntimeError) as exc:  # llama-cpp-python's refusals, e.g. context overflow
                raise LocalModelError(f"{self.name}: {exc}") from exc
            seconds = time.perf_counter() - started
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


def _step(engine: LocalEngine, step: str, request: dict[str, Any], usage: list[int]) -> dict[str, Any]:
    response = engine.complete(step, request)
    prompt, output = usage_of(response)
    usage[0] += prompt
    usage[1] += output
    return response


def _choose(
    engine: LocalEngine,
    chat: list[dict[str, str]],
    tools: Sequence[ToolDef],
    actions: list[str],
    settings: Settings,
    usage: list[int],
) -> str:
    if len(actions) == 1:
        return actions[0]
    response = _step(engine, "choose", choice_request(chat, tools, actions, settings), usage)
    return parse_choice(response, actions)


def _last_call(messages: Sequence[BaseMessage]) -> tuple[str, dict[str, Any]] | None:
    """The previous turn's single tool call, if it is what the conversation ends with and succeeded."""
    if len(messages) < 2 or not isinstance(messages[-1], ToolMessage) or messages[-1].status == "error":
        return None
    previous = messages[-2]
    if not isinstance(previous, AIMessage) or len(previous.tool_calls) != 1:
        return None
    return previous.tool_calls[0]["name"], previous.tool_calls[0]["args"]


def run_turn(
    engine: LocalEngine,
    messages: Sequence[BaseMessage],
    tools: Sequence[ToolDef],
    tool_choice: object,
    settings: Settings,
    limits: PromptLimits | None = None,
) -> AIMessage:
    """One model turn by the two-step protocol: choose (unless there is one option), then act. A small
    model's favourite loop, repeating the call that just succeeded, is turned into an answer instead."""
    actions = candidate_actions(tools, tool_choice)
    chat = render_messages(messages, limits)
    usage = [0, 0]
    action = _choose(engine, chat, tools, actions, settings, usage)
    reply = None
    if action != ANSWER or ANSWER in {t.name for t in tools}:
        tool = next(t for t in tools if t.name == action)
        args = parse_tool_args(_step(engine, "tool", tool_request(chat, tool, settings), usage), tool)
        if (tool.name, args) == _last_call(messages) and ANSWER in actions:
            log.info("local_repeat_call_answered", model=engine.name, tool=tool.name)
            action = ANSWER
        else:
            reply = _tool_message(tool.name, args)
    if reply is None:
        request = answer_request(chat, settings, after_choice=bool(tools))
        reply = AIMessage(content=parse_text(_step(engine, "answer", request, usage)))
    reply.usage_metadata = {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)}
    reply.response_metadata = {"model_name": engine.name, "action": action}
    return reply


# --- the chat model -------------------------------------------------------------------------------


class ChatLocalLlama(BaseChatModel):
    """A local llama.cpp model behind langchain-core's chat-model interface (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: LocalEngine
    model_name: str = "local"
    answer_max_tokens: int = 512
    tool_max_tokens: int = 1024
    temperature: float = 0.0
    schema_budget: int = 900
    keep_optional: bool = False
    """Offer optional tool arguments to the model too (off: small models misuse them)."""
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

    def _settings(self, stop: list[str] | None) -> Settings:
        return Settings(
            self.answer_max_tokens,
            self.tool_max_tokens,
            self.temperature,
            self.schema_budget,
            self.keep_optional,
            tuple(stop or ()),
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
