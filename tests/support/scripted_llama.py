"""The llama boundary scripted for the local adapter's tests: `ScriptedLlama` answers `create_chat_completion`
with the given contents in order (below the chat model, so the adapter itself is what runs), plus tool
fixtures and helpers."""

from __future__ import annotations

import time
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from orchestrator.local.chat import ChatLocalLlama
from orchestrator.local.engine import LocalEngine
from orchestrator.local.schema import tool_defs

READ: dict[str, Any] = {
    "name": "Read",
    "description": "Reads a file.\nMore detail nobody needs locally.",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string", "description": "Path to read"}},
        "required": ["file_path"],
    },
}
WRITE: dict[str, Any] = {
    "name": "Write",
    "description": "Writes a file.",
    "input_schema": {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "Path to write"},
            "content": {"type": "string", "description": "What to write"},
        },
        "required": ["file_path", "content"],
    },
}


class Verdict(BaseModel):
    """The reviewer's verdict."""

    verdict: Literal["approve", "revise"]
    feedback: str = Field(description="What to fix")
    notes: list[str] = Field(default_factory=list)
    extra: str | None = None


def completion(
    content: str, prompt_tokens: int = 10, completion_tokens: int = 5, finish: str = "stop"
) -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


class ScriptedLlama:
    """The llama boundary, scripted: returns the given contents in order and records every request."""

    def __init__(self, *contents: str, delay: float = 0.0) -> None:
        self.contents = list(contents)
        self.requests: list[dict[str, Any]] = []
        self.delay = delay
        self.active = 0
        self.max_active = 0

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)
        self.requests.append(kwargs)
        self.active -= 1
        if not self.contents:
            raise AssertionError(f"unscripted call: {kwargs['messages'][-1]['content'][-200:]!r}")
        return completion(self.contents.pop(0))

    @property
    def steps(self) -> list[str]:
        """Which protocol step each request was, read from its shape."""
        return [_step_of(r) for r in self.requests]


def _step_of(request: dict[str, Any]) -> str:
    schema = request.get("response_format", {}).get("schema")
    if schema is None:
        return "body" if "[Next step] Now write the " in request["messages"][-1]["content"] else "answer"
    return "choose" if list(schema["properties"]) == ["action"] else "tool"


def call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def chat_model(llama: ScriptedLlama) -> ChatLocalLlama:
    return ChatLocalLlama(engine=LocalEngine.of("tiny", llama), model_name="local-test")


def string_budget(schema: Any, copies: int = 1) -> int:
    """Total characters the grammar allows across all strings (array items counted maxItems times)."""
    if isinstance(schema, list):
        return sum(string_budget(s, copies) for s in schema)
    if not isinstance(schema, dict):
        return 0
    own = copies * int(schema.get("maxLength", 0))
    if schema.get("type") == "array":
        return own + string_budget(schema["items"], copies * int(schema["maxItems"]))
    subs = [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]
    return own + sum(string_budget(sub, copies) for sub in subs)


TOOLS = tool_defs([READ, WRITE])
TASK: list[BaseMessage] = [SystemMessage("You write files."), HumanMessage("Write hello world to hello.txt")]
READ_THEN_WRITE: list[BaseMessage] = [
    SystemMessage("You write files."),
    HumanMessage("Read notes.md, then write hello world to hello.txt"),
]
"""A request that names an input file too, so the model chooses its first action (no `write_requested`)."""
WROTE = [
    HumanMessage("Create sum.md with the summary."),
    AIMessage("", tool_calls=[call("Write", {"file_path": "sum.md", "content": "x"}, "t1")]),
    ToolMessage("Created file sum.md (1 lines).", tool_call_id="t1", name="Write"),
    HumanMessage("Review of round 1: revise. Add the facts."),
]
"""A file task written once, then sent back by the review."""


class TokenIds(list[int]):
    """The slice of llama.cpp's input ids a logits processor sees (a numpy array there)."""

    def __getitem__(self, item: Any) -> Any:
        value = super().__getitem__(item)
        return TokenIds(value) if isinstance(item, slice) else value

    def tolist(self) -> list[int]:
        return list(self)
