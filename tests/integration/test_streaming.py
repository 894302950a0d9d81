"""Replies stream: the top agent's answer is seen while the model is still writing it, through the real
anthropic SDK over SSE from the loopback Messages API, in the Python API and on a terminal.

The server holds the end of the reply (message_delta, message_stop) until the client has shown the first
lines, so a client that waits for the whole reply never gets past that point."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import AnthropicProvider, Orchestrator, RunResult, Settings, load_agents
from orchestrator.tools.permissions import PermissionPolicy
from tests.support.messages_server import Message, MessagesServer, text

SECRET = "sk-ant-stream-secret-0123456789"
ANSWER = (
    "## Design\n"
    "1. Ingest and chunk the documents.\n"
    "2. Embed the chunks and index them.\n"
    f"3. Retrieve, rerank and answer with citations (never print {SECRET}).\n"
    "Risks: a stale index; re-index nightly."
)
SHOWN = ANSWER.replace(SECRET, "[ANTHROPIC_API_KEY masked]")


def _answering(hold: Callable[[], None]) -> Callable[[dict[str, Any]], Message]:
    def respond(body: dict[str, Any]) -> Message:
        return Message([text(ANSWER)], before_stop=hold)

    return respond


class _Hold:
    """The server's pause before the reply ends: released when the client showed text, else after 20 s."""

    def __init__(self) -> None:
        self.shown = threading.Event()
        self.released_by_client: list[bool] = []

    def __call__(self) -> None:
        self.released_by_client.append(self.shown.wait(20))


async def test_the_answer_streams_as_text_events_while_the_reply_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = _Hold()
    with MessagesServer(_answering(hold)) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
        orchestrator = Orchestrator(
            load_agents(cwd=tmp_path, home=tmp_path), provider=AnthropicProvider(Settings()), workspace=tmp_path,
            permissions=PermissionPolicy(mode="acceptEdits"), db=tmp_path / "runs.sqlite",
        )  # fmt: skip
        pieces: list[dict[str, Any]] = []
        result = None
        async with orchestrator:
            async for item in orchestrator.astream("design a RAG pipeline", agent="senior-ml-engineer"):
                if isinstance(item, RunResult):
                    result = item
                elif item["event"] == "text":
                    pieces.append(dict(item))
                    hold.shown.set()
            recorded = [event["event"] for _, event in orchestrator.store.events(result.run_id)] if result else []
        assert server.errors == [] and all(r.stream for r in server.requests)
    assert hold.released_by_client == [True]  # the first lines were shown before the reply ended
    assert result is not None and result.status == "completed" and result.final == SHOWN
    assert "".join(p["text"] for p in pieces) == SHOWN
    assert len(pieces) > 1 and all(p["text"].endswith("\n") for p in pieces[:-1])  # whole lines, as written
    assert {(p["agent"], p["depth"], p["round"]) for p in pieces} == {("senior-ml-engineer", 0, 1)}
    assert SECRET not in repr(pieces)
    assert "turn" in recorded and "text" not in recorded  # the reply is recorded whole with its call, once


def _read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return out
        if not data:
            return out
        out += data


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_the_cli_prints_the_answer_once_live_on_a_terminal_whole_in_a_pipe(tmp_path: Path, terminal: bool) -> None:
    hold = _Hold()
    with MessagesServer(_answering(hold)) as server:
        env = {**os.environ, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": SECRET, "HOME": str(tmp_path),
               "ORCHESTRATE_DB": str(tmp_path / "runs.sqlite"), "COLUMNS": "200"}  # fmt: skip
        command = [sys.executable, "-m", "orchestrator", "run", "--workspace", str(tmp_path),
                   "--agent", "senior-ml-engineer", "design a RAG pipeline"]  # fmt: skip
        if terminal:
            main, child = pty.openpty()
            proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=child,
                                    stderr=subprocess.PIPE)  # fmt: skip
            os.close(child)
            output = b""
            while b"Ingest and chunk" not in output:  # the first lines, while the server holds the end
                output += os.read(main, 4096)
            hold.shown.set()
            output += _read_all(main)
            os.close(main)
            stderr = proc.communicate(timeout=60)[1].decode()
            stdout = output.decode().replace("\r\n", "\n")
        else:
            hold.shown.set()  # a pipe shows nothing live: let the reply end
            done = subprocess.run(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=120, check=False)  # fmt: skip
            proc, stdout, stderr = done, done.stdout, done.stderr
    assert proc.returncode == 0, stderr
    assert stdout.count("Ingest and chunk") == 1 and stdout.strip() == SHOWN
    assert SECRET not in stdout + stderr
    if terminal:
        assert hold.released_by_client == [True]
