"""Bounding tool schemas for a small model's grammar, and reading tools in any langchain format."""

from __future__ import annotations

import json

from pydantic import BaseModel

from orchestrator.local.schema import ToolDef, bounded_schema, tool_defs
from orchestrator.local.steps import (
    body_field,
)
from tests.support.scripted_llama import (
    READ,
    WRITE,
    Verdict,
    string_budget,
)


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


def test_tool_def_round_trips_to_anthropic_format() -> None:
    tool = ToolDef("Read", "Reads.", {"type": "object", "properties": {}})
    assert tool_defs([tool.as_anthropic()]) == [tool]


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
