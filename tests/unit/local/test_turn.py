"""One turn by the two-step protocol (choose, then act) through a scripted llama boundary."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from orchestrator.local.engine import LocalModelError
from orchestrator.local.steps import (
    ANSWER,
    MARKERS,
    GenerationSettings,
    answer_instruction,
)
from orchestrator.local.turn import candidate_actions
from tests.support.scripted_llama import (
    READ,
    READ_THEN_WRITE,
    TASK,
    TOOLS,
    WRITE,
    ScriptedLlama,
    Verdict,
    call,
    chat_model,
)


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        (None, ["Read", "Write", ANSWER]),
        ("auto", ["Read", "Write", ANSWER]),
        ("any", ["Read", "Write"]),
        ("none", [ANSWER]),
        ("Write", ["Write"]),
        ({"type": "tool", "name": "Read"}, ["Read"]),
        ({"type": "function", "function": {"name": "Write"}}, ["Write"]),
    ],
)
def test_candidate_actions(tool_choice: object, expected: list[str]) -> None:
    assert candidate_actions(TOOLS, tool_choice) == expected


def test_candidate_actions_without_tools_is_a_text_answer() -> None:
    assert candidate_actions([], None) == [ANSWER]


def test_forcing_an_unbound_tool_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="Edit"):
        candidate_actions(TOOLS, "Edit")
    with pytest.raises(ValueError, match="Edit"):
        chat_model(ScriptedLlama()).bind_tools([READ], tool_choice="Edit")


async def test_agent_turn_chooses_a_tool_then_fills_its_arguments_and_writes_its_body() -> None:
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt"}', "```text\nhello world\n```\nDone.")
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(READ_THEN_WRITE)
    assert isinstance(reply, AIMessage)
    assert llama.steps == ["choose", "tool", "body"]
    assert list(llama.requests[1]["response_format"]["schema"]["properties"]) == ["file_path"]
    body = llama.requests[2]
    assert 'file_path="hello.txt"' in body["messages"][-1]["content"]
    assert set(MARKERS) <= set(body["stop"])
    [tool_call] = reply.tool_calls
    assert (tool_call["name"], tool_call["args"]) == ("Write", {"file_path": "hello.txt", "content": "hello world\n"})
    assert tool_call["id"]
    assert tool_call["type"] == "tool_call"
    assert reply.usage_metadata == {"input_tokens": 30, "output_tokens": 15, "total_tokens": 45}


async def test_agent_turn_may_answer_in_text() -> None:
    llama = ScriptedLlama('{"action": "answer"}', "Paris.")
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke([HumanMessage("Capital of France?")])
    assert llama.steps == ["choose", "answer"]
    assert reply.content == "Paris."
    assert reply.tool_calls == []
    answer = llama.requests[1]
    assert answer["max_tokens"] == GenerationSettings().answer_max_tokens
    assert answer["messages"][-1]["content"].endswith(answer_instruction("Capital of France?", worked=False))
    assert set(MARKERS) <= set(answer["stop"])


async def test_the_choice_sees_the_facts_of_the_conversation() -> None:
    history = [
        *TASK,
        AIMessage("", tool_calls=[call("Read", {"file_path": "hello.txt"}, "t1")]),
        ToolMessage("Error: File does not exist: hello.txt", tool_call_id="t1", name="Read", status="error"),
    ]
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt"}', "hello world")
    await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(history)
    choose = llama.requests[0]["messages"][-1]["content"]
    assert "[Progress] Tool calls so far: Read hello.txt (error: File does not exist: hello.txt)." in choose
    assert "Files the request asks for: hello.txt (not written yet)." in choose


async def test_forced_call_skips_the_choice() -> None:
    llama = ScriptedLlama('{"verdict": "revise", "feedback": "add tests", "notes": []}')
    reply = await chat_model(llama).bind_tools([Verdict], tool_choice="Verdict").ainvoke(TASK)
    assert llama.steps == ["tool"]
    assert Verdict.model_validate(reply.tool_calls[0]["args"]).verdict == "revise"


async def test_without_tools_a_turn_is_one_text_generation() -> None:
    llama = ScriptedLlama("hi")
    reply = await chat_model(llama).ainvoke([HumanMessage("say hi")], stop=["\n\n"])
    assert llama.steps == ["answer"]
    assert llama.requests[0]["stop"] == ["\n\n", *MARKERS]
    assert llama.requests[0]["messages"] == [{"role": "user", "content": "say hi"}]
    assert reply.content == "hi"


async def test_unusable_output_is_a_local_model_error() -> None:
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hel')
    with pytest.raises(LocalModelError, match="not complete JSON"):
        await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(READ_THEN_WRITE)


async def test_a_body_is_cut_to_the_schema_maximum() -> None:
    note = {
        "name": "Note",
        "description": "Saves a note.",
        "input_schema": {
            "type": "object",
            "properties": {"content": {"type": "string", "maxLength": 5}},
            "required": ["content"],
        },
    }
    llama = ScriptedLlama('{"action": "Note"}', "a long note")
    reply = await chat_model(llama).bind_tools([note]).ainvoke([HumanMessage("Note something.")])
    assert llama.steps == ["choose", "body"]
    assert reply.tool_calls[0]["args"] == {"content": "a lon"}
