"""Everything the CLI prints through rich shows as written: text that looks like rich markup (`[/x]`,
`[graph]`) in hints, task text, Task descriptions, verdicts, file names or model output is never read as
markup, so it is neither dropped nor able to crash the printer (which used to make a run unfinishable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from orchestrator import FixedProvider, Orchestrator, load_agents
from orchestrator.cli import app
from orchestrator.cli.common import fail
from orchestrator.cli.inspect import write_trace_html
from orchestrator.cli.runs import _ask_on_terminal, _LiveAnswer, _report, _show
from orchestrator.graphs.permission_gate import PermissionRequest
from orchestrator.run_store import open_store
from orchestrator.runner import RunResult
from orchestrator.tools.permissions import PermissionPolicy
from tests.support.scripted_model import Call, Reply, ScriptedModel, ai, tool_call

HOSTILE = "[/x] [graph] [bold]"
SENIOR, JUNIOR = "senior-ml-engineer", "ml-engineer"


def _turn(agent: str, *, after: str | None = None) -> Callable[[Call], bool]:
    """A turn of `agent`, optionally only once its last message (a tool result or feedback) holds `after`."""

    def accepts(call: Call) -> bool:
        return call.agent == agent and call.purpose == "turn" and (after is None or after in call.last.text)

    return accepts


def _script() -> list[Reply]:
    brief = {"description": f"fix {HOSTILE}", "prompt": "Answer in one line.", "subagent_type": JUNIOR}
    revise = {"decision": "revise", "feedback": f"say {HOSTILE}"}
    approve = {"decision": "approve", "feedback": f"good {HOSTILE}"}
    return [
        Reply(ai("", tool_call("Task", brief)), when=_turn(SENIOR)),
        Reply(ai(f"done {HOSTILE}"), when=_turn(JUNIOR)),
        Reply(ai("", tool_call("Verdict", revise)), when=lambda c: c.purpose == "review" and "done" in c.last.text),
        Reply(ai(f"again {HOSTILE}"), when=_turn(JUNIOR, after="say")),
        Reply(ai("", tool_call("Verdict", approve)), when=lambda c: c.purpose == "review" and "again" in c.last.text),
        Reply(ai(f"final {HOSTILE}"), when=_turn(SENIOR, after="again")),
    ]


async def test_progress_lines_and_show_print_markup_like_text_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ScriptedModel(_script())
    orchestrator = Orchestrator(
        load_agents(cwd=tmp_path, home=tmp_path), provider=FixedProvider(model), workspace=tmp_path,
        permissions=PermissionPolicy(mode="acceptEdits"),
    )  # fmt: skip
    with orchestrator:
        result = await _show(orchestrator.astream(f"task {HOSTILE}", agent=SENIOR), _LiveAnswer(enabled=False))
    model.assert_complete()
    printed = capsys.readouterr().err
    assert f"fix {HOSTILE}] delegating to {JUNIOR}" in printed
    assert f"revise - say {HOSTILE}" in printed
    assert result.final == f"final {HOSTILE}"
    shown = CliRunner().invoke(app, ["show", result.run_id, "--format", "tree"])
    assert shown.exit_code == 0, shown.output
    assert f"task: task {HOSTILE}" in shown.stdout and f"final {HOSTILE}" in shown.stdout


def test_errors_hints_and_warnings_keep_their_brackets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit):
        fail(f"png needs pygraphviz: pip install 'orchestrate[graph]' {HOSTILE}")
    with pytest.raises(typer.Exit):
        _report(RunResult(run_id="r1", status="failed", final="", error=f"boom {HOSTILE}"), as_json=False)
    with open_store(tmp_path / "runs.sqlite") as store:
        store.start_run("r1", "a task", {})
        write_trace_html(store, "r1", tmp_path / HOSTILE / "t.html")
    printed = " ".join(capsys.readouterr().err.split())
    assert f"error: png needs pygraphviz: pip install 'orchestrate[graph]' {HOSTILE}" in printed
    assert f"run r1 failed: boom {HOSTILE}" in printed
    assert "warning: " in printed and HOSTILE in printed.split("warning: ")[1]


async def test_a_permission_ask_shows_the_command_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers, prompts = iter(["maybe", "a"]), []

    def ask(question: object, **kwargs: object) -> str:
        prompts.append(str(question))  # a Text: rich would read "[y/N/a]" in a plain string as markup
        return next(answers)

    monkeypatch.setattr("rich.prompt.Prompt.ask", ask)
    request = PermissionRequest(
        tool="Bash", agent=JUNIOR, depth=1, summary=f"Bash: echo {HOSTILE}", reason=f"default mode asks {HOSTILE}",
        hint=f"add {HOSTILE}", preview=f"echo {HOSTILE}", rule=f"Bash(echo {HOSTILE})",
    )  # fmt: skip
    assert await _ask_on_terminal(request) == "always"
    printed = capsys.readouterr().err
    assert f"{JUNIOR} wants to run Bash:\n    echo {HOSTILE}" in printed
    assert f"(default mode asks {HOSTILE})" in printed
    assert f"always = allow Bash(echo {HOSTILE}) for the rest of this run" in printed
    assert "answer y (yes), n (no) or a (always)" in printed and prompts == ["Allow? [y/N/a]"] * 2


def test_models_list_shows_a_file_name_with_brackets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    odd = tmp_path / "m[graph][" / "x].gguf"  # the path reads .../m[graph][/x].gguf
    odd.parent.mkdir()
    odd.write_bytes(b"GGUF")
    monkeypatch.setenv("ORCHESTRATE_LOCAL_SENIOR_MODEL", str(odd))
    monkeypatch.setenv("COLUMNS", "300")
    done = CliRunner().invoke(app, ["models", "list"])
    assert done.exit_code == 0, done.output
    assert "m[graph][/x].gguf" in done.stdout.replace("\n", "")
