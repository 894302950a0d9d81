"""The steps of a turn as pure functions: the llama request of each step (choose an action, fill a
tool's arguments, write its body, answer in text), the facts of the conversation that go with them
(`progress_note`), and the parsing of each step's response, where unusable output is a `LocalModelError`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from orchestrator.content import content_text
from orchestrator.file_mentions import requested_files, same_file
from orchestrator.local.engine import LocalModelError
from orchestrator.local.loops import LOOP_STOPPED, trim_loop
from orchestrator.local.render import clip_line
from orchestrator.local.schema import ToolDef, bounded_schema, is_free_string
from orchestrator.tools.permissions import EDIT_TOOLS

__all__ = [
    "ANSWER",
    "MARKERS",
    "Call",
    "GenerationSettings",
    "answer_instruction",
    "answer_request",
    "body_field",
    "body_request",
    "calls_of",
    "choice_request",
    "cut_at_max_tokens",
    "json_request",
    "parse_body",
    "parse_choice",
    "parse_text",
    "parse_tool_args",
    "progress_note",
    "request_of",
    "tool_request",
    "without",
]

ANSWER = "answer"
"""The choice-step action meaning "reply in text" rather than call a tool."""


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


def json_request(
    chat: list[dict[str, str]], instruction: str, schema: dict[str, Any], max_tokens: int, s: GenerationSettings
) -> dict[str, Any]:
    """A step whose reply is JSON under `schema` (llama.cpp's grammar), with its instruction last."""
    return {
        "messages": _with_instruction(chat, instruction),
        "response_format": {"type": "json_object", "schema": schema},
        "max_tokens": max_tokens,
        **_sampling(s),
    }


# What a turn has done so far, stated plainly: small models lose track of it in a rendered history.
_KEY_ARGS = ("file_path", "path", "pattern", "command", "url", "query", "description")


@dataclass(frozen=True)
class Call:
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


def calls_of(messages: Sequence[BaseMessage]) -> list[Call]:
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    calls = []
    for message in messages:
        for call in message.tool_calls if isinstance(message, AIMessage) else []:
            result = results.get(call.get("id") or "")
            ok = None if result is None else result.status != "error"
            calls.append(
                Call(
                    call["name"],
                    call["args"],
                    ok,
                    "" if result is None else content_text(result.content, placeholders=False),
                )
            )
    return calls


def request_of(messages: Sequence[BaseMessage]) -> str:
    """The request this conversation serves: its first human turn (the task, or a subagent's brief)."""
    first = next((m for m in messages if m.type == "human"), None)
    return "" if first is None else content_text(first.content, placeholders=False)


def progress_note(messages: Sequence[BaseMessage], recent: int = 6) -> str:
    """Facts for the choice step, derived from the conversation: the tool calls made so far and their
    outcomes, and which of the files the request asks for have been written."""
    calls = calls_of(messages)
    if calls:
        shown = "; ".join(c.summary() for c in calls[-recent:])
        more = f" (and {len(calls) - recent} earlier)" if len(calls) > recent else ""
        lines = [f"Tool calls so far{more}: {shown}."]
    else:
        lines = ["No tool has been called yet for this request."]
    files = requested_files(request_of(messages))
    if files:
        written = {
            f for f in files for c in calls if c.name in EDIT_TOOLS and c.ok and same_file(c.args.get("file_path"), f)
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
    return json_request(chat, instruction, schema, 24, s)


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
    return json_request(chat, instruction, schema, s.tool_max_tokens, s)


_BODY_KEYS = ("content", "prompt")


def body_field(tool: ToolDef) -> str | None:
    """The argument a small model writes as plain text after the others, not inside JSON: a required,
    unconstrained string named like a file body or a brief (Write's `content`, Task's `prompt`). Inside a
    grammar such text is slow, squeezed into the schema budget, and code loses its newlines."""
    properties = tool.schema.get("properties", {})
    for name in tool.schema.get("required", []):
        if name in _BODY_KEYS and isinstance(properties.get(name), dict) and is_free_string(properties[name]):
            return str(name)
    return None


def without(tool: ToolDef, field: str) -> ToolDef:
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
    shown = ", ".join(f"{k}={clip_line(json.dumps(v, ensure_ascii=False), 120)}" for k, v in args.items())
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


def cut_at_max_tokens(response: Mapping[str, Any]) -> bool:
    """Whether the reply stopped at max_tokens rather than where the model ended it."""
    choice = (response.get("choices") or [{}])[0]
    return isinstance(choice, Mapping) and choice.get("finish_reason") == "length"


def parse_text(response: Mapping[str, Any]) -> str:
    """The free-text answer of step 2b; a reply that ran into a loop (stopped by `LoopGuard`, or cut at
    max_tokens) keeps one copy of the looping passage."""
    text = _content(response).strip()
    cut = cut_at_max_tokens(response)
    if response.get(LOOP_STOPPED) or cut:
        text = trim_loop(text)
    if cut and text.rfind("\n") >= len(text) // 3:
        text = text[: text.rfind("\n")].rstrip()  # a reply cut at max_tokens ends at its last full line
    return text
