"""The registry and the specs as the model sees them: names, schemas and descriptions."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("name", sorted(CLAUDE_CODE_PARAMETERS))
def test_every_parameter_is_described_for_the_model(name: str) -> None:
    schema = ALL_TOOLS[name].schema()
    assert schema["name"] == name
    assert len(schema["description"]) > 100
    for parameter, definition in schema["input_schema"]["properties"].items():
        assert definition.get("description"), f"{name}.{parameter} has no description"


def test_known_names_include_task_but_specs_do_not() -> None:
    assert (*CLAUDE_CODE_PARAMETERS, "Task") == KNOWN_TOOL_NAMES
    assert "Task" not in ALL_TOOLS
