"""Building each protocol step's request and parsing its response (pure functions)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from orchestrator.local.engine import LocalModelError
from orchestrator.local.render import render_messages
from orchestrator.local.schema import ToolDef
from orchestrator.local.steps import (
    ANSWER,
    GenerationSettings,
    answer_instruction,
    answer_request,
    body_request,
    choice_request,
    parse_body,
    parse_choice,
    parse_text,
    parse_tool_args,
    progress_note,
    tool_request,
)
from tests.support.scripted_llama import (
    TOOLS,
    call,
    completion,
    string_budget,
)


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
