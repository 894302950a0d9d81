"""The local chat adapter: pure prompt/schema building and parsing, and the two-step protocol driven
through a scripted llama boundary (the `create_chat_completion` layer, not a fake chat model)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field
from structlog.testing import capture_logs

from orchestrator.errors import UserError
from orchestrator.local.chat import ChatLocalLlama, LocalProvider
from orchestrator.local.engine import LocalEngine, LocalModelError
from orchestrator.local.loops import LOOP_STOPPED, LoopGuard, loop_period, trim_loop
from orchestrator.local.render import PromptLimits, render_messages
from orchestrator.local.schema import ToolDef, bounded_schema, tool_defs
from orchestrator.local.steps import (
    ANSWER,
    MARKERS,
    GenerationSettings,
    answer_instruction,
    answer_request,
    body_field,
    body_request,
    choice_request,
    parse_body,
    parse_choice,
    parse_text,
    parse_tool_args,
    progress_note,
    tool_request,
)
from orchestrator.local.turn import candidate_actions, open_actions, run_turn

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


# --- schemas --------------------------------------------------------------------------------------


def test_bounded_schema_gives_prose_more_room_than_paths_within_the_budget() -> None:
    schema = bounded_schema(WRITE["input_schema"], budget=900)
    props = schema["properties"]
    assert props["content"]["maxLength"] > 3 * props["file_path"]["maxLength"]
    assert string_budget(schema) <= 900
    assert schema["additionalProperties"] is False
    assert "maxLength" not in WRITE["input_schema"]["properties"]["content"]  # input untouched


def test_bounded_schema_bounds_arrays_optionals_and_nested_definitions() -> None:
    class Item(BaseModel):
        name: str
        tags: list[str]

    class Plan(BaseModel):
        items: list[Item]
        summary: str | None = None

    schema = bounded_schema(Plan.model_json_schema(), budget=900, max_items=4, keep_optional=True)
    assert "$defs" not in json.dumps(schema)
    assert schema["properties"]["items"]["maxItems"] == 4
    item = schema["properties"]["items"]["items"]
    assert item["additionalProperties"] is False
    assert item["properties"]["tags"]["maxItems"] == 4
    assert item["properties"]["tags"]["items"]["maxLength"] >= 4
    assert schema["properties"]["summary"]["anyOf"][0]["maxLength"] > 0
    assert string_budget(schema) <= 900


def test_bounded_schema_keeps_smaller_limits_and_leaves_enums_alone() -> None:
    schema = bounded_schema(
        {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": ["a", "b"]},
                "code": {"type": "string", "maxLength": 12},
                "items": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            },
        },
        keep_optional=True,
    )
    assert "maxLength" not in schema["properties"]["kind"]
    assert schema["properties"]["code"]["maxLength"] == 12
    assert schema["properties"]["items"]["maxItems"] == 2


def test_bounded_schema_makes_type_lists_and_untyped_values_boundable() -> None:
    schema = bounded_schema(
        {
            "type": "object",
            "properties": {"a": {"type": ["string", "null"]}, "b": {}, "c": {"type": "array"}},
        },
        keep_optional=True,
    )
    a, b, c = (schema["properties"][k] for k in "abc")
    assert a["anyOf"][0]["type"] == "string"
    assert a["anyOf"][0]["maxLength"] > 0
    assert a["anyOf"][1] == {"type": "null"}
    assert b["type"] == "string"
    assert b["maxLength"] > 0
    assert c["items"]["maxLength"] > 0


def test_bounded_schema_drops_optional_knobs_by_default() -> None:
    schema = bounded_schema(Verdict.model_json_schema())
    assert list(schema["properties"]) == ["verdict", "feedback"]
    assert schema["properties"]["feedback"]["maxLength"] == 900


def test_tool_defs_accept_anthropic_dicts_and_pydantic_classes() -> None:
    read, verdict = tool_defs([READ, Verdict])
    assert (read.name, read.schema["required"]) == ("Read", ["file_path"])
    assert verdict.name == "Verdict"
    assert verdict.description == "The reviewer's verdict."
    assert verdict.schema["properties"]["verdict"]["enum"] == ["approve", "revise"]


# --- tool choice ----------------------------------------------------------------------------------

TOOLS = tool_defs([READ, WRITE])


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


# --- rendering ------------------------------------------------------------------------------------


def test_render_puts_tool_traffic_in_a_compact_user_side_log() -> None:
    chat = render_messages(
        [
            SystemMessage("sys"),
            HumanMessage("task"),
            AIMessage(content="", tool_calls=[call("Read", {"file_path": "a.py"}, "t1")]),
            ToolMessage("x" * 5000, tool_call_id="t1", name="Read"),
            ToolMessage("boom", tool_call_id="t2", name="Write", status="error"),
            AIMessage("Done: a.py read."),
        ]
    )
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    log = chat[1]["content"]
    assert log.startswith('task\n\n[You called Read(file_path="a.py")]\n\n[Read result]\nxxx')
    assert "chars omitted" in log
    assert len(log) < 1000
    assert "[Write error]\nboom" in log
    assert chat[2]["content"] == "Done: a.py read."  # only what the model said is an assistant turn


def test_render_gives_the_request_more_room_than_later_messages() -> None:
    limits = PromptLimits(request_chars=500, message_chars=100)
    chat = render_messages([HumanMessage("r" * 400), AIMessage("a" * 400), HumanMessage("m" * 400)], limits)
    assert chat[0]["content"] == "r" * 400
    assert "chars omitted" in chat[1]["content"]
    assert "chars omitted" in chat[2]["content"]


def test_render_trims_long_histories_but_keeps_system_task_and_latest() -> None:
    history: list[BaseMessage] = [SystemMessage("sys"), HumanMessage("the task")]
    for n in range(40):
        history += [AIMessage(f"thinking {n} " + "y" * 300), HumanMessage(f"more {n} " + "z" * 300)]
    chat = render_messages(history, PromptLimits(total_chars=3000))
    text = "".join(m["content"] for m in chat)
    assert len(text) < 3200
    assert chat[0] == {"role": "system", "content": "sys"}
    assert chat[1]["content"].startswith("the task")
    assert "earlier messages omitted" in chat[1]["content"]
    assert chat[-1]["content"].startswith("more 39")


def test_render_always_ends_with_a_user_turn() -> None:
    chat = render_messages([SystemMessage("sys"), HumanMessage("q"), AIMessage("half an answer")])
    assert chat[-1] == {"role": "user", "content": "Continue."}


def test_render_reads_text_out_of_content_blocks() -> None:
    message = HumanMessage(content=[{"type": "text", "text": "hello"}, {"type": "image", "url": "x"}])
    assert render_messages([message]) == [{"role": "user", "content": "hello"}]


# --- requests -------------------------------------------------------------------------------------


def test_step_instructions_go_last_so_the_prompt_prefix_is_shared() -> None:
    chat = render_messages([SystemMessage("sys"), HumanMessage("Write hi to a.txt")])
    choose = choice_request(chat, TOOLS, ["Read", "Write", ANSWER], GenerationSettings(), note="No tool yet.")
    act = tool_request(chat, TOOLS[1], GenerationSettings())
    first, second = choose["messages"][-1]["content"], act["messages"][-1]["content"]
    assert first.startswith("Write hi to a.txt\n\n[Progress] No tool yet.\n[Next step]")
    assert second.startswith("Write hi to a.txt\n\n[Next step] Call the tool Write")
    assert choose["messages"][0] == act["messages"][0]
    assert "- Read: Reads a file." in first
    assert "More detail" not in first


def test_requests_carry_the_sampling_settings() -> None:
    chat = render_messages([HumanMessage("q")])
    settings = GenerationSettings(temperature=0.3, repeat_penalty=1.15, seed=7)
    for request in (
        choice_request(chat, TOOLS, ["Read", ANSWER], settings),
        tool_request(chat, TOOLS[0], settings),
        body_request(chat, TOOLS[1], "content", {"file_path": "a.txt"}, settings),
        answer_request(chat, settings, answer_instruction("q", worked=False)),
    ):
        assert (request["temperature"], request["repeat_penalty"], request["seed"]) == (0.3, 1.15, 7)


def test_enum_arguments_without_a_description_list_their_values() -> None:
    tool = ToolDef("Pick", "Picks.", {"type": "object", "properties": {"x": {"enum": ["a", "b"]}}, "required": ["x"]})
    text = tool_request(render_messages([HumanMessage("q")]), tool, GenerationSettings())["messages"][-1]["content"]
    assert "- x (required): one of a, b" in text


def test_choice_schema_is_an_enum_of_the_actions() -> None:
    chat = render_messages([HumanMessage("q")])
    schema = choice_request(chat, TOOLS, ["Read", ANSWER], GenerationSettings())["response_format"]["schema"]
    assert schema["properties"]["action"]["enum"] == ["Read", ANSWER]


def test_tool_request_constrains_output_to_the_bounded_schema() -> None:
    chat = render_messages([HumanMessage("q")])
    request = tool_request(chat, TOOLS[1], GenerationSettings(schema_budget=500, tool_max_tokens=700))
    assert request["response_format"]["type"] == "json_object"
    assert string_budget(request["response_format"]["schema"]) <= 500
    assert request["max_tokens"] == 700
    assert "- content (required): What to write" in request["messages"][-1]["content"]


# --- parsing --------------------------------------------------------------------------------------


def test_parse_tool_args_accepts_raw_newlines_inside_strings() -> None:
    args = parse_tool_args(completion('{"file_path": "a.txt", "content": "line1\nline2"}'), TOOLS[1])
    assert args == {"file_path": "a.txt", "content": "line1\nline2"}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"file_path": "a.txt", "content": "trunc', "not complete JSON"),
        ('["a.txt"]', "expected a JSON object"),
        ('{"file_path": "a.txt"}', "missing required"),
    ],
)
def test_parse_tool_args_rejects_unusable_output(content: str, match: str) -> None:
    with pytest.raises(LocalModelError, match=match):
        parse_tool_args(completion(content), TOOLS[1])


def test_parse_choice_rejects_an_action_not_offered() -> None:
    assert parse_choice(completion('{"action": "Read"}'), ["Read", ANSWER]) == "Read"
    with pytest.raises(LocalModelError, match="Bash"):
        parse_choice(completion('{"action": "Bash"}'), ["Read", ANSWER])


def test_parse_text_rejects_a_malformed_completion() -> None:
    assert parse_text(completion("  Paris \n")) == "Paris"
    with pytest.raises(LocalModelError, match="malformed"):
        parse_text({"choices": []})


# --- the protocol through the llama boundary ------------------------------------------------------

TASK: list[BaseMessage] = [SystemMessage("You write files."), HumanMessage("Write hello world to hello.txt")]


async def test_agent_turn_chooses_a_tool_then_fills_its_arguments_and_writes_its_body() -> None:
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt"}', "```text\nhello world\n```\nDone.")
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(TASK)
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


async def test_repeating_the_call_that_just_succeeded_becomes_an_answer() -> None:
    done = [
        *TASK,
        AIMessage("", tool_calls=[call("Write", {"file_path": "hello.txt", "content": "hi"}, "t1")]),
        ToolMessage("Wrote 2 bytes", tool_call_id="t1", name="Write"),
    ]
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt"}', "hi", "Done.")
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(done)
    assert llama.steps == ["choose", "tool", "body", "answer"]
    assert reply.content == "Done."
    assert reply.tool_calls == []
    assert "local_repeat_call_answered" in [entry["event"] for entry in logs]
    assert "Base it on the tool results above" in llama.requests[-1]["messages"][-1]["content"]


async def test_repeating_a_call_that_failed_asks_again_without_that_tool() -> None:
    failed = [
        HumanMessage("Greet the world in the notes."),
        AIMessage("", tool_calls=[call("Read", {"file_path": "hello.txt"}, "t1")]),
        ToolMessage("Error: no such file", tool_call_id="t1", name="Read", status="error"),
    ]
    llama = ScriptedLlama(
        '{"action": "Read"}', '{"file_path": "hello.txt"}', '{"action": "Write"}', '{"file_path": "hello.txt"}', "hi"
    )
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(failed)
    assert llama.steps == ["choose", "tool", "choose", "tool", "body"]
    assert llama.requests[2]["response_format"]["schema"]["properties"]["action"]["enum"] == ["Write", ANSWER]
    assert [c["name"] for c in reply.tool_calls] == ["Write"]
    assert "local_call_not_repeated" in [entry["event"] for entry in logs]


async def test_a_request_for_files_is_not_answered_before_a_tool_call_worked() -> None:
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt"}', "hello world")
    await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(TASK)
    assert llama.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"] == ["Read", "Write"]
    question = ScriptedLlama('{"action": "answer"}', "Paris.")
    await chat_model(question).bind_tools([READ, WRITE]).ainvoke([HumanMessage("Capital of France?")])
    assert ANSWER in question.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"]


async def test_review_feedback_is_not_answered_before_a_tool_call_worked_since() -> None:
    worked = [
        HumanMessage("Summarise the notes."),
        AIMessage("", tool_calls=[call("Write", {"file_path": "sum.md", "content": "x"}, "t1")]),
        ToolMessage("Created file sum.md (1 lines).", tool_call_id="t1", name="Write"),
        AIMessage("Wrote sum.md."),
    ]
    revise = [*worked, HumanMessage("Review of round 1: revise. sum.md is empty of facts.\nFix this with your tools.")]
    llama = ScriptedLlama('{"action": "Read"}', '{"file_path": "sum.md"}')
    await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(revise)
    assert llama.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"] == ["Read", "Write"]
    fixed = [
        *revise,
        AIMessage("", tool_calls=[call("Write", {"file_path": "sum.md", "content": "facts"}, "t2")]),
        ToolMessage("Updated file sum.md.", tool_call_id="t2", name="Write"),
    ]
    done = ScriptedLlama('{"action": "answer"}', "Fixed sum.md.")
    await chat_model(done).bind_tools([READ, WRITE]).ainvoke(fixed)
    assert ANSWER in done.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"]


async def test_feedback_on_a_file_task_is_not_answered_before_a_write_since() -> None:
    history = [
        HumanMessage("Create sum.md with the summary."),
        AIMessage("", tool_calls=[call("Write", {"file_path": "sum.md", "content": "x"}, "t1")]),
        ToolMessage("Created file sum.md (1 lines).", tool_call_id="t1", name="Write"),
        AIMessage("Wrote sum.md."),
        HumanMessage("Review of round 1: revise. sum.md has no facts.\nFix this with your tools."),
        AIMessage("", tool_calls=[call("Read", {"file_path": "sum.md"}, "t2")]),
        ToolMessage("1\tx", tool_call_id="t2", name="Read"),
    ]
    llama = ScriptedLlama('{"action": "Read"}', '{"file_path": "sum.md"}', '{"file_path": "sum.md"}', "facts")
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(history)
    assert llama.steps == ["choose", "tool", "tool", "body"]  # Write is the one action left: no second choice
    assert llama.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"] == ["Read", "Write"]
    assert [(c["name"], c["args"]["content"]) for c in reply.tool_calls] == [("Write", "facts")]
    assert [e["failed"] for e in logs if e["event"] == "local_call_not_repeated"] == [False]


def test_a_tool_that_failed_twice_this_round_is_not_offered_again() -> None:
    def edit(n: int) -> list[BaseMessage]:
        args = {"file_path": "a.md", "old_string": f"x{n}", "new_string": "y"}
        return [
            AIMessage("", tool_calls=[call("Edit", args, f"e{n}")]),
            ToolMessage("Error: old_string not found", tool_call_id=f"e{n}", name="Edit", status="error"),
        ]

    request = [HumanMessage("Improve the notes.")]
    assert open_actions(["Read", "Edit", "Write", ANSWER], [*request, *edit(1)]) == ["Read", "Edit", "Write", ANSWER]
    assert open_actions(["Read", "Edit", "Write", ANSWER], [*request, *edit(1), *edit(2)]) == ["Read", "Write", ANSWER]
    feedback = HumanMessage("Review of round 1: revise. Add risks.")
    assert "Edit" in open_actions(["Read", "Edit", "Write"], [*request, *edit(1), *edit(2), feedback])
    assert open_actions(["Edit"], [*request, *edit(1), *edit(2)]) == ["Edit"]  # never empty


WROTE = [
    HumanMessage("Create sum.md with the summary."),
    AIMessage("", tool_calls=[call("Write", {"file_path": "sum.md", "content": "x"}, "t1")]),
    ToolMessage("Created file sum.md (1 lines).", tool_call_id="t1", name="Write"),
    HumanMessage("Review of round 1: revise. Add the facts."),
]


async def test_a_body_that_repeats_a_tool_result_is_asked_for_again() -> None:
    llama = ScriptedLlama(
        '{"action": "Write"}', '{"file_path": "sum.md"}', "Created file sum.md (1 lines).", "# Summary\n- facts"
    )
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(WROTE)
    assert llama.steps == ["choose", "tool", "body", "body"]
    assert "not a copy of a tool result" in llama.requests[3]["messages"][-1]["content"]
    assert [c["args"]["content"] for c in reply.tool_calls] == ["# Summary\n- facts"]
    assert "local_body_repeated_a_result" in [e["event"] for e in logs]


async def test_a_body_that_repeats_a_result_twice_is_not_written() -> None:
    echo = "Created file sum.md (2 lines)."  # the shape of the result, numbers aside
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "sum.md"}', echo, echo, '{"file_path": "sum.md"}')
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(WROTE)
    assert llama.steps == ["choose", "tool", "body", "body", "tool"]  # Read is all that is left: no choice
    assert [c["name"] for c in reply.tool_calls] == ["Read"]
    only_write = ScriptedLlama('{"file_path": "sum.md"}', echo, echo, "I could not improve sum.md.")
    reply = await chat_model(only_write).bind_tools([WRITE]).ainvoke(WROTE)
    assert only_write.steps == ["tool", "body", "body", "answer"]
    assert (reply.tool_calls, reply.content) == ([], "I could not improve sum.md.")


async def test_with_structured_output_works_through_the_forced_path() -> None:
    llama = ScriptedLlama('{"verdict": "approve", "feedback": "fine"}')
    result = await chat_model(llama).with_structured_output(Verdict).ainvoke(TASK)
    assert result == Verdict(verdict="approve", feedback="fine")


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
        await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(TASK)


def test_llama_refusals_become_local_model_errors() -> None:
    class Overflow:
        def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
            raise ValueError("Requested tokens (5000) exceed context window of 4096")

    engine = LocalEngine.of("tiny", Overflow())
    with pytest.raises(LocalModelError, match="exceed context window"):
        run_turn(engine, TASK, [], None, GenerationSettings())


def test_every_call_is_logged_with_tokens_and_time() -> None:
    llama = ScriptedLlama('{"action": "answer"}', "done")
    with capture_logs() as logs:
        run_turn(LocalEngine.of("tiny", llama), [HumanMessage("Say done.")], TOOLS, None, GenerationSettings())
    calls = [entry for entry in logs if entry["event"] == "model_call"]
    assert [c["step"] for c in calls] == ["choose", "answer"]
    assert {k for k in calls[0] if k != "log_level"} >= {"model", "input_tokens", "output_tokens", "seconds"}
    assert calls[0]["model"] == "tiny"
    assert calls[0]["input_tokens"] == 10


async def test_calls_to_one_model_are_serialised_and_the_loop_stays_free() -> None:
    llama = ScriptedLlama(*["x"] * 3, delay=0.05)
    model = chat_model(llama)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(10):
            await asyncio.sleep(0.01)
            ticks += 1

    await asyncio.gather(*(model.ainvoke([HumanMessage(str(n))]) for n in range(3)), ticker())
    assert llama.max_active == 1
    assert ticks == 10


def test_a_model_is_loaded_once_lazily_and_loading_errors_are_call_errors() -> None:
    loads: list[int] = []

    def load() -> ScriptedLlama:
        loads.append(1)
        return ScriptedLlama("a", "b")

    engine = LocalEngine("tiny", load)
    assert loads == []
    for _ in range(2):
        run_turn(engine, TASK, [], None, GenerationSettings())
    assert loads == [1]

    def broken() -> ScriptedLlama:
        raise ValueError("Failed to load model from file")

    with pytest.raises(LocalModelError, match="cannot load"):
        run_turn(LocalEngine("bad", broken), TASK, [], None, GenerationSettings())


# --- the provider ---------------------------------------------------------------------------------


@pytest.fixture
def user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    paths = {}
    for role in ("senior", "junior"):
        paths[role] = tmp_path / f"{role}.gguf"
        paths[role].write_bytes(b"GGUF")
        monkeypatch.setenv(f"ORCHESTRATE_LOCAL_{role.upper()}_MODEL", str(paths[role]))
    return paths


@pytest.mark.parametrize(
    ("model", "role"),
    [
        ("opus", "senior"),
        ("sonnet", "junior"),
        ("haiku", "junior"),
        ("claude-opus-4-6", "senior"),
        ("claude-3-5-haiku-latest", "junior"),
        ("senior", "senior"),
        ("Opus", "senior"),
    ],
)
def test_provider_maps_claude_names_to_local_roles(model: str, role: str) -> None:
    assert LocalProvider().role_for(model) == role


def test_provider_aliases_are_overridable() -> None:
    assert LocalProvider(aliases={"sonnet": "senior"}).role_for("claude-sonnet-4-6") == "senior"
    from_env = LocalProvider.from_env({"ORCHESTRATE_LOCAL_SONNET": " Senior ", "ORCHESTRATE_LOCAL_OPUS": ""})
    assert (from_env.role_for("sonnet"), from_env.role_for("opus"), from_env.role_for("haiku")) == (
        "senior",
        "senior",
        "junior",
    )
    with pytest.raises(UserError, match="ORCHESTRATE_LOCAL_HAIKU='big': expected one of senior, junior"):
        LocalProvider.from_env({"ORCHESTRATE_LOCAL_HAIKU": "big"})


def test_unknown_model_names_fall_back_to_the_junior_with_a_warning() -> None:
    with capture_logs() as logs:
        assert LocalProvider().role_for("gpt-4o") == "junior"
    assert logs[0]["event"] == "local_model_fallback"
    assert logs[0]["log_level"] == "warning"


def test_provider_shares_one_engine_per_file(user_models: dict[str, Path]) -> None:
    loaded: list[Path] = []
    lock = threading.Lock()

    def loader(path: Path) -> ScriptedLlama:
        with lock:
            loaded.append(path)
        return ScriptedLlama("ok", "ok")

    provider = LocalProvider(loader=loader)
    sonnet, haiku, opus = (provider.chat_model(m) for m in ("sonnet", "haiku", "opus"))
    assert isinstance(sonnet, ChatLocalLlama)
    assert isinstance(haiku, ChatLocalLlama)
    assert isinstance(opus, ChatLocalLlama)
    assert sonnet.engine is haiku.engine
    assert opus.engine is not sonnet.engine
    sonnet.invoke("a")
    haiku.invoke("b")
    assert loaded == [user_models["junior"].resolve()]
    assert provider.name == "local"
    assert provider.errors == (LocalModelError,)


def test_provider_needs_the_model_file_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATE_MODELS_DIR", str(tmp_path))
    monkeypatch.delenv("ORCHESTRATE_LOCAL_JUNIOR_MODEL", raising=False)
    with pytest.raises(Exception, match="orchestrate models pull"):
        LocalProvider().chat_model("haiku")


def test_tool_def_round_trips_to_anthropic_format() -> None:
    tool = ToolDef("Read", "Reads.", {"type": "object", "properties": {}})
    assert tool_defs([tool.as_anthropic()]) == [tool]


# --- facts, bodies and loops ----------------------------------------------------------------------


def test_progress_note_states_calls_outcomes_and_requested_files() -> None:
    task = HumanMessage("Create app.py and write tests/test_app.py")
    assert progress_note([task]) == (
        "No tool has been called yet for this request.\n"
        "Files the request asks for: app.py (not written yet), tests/test_app.py (not written yet)."
    )
    history = [
        task,
        AIMessage("", tool_calls=[call("Read", {"file_path": "app.py"}, "t1")]),
        ToolMessage("Error: File does not exist: app.py", tool_call_id="t1", name="Read", status="error"),
        AIMessage("", tool_calls=[call("Write", {"file_path": "/ws/app.py", "content": "x"}, "t2")]),
        ToolMessage("Created file app.py (1 lines).", tool_call_id="t2", name="Write"),
    ]
    assert progress_note(history) == (
        "Tool calls so far: Read app.py (error: File does not exist: app.py); Write /ws/app.py (ok).\n"
        "Files the request asks for: app.py (written), tests/test_app.py (not written yet)."
    )


def test_body_field_is_a_required_free_text_argument_named_like_a_body() -> None:
    assert body_field(tool_defs([WRITE])[0]) == "content"
    assert body_field(tool_defs([READ])[0]) is None
    task = ToolDef(
        "Task",
        "Delegates.",
        {
            "type": "object",
            "properties": {"prompt": {"type": "string"}, "kind": {"type": "string", "enum": ["a"]}},
            "required": ["prompt", "kind"],
        },
    )
    assert body_field(task) == "prompt"
    optional = ToolDef("Note", "", {"type": "object", "properties": {"content": {"type": "string"}}})
    assert body_field(optional) is None


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("```python\nimport os\n\nprint(1)\n```\n\nThis script prints 1.", "import os\n\nprint(1)\n"),
        ("```\nplain\n```", "plain\n"),
        ("```yaml\nkey: value", "key: value\n"),
        ("no fence here\n", "no fence here"),
    ],
)
def test_parse_body_takes_what_a_leading_fence_holds(text: str, body: str) -> None:
    assert parse_body(completion(text)) == body


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


def test_loop_period_finds_a_loop_only_at_the_end() -> None:
    assert loop_period([1, 2, 3] * 20) == 3
    assert loop_period(list(range(100))) == 0
    assert loop_period([*([1, 2, 3] * 20), 4, 5, 6]) == 0
    assert loop_period([7] * 10) == 0  # shorter than min_span: could be a run of spaces
    sentence = list(range(50, 110))  # a 60-token sentence said twice in a row
    assert loop_period([*range(10), *sentence, *sentence]) == 60


def test_trim_loop_keeps_one_copy_of_the_repeated_passage() -> None:
    looping = "Intro. " + "The model handles many kinds of queries. " * 6 + "The model han"
    assert trim_loop(looping) == "Intro. The model handles many kinds of queries."
    fine = "A normal answer.\n- one\n- two\n"
    assert trim_loop(fine) == fine


def test_parse_text_trims_replies_that_looped_or_ran_out_of_tokens() -> None:
    looping = "Summary.\n" + "Risk: data drift, monitor it. " * 5
    stopped = {**completion(looping), LOOP_STOPPED: True}
    assert parse_text(stopped) == "Summary.\nRisk: data drift, monitor it."
    cut = completion("Line one.\nLine two.\nLine three is cut mid-", finish="length")
    assert parse_text(cut) == "Line one.\nLine two."
    assert parse_text(completion(looping)) == looping.strip()  # a natural stop is left alone


def test_loop_guard_forces_the_end_of_a_looping_generation() -> None:
    guard = LoopGuard(eos=0, max_period=10, min_span=8)
    prompt = [9, 9, 9]
    scores = [1.0, 2.0, 3.0]
    assert guard(_Ids(prompt), list(scores)) == scores  # the first call learns the prompt length
    assert guard(_Ids([*prompt, 1, 2, 3, 4]), list(scores)) == scores
    assert not guard.tripped
    out = guard(_Ids([*prompt, *([1, 2] * 4)]), list(scores))
    assert guard.tripped
    assert out == [0.0, float("-inf"), float("-inf")]


class _Ids(list[int]):
    """The slice of llama.cpp's input ids a logits processor sees (a numpy array there)."""

    def __getitem__(self, item: Any) -> Any:
        value = super().__getitem__(item)
        return _Ids(value) if isinstance(item, slice) else value

    def tolist(self) -> list[int]:
        return list(self)


def test_the_engine_guards_free_text_against_loops_when_the_model_can() -> None:
    class Looping(ScriptedLlama):
        def token_eos(self) -> int:
            return 0

        def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
            [guard] = kwargs.pop("logits_processor")
            guard(_Ids([5]), [0.0])
            guard(_Ids([5, *([1, 2] * 30)]), [0.0, 0.0])
            return super().create_chat_completion(**kwargs)

    engine = LocalEngine.of("tiny", Looping("ab" * 30))
    with capture_logs() as logs:
        response = engine.complete("answer", {"messages": []}, stop_loops=True)
    assert response[LOOP_STOPPED] is True
    assert "local_loop_stopped" in [entry["event"] for entry in logs]
    plain = ScriptedLlama("x")
    assert LOOP_STOPPED not in LocalEngine.of("tiny", plain).complete("answer", {"messages": []}, stop_loops=True)
    assert "logits_processor" not in plain.requests[0]
