"""Traces and replay of a real recorded run: the anthropic SDK against the loopback Messages API.

A two-subtask run is recorded (senior delegates two modules in parallel, juniors write them, reviews
approve). Its HTML trace is opened in headless Chromium (Debian's `chromium` package): the delegation
nodes and timeline bars render, a screenshot is taken, and the console stays silent. The replay answers
every call from the recording while the server's request log stays unchanged, and a changed agent prompt
is reported at the first call it changes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import AnthropicProvider, Orchestrator, Settings, load_agents
from orchestrator.cli import app
from orchestrator.replay import areplay
from orchestrator.run_store import RunStore
from orchestrator.tools.permissions import PermissionPolicy
from orchestrator.trace import load_trace, render_html
from tests.conftest import REPO
from tests.support.claude_team import FINAL, team_responder
from tests.support.messages_server import MessagesServer

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-extensions",
    "--enable-logging=stderr", "--v=0", "--window-size=1400,1100",
]  # fmt: skip
CONSOLE_LINE = re.compile(r":CONSOLE[:(]|Uncaught")
"""How Chromium's --enable-logging reports any console message or uncaught exception of the page."""


@dataclass(frozen=True)
class Recorded:
    run_id: str
    db: Path
    tmp: Path
    server: MessagesServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesServer]:
    with MessagesServer(team_responder(junior_delay=0.2)) as running:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", running.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret")
        yield running
    assert running.errors == []


@pytest.fixture
async def recorded(server: MessagesServer, tmp_path: Path) -> Recorded:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    orchestrator = Orchestrator(
        load_agents(cwd=tmp_path, home=tmp_path), provider=AnthropicProvider(Settings()), workspace=workspace,
        permissions=PermissionPolicy(mode="acceptEdits"), db=tmp_path / "runs.sqlite",
    )  # fmt: skip
    result = await orchestrator.arun("design a RAG pipeline")
    orchestrator.store.close()
    assert result.status == "completed" and result.final == FINAL
    return Recorded(result.run_id, tmp_path / "runs.sqlite", tmp_path, server)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("the HTML trace test needs Debian's chromium: apt-get install -y chromium")
    return path


def _browse(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if CONSOLE_LINE.search(line)]
    assert console == [], console
    return done


def test_html_trace_renders_in_headless_chromium(recorded: Recorded) -> None:
    store = RunStore(recorded.db)
    trace = load_trace(store, recorded.run_id)
    store.close()
    page = recorded.tmp / "trace.html"
    page.write_text(render_html(trace), encoding="utf-8")

    dom = _browse(page, recorded.tmp / "profile", "--dump-dom").stdout
    assert 'data-ready="1"' in dom  # the page's script ran to its end
    assert dom.count('class="dnode') == 3  # the top agent and its two delegations
    assert dom.count('class="tl-row') == 3 and dom.count('class="tl-bar ') == len(trace.calls()) == 8
    assert dom.count('class="tl-tick"') == 2 and dom.count('class="tl-mark approve"') == 2
    assert dom.count("write rag/ingest.py") >= 2 and dom.count("write rag/retrieve.py") >= 2

    shot = recorded.tmp / "trace.png"
    _browse(page, recorded.tmp / "profile", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if target := os.environ.get("ORCHESTRATE_TRACE_SCREENSHOT"):  # to look at it: set this to a file path
        shutil.copyfile(shot, target)


async def test_replay_makes_no_http_request_and_gives_the_same_answer(recorded: Recorded) -> None:
    before = len(recorded.server.requests)
    report = await areplay(
        recorded.run_id, db=recorded.db, agents=load_agents(cwd=recorded.tmp, home=recorded.tmp),
        permissions=PermissionPolicy(mode="acceptEdits"),
    )  # fmt: skip
    assert len(recorded.server.requests) == before
    assert report.same and report.final == FINAL and (report.replayed, report.live) == (8, 0)


async def test_a_changed_agent_prompt_is_reported_as_diverging(recorded: Recorded) -> None:
    override = recorded.tmp / "changed-agents"
    override.mkdir()
    original = (REPO / "agents" / "ml-engineer.md").read_text()
    changed = original.replace("turns clear briefs into working, tested code", "turns clear briefs into code")
    assert changed != original
    (override / "ml-engineer.md").write_text(changed)
    before = len(recorded.server.requests)

    report = await areplay(
        recorded.run_id, db=recorded.db, agents=load_agents([override], cwd=recorded.tmp, home=recorded.tmp),
        permissions=PermissionPolicy(mode="acceptEdits"),
    )  # fmt: skip

    assert len(recorded.server.requests) == before and not report.same and report.status == "failed"
    divergence = report.divergence
    assert divergence is not None
    assert (divergence.agent, divergence.purpose, divergence.step) == ("ml-engineer", "turn", 1)
    assert divergence.recorded_step in (1, 2) and divergence.delegation.endswith("/")
    assert "message 0 (system) differs" in divergence.difference and "tested code" in divergence.difference
    assert 7 in report.unused  # the senior's final turn was never reached


def test_cli_run_writes_the_trace_and_replay_finds_the_change(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp, server = recorded.tmp, recorded.server
    page, db, workspace = tmp / "cli-trace.html", tmp / "cli.sqlite", tmp / "cli-ws"
    workspace.mkdir()  # empty, like the scratch workspace a replay starts from
    env = {**os.environ, "HOME": str(tmp)}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "--permission-mode", "acceptEdits", "--workspace",
         str(workspace), "--db", str(db), "--trace-html", str(page), "--agent", "senior-ml-engineer",
         "design a RAG pipeline"],
        env=env, cwd=tmp, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert page.read_text().count('class="dnode"') == 3 and f"trace: {page}" in done.stderr
    store = RunStore(db)
    run_id = store.runs()[0].run_id
    store.close()

    monkeypatch.setenv("HOME", str(tmp))
    monkeypatch.chdir(tmp)
    before = len(server.requests)
    same = CliRunner().invoke(app, ["replay", run_id, "--db", str(db)])
    assert same.exit_code == 0 and "same behaviour as recorded" in same.stdout, same.output
    override = tmp / "no-bash"
    override.mkdir()
    original = (REPO / "agents" / "ml-engineer.md").read_text()
    (override / "ml-engineer.md").write_text(original.replace("Glob, Grep, Bash\n", "Glob, Grep\n"))
    changed = CliRunner().invoke(app, ["replay", run_id, "--db", str(db), "--agents-dir", str(override)])
    assert changed.exit_code == 1, changed.output
    assert "ml-engineer turn" in changed.stdout and "tools differs" in changed.stdout
    assert len(server.requests) == before
