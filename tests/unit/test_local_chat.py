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

from orchestrator.local_chat import (
    ANSWER,
    ChatLocalLlama,
    LocalEngine,
    LocalModelError,
    LocalProvider,
    PromptLimits,
    Settings,
    ToolDef,
    bounded_schema,
    candidate_actions,
    choice_request,
    parse_choice,
    parse_text,
    parse_tool_args,
    render_messages,
    run_turn,
    tool_defs,
    tool_request,
)

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


def completion(content: str, prompt_tokens: int = 10, completion_tokens: int = 5) -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
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
        return "answer"
    return "choose" if list(schema["properties"]) == ["action"] else "tool"


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


def test_render_keeps_roles_and_renders_tool_traffic_compactly() -> None:
    call = {"name": "Read", "args": {"file_path": "a.py"}, "id": "t1", "type": "tool_call"}
    chat = render_messages(
        [
            SystemMessage("sys"),
            HumanMessage("task"),
            AIMessage(content="", tool_calls=[call]),
            ToolMessage("x" * 5000, tool_call_id="t1", name="Read"),
            ToolMessage("boom", tool_call_id="t2", name="Write", status="error"),
        ]
    )
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert chat[2]["content"] == '[called Read {"file_path": "a.py"}]'
    assert chat[3]["content"].startswith("[Read result]\nxxx")
    assert "chars omitted" in chat[3]["content"]
    assert len(chat[3]["content"]) < 1000
    assert "[Write error]\nboom" in chat[3]["content"]


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
    choose = choice_request(chat, TOOLS, ["Read", "Write", ANSWER], Settings())
    act = tool_request(chat, TOOLS[1], Settings())
    first, second = choose["messages"][-1]["content"], act["messages"][-1]["content"]
    assert first.startswith("Write hi to a.txt\n\n[Next step]")
    assert second.startswith("Write hi to a.txt\n\n[Next step] Call the tool Write")
    assert choose["messages"][0] == act["messages"][0]
    assert "- Read: Reads a file." in first
    assert "More detail" not in first


def test_choice_schema_is_an_enum_of_the_actions() -> None:
    chat = render_messages([HumanMessage("q")])
    schema = choice_request(chat, TOOLS, ["Read", ANSWER], Settings())["response_format"]["schema"]
    assert schema["properties"]["action"]["enum"] == ["Read", ANSWER]


def test_tool_request_constrains_output_to_the_bounded_schema() -> None:
    chat = render_messages([HumanMessage("q")])
    request = tool_request(chat, TOOLS[1], Settings(schema_budget=500, tool_max_tokens=700))
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


async def test_agent_turn_chooses_a_tool_then_fills_its_arguments() -> None:
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt", "content": "hello world"}')
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(TASK)
    assert isinstance(reply, AIMessage)
    assert llama.steps == ["choose", "tool"]
    [call] = reply.tool_calls
    assert (call["name"], call["args"]) == ("Write", {"file_path": "hello.txt", "content": "hello world"})
    assert call["id"]
    assert call["type"] == "tool_call"
    assert reply.usage_metadata == {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30}


async def test_agent_turn_may_answer_in_text() -> None:
    llama = ScriptedLlama('{"action": "answer"}', "Paris.")
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke([HumanMessage("Capital of France?")])
    assert llama.steps == ["choose", "answer"]
    assert reply.content == "Paris."
    assert reply.tool_calls == []
    assert llama.requests[1]["max_tokens"] == 512


async def test_forced_call_skips_the_choice() -> None:
    llama = ScriptedLlama('{"verdict": "revise", "feedback": "add tests", "notes": []}')
    reply = await chat_model(llama).bind_tools([Verdict], tool_choice="Verdict").ainvoke(TASK)
    assert llama.steps == ["tool"]
    assert Verdict.model_validate(reply.tool_calls[0]["args"]).verdict == "revise"


async def test_repeating_the_call_that_just_succeeded_becomes_an_answer() -> None:
    call = {
        "name": "Write",
        "args": {"file_path": "hello.txt", "content": "hi"},
        "id": "t1",
        "type": "tool_call",
    }
    done = [
        *TASK,
        AIMessage("", tool_calls=[call]),
        ToolMessage("Wrote 2 bytes", tool_call_id="t1", name="Write"),
    ]
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt", "content": "hi"}', "Done.")
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(done)
    assert llama.steps == ["choose", "tool", "answer"]
    assert reply.content == "Done."
    assert reply.tool_calls == []
    assert "local_repeat_call_answered" in [entry["event"] for entry in logs]


async def test_with_structured_output_works_through_the_forced_path() -> None:
    llama = ScriptedLlama('{"verdict": "approve", "feedback": "fine"}')
    result = await chat_model(llama).with_structured_output(Verdict).ainvoke(TASK)
    assert result == Verdict(verdict="approve", feedback="fine")


async def test_without_tools_a_turn_is_one_text_generation() -> None:
    llama = ScriptedLlama("hi")
    reply = await chat_model(llama).ainvoke([HumanMessage("say hi")], stop=["\n\n"])
    assert llama.steps == ["answer"]
    assert llama.requests[0]["stop"] == ["\n\n"]
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
        run_turn(engine, TASK, [], None, Settings())


def test_every_call_is_logged_with_tokens_and_time() -> None:
    llama = ScriptedLlama('{"action": "answer"}', "done")
    with capture_logs() as logs:
        run_turn(LocalEngine.of("tiny", llama), TASK, TOOLS, None, Settings())
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
        run_turn(engine, TASK, [], None, Settings())
    assert loads == [1]

    def broken() -> ScriptedLlama:
        raise ValueError("Failed to load model from file")

    with pytest.raises(LocalModelError, match="cannot load"):
        run_turn(LocalEngine("bad", broken), TASK, [], None, Settings())


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
