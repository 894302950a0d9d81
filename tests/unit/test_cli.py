"""The CLI's contract: flags validated with errors that name them, JSON on stdout, lint exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_agents_json_lists_bundled_agents_with_their_files(cli: CliRunner) -> None:
    done = cli.invoke(app, ["agents", "--json"])
    assert done.exit_code == 0, done.output
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["senior-ml-engineer"]["source"].endswith("agents/senior-ml-engineer.md")
    assert rows["ml-engineer"]["model"] == "sonnet"


def test_agents_strict_fails_naming_file_and_line(cli: CliRunner, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "odd.md").write_text("---\nname: odd\ndescription: d\ntools: Read, TodoWrite\nmodel: fable\n---\n")
    lenient = cli.invoke(app, ["agents", "--agents-dir", str(extra)])
    assert lenient.exit_code == 0 and "odd" in lenient.stdout
    strict = cli.invoke(app, ["agents", "--strict", "--agents-dir", str(extra)])
    assert strict.exit_code == 1
    assert f"{extra / 'odd.md'}:4: unknown tool 'TodoWrite'" in strict.stderr
    assert f"{extra / 'odd.md'}:5: unknown model 'fable'" in strict.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--provider", "gpt", "x"], "--provider must be anthropic, openai or local"),
        (["run", "--permission-mode", "yolo", "x"], "--permission-mode must be one of"),
        (["run", "--workspace", "/nonexistent/dir", "x"], "--workspace /nonexistent/dir is not a directory"),
        (["run", "--agents-dir", "/nonexistent/agents", "x"], "--agents-dir is not a directory"),
        (["run", "--provider", "anthropic", "x"], "--provider anthropic needs ANTHROPIC_API_KEY"),
        (["run", "--agent", "nobody", "--provider", "anthropic", "x"], "ANTHROPIC_API_KEY"),
        (["run", "--max-cost", "nan", "x"], "--max-cost must be a positive, finite number of USD, not nan"),
        (["run", "--max-cost", "inf", "x"], "--max-cost must be a positive, finite number of USD, not inf"),
        (["run", "--max-delegation-cost", "-1", "x"], "--max-delegation-cost must be a positive, finite number"),
        (["route"], "give either TASK or --file"),
        (["route", "   "], "TASK: the task is empty"),
        (["--log-level", "loud", "agents"], "--log-level must be"),
    ],
)
def test_bad_input_names_the_flag(cli: CliRunner, args: list[str], message: str) -> None:
    done = cli.invoke(app, args)
    assert done.exit_code == 2
    assert message in " ".join(done.stderr.split())


def test_route_file_json_lines_and_bad_lines(cli: CliRunner, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.txt"
    tasks.write_bytes(b"design a feature store for fraud models\n\nwrite a unit test for load_csv\n")
    done = cli.invoke(app, ["route", "--file", str(tasks), "--json"])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["agent"] for row in rows] == ["senior-ml-engineer", "ml-engineer"]
    assert set(rows[0]) == {"task", "agent", "confidence", "method", "reason", "candidates"}
    assert rows[0]["candidates"][0]["agent"] == "senior-ml-engineer" and len(rows[0]["candidates"]) == 2
    tasks.write_bytes(b"fine task\ncaf\xe9 task\n")
    bad = cli.invoke(app, ["route", "--file", str(tasks)])
    assert bad.exit_code == 2 and f"{tasks}:2: not valid UTF-8" in bad.stderr
