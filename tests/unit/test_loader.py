"""Agent files: Claude Code's format, loaded leniently, linted strictly, errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import AgentFileError
from orchestrator.loader import AgentLintError, load_agents, parse_agent_file, parse_agent_text

AGENT = """---
name: {name}
description: {description}
{extra}---
Body of {name}.
"""


def write_agent(directory: Path, name: str, description: str = "Does things.", extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    path.write_text(AGENT.format(name=name, description=description, extra=extra), encoding="utf-8")
    return path


def test_bundled_agents_match_the_spec(tmp_path: Path) -> None:
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    senior, junior = agents["senior-ml-engineer"], agents["ml-engineer"]
    assert senior.model == "opus" and junior.model == "sonnet"
    assert senior.tools == ("Read", "Edit", "Write", "Glob", "Grep", "Bash", "WebFetch", "WebSearch", "Task")
    assert junior.tools == ("Read", "Edit", "Write", "Glob", "Grep", "Bash")
    assert senior.can_delegate and not junior.can_delegate
    assert agents.warnings == ()


def test_seed_file_loads_unchanged(seed_file: Path) -> None:
    spec, warnings = parse_agent_file(seed_file)
    assert spec.name == "senior-ml-engineer" and spec.model == "opus"
    assert "Task" in (spec.tools or ()) and warnings == []
    assert spec.prompt.startswith("# Senior Machine Learning Engineer")


def test_every_corpus_file_loads_leniently_and_lint_names_file_and_line(agent_corpus: Path) -> None:
    files = sorted(agent_corpus.glob("*/*.md"))
    assert len(files) == 360
    loaded = [parse_agent_file(path) for path in files]
    warnings = [w for _, ws in loaded for w in ws]
    found = {f"{w.path.name if w.path else ''}:{w.line}: {w.message.split(';')[0]}" for w in warnings}
    assert "10-research-analysis__first-principles-thinking.md:3: frontmatter is not strict YAML" in " ".join(found)
    assert "agent-teams__team-lead.md:5: unknown model 'fable'" in found
    assert "agent-teams__team-lead.md:4: unknown tool 'TeamCreate' is not available and is ignored" in found
    for spec, _ in loaded:
        assert spec.tools is None or set(spec.tools) <= {
            "Read",
            "Edit",
            "Write",
            "Glob",
            "Grep",
            "Bash",
            "WebFetch",
            "WebSearch",
            "Task",
        }
    corpus = agent_corpus / "voltagent-subagents"
    with pytest.raises(AgentLintError) as lint:
        load_agents([corpus], strict=True, cwd=corpus, home=corpus)
    assert len(lint.value.warnings) == len([w for w in warnings if "voltagent" in str(w.path)])
    assert all(w.path is not None and w.line >= 2 for w in lint.value.warnings)


def test_unquoted_colon_description_loads_with_a_warning(tmp_path: Path) -> None:
    path = write_agent(tmp_path, "colons", "Use when asked. Triggers on: 'x', 'y'")
    spec, warnings = parse_agent_file(path)
    assert spec.description == "Use when asked. Triggers on: 'x', 'y'"
    assert [w.line for w in warnings] == [3] and "not strict YAML" in warnings[0].message


def test_tools_comma_string_list_alias_and_unknown(tmp_path: Path) -> None:
    as_list = write_agent(tmp_path, "listed", extra="tools:\n  - Read\n  - Agent\n")
    assert parse_agent_file(as_list)[0].tools == ("Read", "Task")
    odd = write_agent(tmp_path, "odd", extra="tools: Read, TodoWrite, mcp__x__y\nmodel: fable\n")
    spec, warnings = parse_agent_file(odd)
    assert spec.tools == ("Read",) and spec.model == "inherit"
    assert [(w.line, w.message.split(" ")[1]) for w in warnings] == [(4, "tool"), (4, "tool"), (5, "model")]
    assert parse_agent_file(write_agent(tmp_path, "none"))[0].tools is None
    assert parse_agent_file(write_agent(tmp_path, "empty", extra="tools: []\n"))[0].tools == ()


def test_full_model_ids_and_extra_keys_are_kept(tmp_path: Path) -> None:
    spec, warnings = parse_agent_file(write_agent(tmp_path, "x", extra="model: claude-opus-4-6\ncolor: blue\n"))
    assert (spec.model, dict(spec.extra), warnings) == ("claude-opus-4-6", {"color": "blue"}, [])


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("# just markdown\n", 1, "no YAML frontmatter"),
        ("---\nname: x\ndescription: y\n", 1, "not closed"),
        ("---\nname: x\ndescription: y\n- stray item\n---\n", 4, "not valid YAML"),
        ("---\ndescription: y\n---\n", 1, "'name' is required"),
        ("---\nname: x\n---\n", 1, "'description' is required"),
        ("---\nname: two words\ndescription: y\n---\n", 2, "'name'"),
        ("---\nname: x\ndescription: ''\n---\n", 3, "'description'"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = tmp_path / "bad.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AgentFileError) as caught:
        parse_agent_file(path)
    assert caught.value.path == path and caught.value.line == line
    assert reason in str(caught.value) and str(caught.value).startswith(f"{path}:{line}:")


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.md"
    path.write_bytes(b"---\nname: x\ndescription: caf\xe9\n---\n")
    with pytest.raises(AgentFileError, match="not UTF-8"):
        parse_agent_file(path)


def test_strict_lint_turns_warnings_into_errors(tmp_path: Path) -> None:
    write_agent(tmp_path / "agents", "odd", extra="tools: Read, TodoWrite\n")
    lenient = load_agents([tmp_path / "agents"], cwd=tmp_path, home=tmp_path)
    assert [w.message for w in lenient.warnings] == ["unknown tool 'TodoWrite' is not available and is ignored"]
    with pytest.raises(AgentLintError, match=r"odd\.md:4: unknown tool 'TodoWrite'"):
        load_agents([tmp_path / "agents"], strict=True, cwd=tmp_path, home=tmp_path)


def test_discovery_precedence_later_wins(tmp_path: Path) -> None:
    home, cwd, extra = tmp_path / "home", tmp_path / "proj", tmp_path / "extra"
    write_agent(home / ".claude" / "agents", "ml-engineer", "from home")
    write_agent(home / ".claude" / "agents", "helper", "from home")
    write_agent(cwd / ".claude" / "agents", "helper", "from project")
    write_agent(extra, "helper", "from --agents-dir")
    agents = load_agents([extra], cwd=cwd, home=home)
    assert agents["ml-engineer"].description == "from home"
    assert agents["helper"].description == "from --agents-dir"
    assert agents["senior-ml-engineer"].source is not None


def test_duplicate_name_in_one_directory_is_an_error(tmp_path: Path) -> None:
    write_agent(tmp_path / "a", "one")
    (tmp_path / "a" / "copy.md").write_text(AGENT.format(name="one", description="d", extra=""), encoding="utf-8")
    with pytest.raises(AgentFileError, match="also defined in"):
        load_agents([tmp_path / "a"], cwd=tmp_path, home=tmp_path)


def test_missing_agents_dir_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(AgentFileError, match="--agents-dir is not a directory"):
        load_agents([tmp_path / "nope"])


def test_from_text_without_a_file() -> None:
    spec, warnings = parse_agent_text("---\nname: t\ndescription: d\ntools: Read\n---\nHello")
    assert (spec.name, spec.tools, spec.prompt, spec.source, warnings) == ("t", ("Read",), "Hello", None, [])
