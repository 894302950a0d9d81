"""The registry and the specs as the model sees them: names, schemas and descriptions."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from orchestrator.tools.base import compact_schema
from orchestrator.tools.registry import ALL_TOOLS, KNOWN_TOOL_NAMES

CLAUDE_CODE_PARAMETERS = {
    "Read": {"file_path", "offset", "limit"},
    "Write": {"file_path", "content"},
    "Edit": {"file_path", "old_string", "new_string", "replace_all"},
    "Glob": {"pattern", "path"},
    "Grep": {
        "pattern",
        "path",
        "glob",
        "type",
        "output_mode",
        "-i",
        "-n",
        "-A",
        "-B",
        "-C",
        "multiline",
        "head_limit",
    },
    "Bash": {"command", "timeout", "description"},
    "WebFetch": {"url", "prompt"},
    "WebSearch": {"query", "allowed_domains", "blocked_domains"},
}


def test_all_tools_have_claude_code_names_and_parameters() -> None:
    assert {name: set(spec.schema()["input_schema"]["properties"]) for name, spec in ALL_TOOLS.items()} == (
        CLAUDE_CODE_PARAMETERS
    )


RIPGREP_FLAGS = {"-n", "-A", "-B", "-C"}
"""Grep's arguments named as ripgrep's own flags: the name is the description (output_mode says where
they apply)."""


@pytest.mark.parametrize("name", sorted(CLAUDE_CODE_PARAMETERS))
def test_every_parameter_is_described_for_the_model(name: str) -> None:
    schema = ALL_TOOLS[name].schema()
    assert schema["name"] == name
    assert len(schema["description"]) > 40
    for parameter, definition in schema["input_schema"]["properties"].items():
        assert definition.get("description") or parameter in RIPGREP_FLAGS, f"{name}.{parameter} has no description"


@pytest.mark.parametrize("name", sorted(CLAUDE_CODE_PARAMETERS))
def test_schemas_carry_no_words_the_model_does_not_use(name: str) -> None:
    """No titles, no docstrings, no `anyOf [T, null]` for optional arguments: leaving one out is the model's
    way to say none. The value rules stay (an enum, a bound)."""
    text = json.dumps(ALL_TOOLS[name].schema()["input_schema"])
    assert '"title"' not in text and '"null"' not in text and "Arguments of" not in text


def test_compaction_keeps_arguments_named_like_schema_keywords() -> None:
    class Args(BaseModel):
        title: str = Field(description="The page title.")
        default: int | None = None
        limits: dict[str, int] = Field(default_factory=dict)

    assert compact_schema(Args.model_json_schema()) == {
        "properties": {
            "title": {"description": "The page title.", "type": "string"},
            "default": {"type": "integer"},
            "limits": {"additionalProperties": {"type": "integer"}, "type": "object"},
        },
        "required": ["title"],
        "type": "object",
    }


def test_value_rules_survive_the_compaction() -> None:
    grep = ALL_TOOLS["Grep"].schema()["input_schema"]["properties"]
    assert grep["-A"] == {"minimum": 0, "type": "integer"}
    assert grep["output_mode"]["enum"] == ["content", "files_with_matches", "count"]
    bash = ALL_TOOLS["Bash"].schema()["input_schema"]["properties"]["timeout"]
    assert bash["type"] == "integer" and bash["maximum"] > bash["minimum"] == 1


def test_known_names_include_task_but_specs_do_not() -> None:
    assert (*CLAUDE_CODE_PARAMETERS, "Task") == KNOWN_TOOL_NAMES
    assert "Task" not in ALL_TOOLS
