"""A run tells the truth and never gets stuck: the real CLI against the loopback Messages API.

Denied work ends `incomplete` (exit 3) with its issues; SIGTERM saves the run as interrupted and names the
resume command; a run another live process holds cannot be resumed twice; a command in flight at a kill
is not run again on resume; a server that never answers fails in bounded time naming its URL; bad input
is one line, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.messages_server import Message, MessagesServer, Raw, Reply, scripted, text, tool_use
from tests.support.waiting import wait_for

JUNIOR = "ml-engineer"


def orchestrate(*args: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args, "--db", str(db)]


def environ(url: str, home: Path) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "x", "HOME": str(home), "COLUMNS": "300"}


def runs(db: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    listed = subprocess.run(orchestrate("runs", "--json", db=db), env=env, capture_output=True, text=True, check=True)
    return list(json.loads(listed.stdout))


class Held:
    """Holds the first request until released (the run is then mid-call), then answers from `replies`."""

    def __init__(self, *replies: Reply) -> None:
        self.release = threading.Event()
        self.answer = scripted(list(replies))
        self.first = True

    def __call__(self, body: dict[str, Any]) -> Reply:
        if self.first:
            self.first = False
            self.release.wait(timeout=60)
        return self.answer(body)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def test_denied_work_ends_incomplete_with_its_issues_and_exit_3(workspace: Path, tmp_path: Path) -> None:
    replies = [Message([tool_use("Write", {"file_path": "notes.txt", "content": "x"})]), Message([text("No luck.")])]
    with MessagesServer(scripted(replies)) as server:
        command = ["run", "--json", "--agent", JUNIOR, "--workspace", str(workspace), "write notes.txt"]
        done = subprocess.run(orchestrate(*command, db=tmp_path / "r.sqlite"), env=environ(server.url, tmp_path),
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 3, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "incomplete" and payload["files_changed"] == []
    [issue] = payload["issues"]
    assert (issue["kind"], issue["agent"], issue["what"]) == ("denied", JUNIOR, "Write notes.txt")
    assert f"✗ {JUNIOR}: Write notes.txt refused" in done.stderr and "Traceback" not in done.stderr
    assert "run " in done.stderr and "incomplete: 1 issue(s)" in done.stderr


def start_held_run(db: Path, env: dict[str, str], workspace: Path, held: Held) -> subprocess.Popen[str]:
    """`orchestrate run` in a child process, returned once its first model request is being held."""
    command = ["run", "--agent", JUNIOR, "--workspace", str(workspace), "say done"]
    process = subprocess.Popen(orchestrate(*command, db=db), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: held.first is False, "the first model request")
    return process


def test_sigterm_saves_the_run_as_interrupted_with_the_resume_command(workspace: Path, tmp_path: Path) -> None:
    held = Held(Message([text("Done.")]), Message([text("Done again.")]))
    db = tmp_path / "r.sqlite"
    with MessagesServer(held) as server:
        env = environ(server.url, tmp_path)
        process = start_held_run(db, env, workspace, held)
        [running] = runs(db, env)
        assert running["status"] == "running"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        held.release.set()
        run_id = running["run_id"]
        assert process.returncode == 143, stderr
        assert f"interrupted (SIGTERM): run {run_id} saved; continue with: orchestrate resume {run_id}" in stderr
        assert "Traceback" not in stderr
        assert runs(db, env)[0]["status"] == "interrupted"
        resumed = subprocess.run(orchestrate("resume", run_id, db=db), env=env, capture_output=True, text=True,
                                 timeout=120, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() in ("Done.", "Done again.")


def test_a_run_a_live_process_holds_is_not_resumed_twice(workspace: Path, tmp_path: Path) -> None:
    held = Held(Message([text("Done.")]))
    db = tmp_path / "r.sqlite"
    with MessagesServer(held) as server:
        env = environ(server.url, tmp_path)
        process = start_held_run(db, env, workspace, held)
        [running] = runs(db, env)
        second = subprocess.run(orchestrate("resume", running["run_id"], db=db), env=env, capture_output=True,
                                text=True, timeout=120, check=False)  # fmt: skip
        held.release.set()
        process.communicate(timeout=60)
    assert second.returncode == 2
    assert f"run {running['run_id']} is running in {socket.gethostname()}:{process.pid}" in second.stderr
    assert "--force" in second.stderr


def test_a_command_in_flight_at_a_kill_is_not_run_again_on_resume(workspace: Path, tmp_path: Path) -> None:
    bash = tool_use("Bash", {"command": "echo started >> log.txt; sleep 30; echo finished >> log.txt"})
    replies = [Message([bash]), Message([text("Stopped.")])]
    db = tmp_path / "r.sqlite"
    with MessagesServer(scripted(replies)) as server:
        env = environ(server.url, tmp_path)
        command = ["run", "--agent", JUNIOR, "--permission-mode", "bypassPermissions", "--workspace",
                   str(workspace), "log it"]  # fmt: skip
        process = subprocess.Popen(orchestrate(*command, db=db), env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        log = workspace / "log.txt"
        wait_for(lambda: log.exists() and "started" in log.read_text(), "the command to start")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        [stopped] = runs(db, env)
        assert stopped["status"] == "interrupted"
        resumed = subprocess.run(orchestrate("resume", stopped["run_id"], db=db), env=env, capture_output=True,
                                 text=True, timeout=120, check=False)  # fmt: skip
        last = server.requests[-1].body
    assert resumed.returncode == 0, resumed.stderr
    assert log.read_text() == "started\n"  # the sandbox died with the run, and the command did not run again
    assert "was already running when the run was stopped" in json.dumps(last["messages"])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_server_that_never_answers_fails_in_bounded_time_naming_it(
    silent_server: str, workspace: Path, tmp_path: Path
) -> None:
    command = ["run", "--timeout", "1", "--agent", JUNIOR, "--workspace", str(workspace), "say hi"]
    done = subprocess.run(orchestrate(*command, db=tmp_path / "r.sqlite"), env=environ(silent_server, tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "failed:" in ln]
    assert f"call to {silent_server}/v1/messages failed" in line and "timed out" in line.lower()
    assert "--timeout must be a positive number of seconds, not -1.0" in subprocess.run(
        orchestrate("run", "--timeout", "-1", "x", db=tmp_path / "r.sqlite"), env=environ(silent_server, tmp_path),
        capture_output=True, text=True, timeout=60, check=False,
    ).stderr  # fmt: skip


@pytest.mark.parametrize(
    ("args", "setup", "message"),
    [
        (["runs"], "garbage-db", "cannot use the run database"),
        (["run", b"caf\xe9 task".decode("utf-8", "surrogateescape")], None, "task: not valid UTF-8"),
        (["run", "--agents-dir", "{tmp}/agents", "x"], "reserved-agent", "'route' is reserved by the orchestration"),
        (["run", "x" * 20_001], None, "the task is 20,001 characters; the limit is 20,000"),
    ],
    ids=["garbage-db", "non-utf8-task", "reserved-agent-name", "huge-task"],
)
def test_bad_input_is_one_line_never_a_traceback(
    tmp_path: Path, args: list[str], setup: str | None, message: str
) -> None:
    db = tmp_path / "r.sqlite"
    if setup == "garbage-db":
        db.write_bytes(b"this is not a database" * 100)
    if setup == "reserved-agent":
        (tmp_path / "agents").mkdir()
        (tmp_path / "agents" / "route.md").write_text("---\nname: route\ndescription: d\n---\nbody\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = subprocess.run(orchestrate(*argv, db=db), env=environ("http://127.0.0.1:9", tmp_path),
                          capture_output=True, text=True, timeout=60, check=False, errors="replace")  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.startswith("error:")]) == 1
    if setup == "reserved-agent":
        assert f"{tmp_path}/agents/route.md:2:" in done.stderr


def test_many_runs_at_once_and_two_batches_on_one_database_lose_nothing(workspace: Path, tmp_path: Path) -> None:
    with MessagesServer(lambda body: Message([text("Done.")])) as server:
        env = environ(server.url, tmp_path)
        tasks = tmp_path / "tasks.txt"
        tasks.write_text("".join(f"write a pytest for helper {i}\n" for i in range(20)))
        db = tmp_path / "r.sqlite"
        command = ["batch", str(tasks), "--max-concurrency", "8", "--workspace", str(workspace)]
        batches = [subprocess.Popen(orchestrate(*command, db=db), env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
        outputs = [b.communicate(timeout=300) for b in batches]
    for (stdout, stderr), batch in zip(outputs, batches, strict=True):
        assert batch.returncode == 0 and "Traceback" not in stderr, stderr
        lines = [json.loads(line) for line in stdout.splitlines()]
        assert len(lines) == 20 and {line["status"] for line in lines} == {"completed"}
    assert {r["status"] for r in runs(db, environ(server.url, tmp_path))} == {"completed"}


def test_a_tool_call_whose_input_is_not_an_object_fails_in_one_line_naming_it(workspace: Path, tmp_path: Path) -> None:
    broken = {"type": "tool_use", "id": "toolu_broken", "name": "Write", "input": "notes.txt please"}
    with MessagesServer(scripted([Message([broken])])) as server:
        command = ["run", "--agent", JUNIOR, "--workspace", str(workspace), "write notes"]
        done = subprocess.run(orchestrate(*command, db=tmp_path / "r.sqlite"), env=environ(server.url, tmp_path),
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "cannot be read" in ln]
    assert "tool_calls" in line and "args" in line and "notes.txt please" in line


def test_a_200_reply_that_is_not_json_fails_the_run_in_one_line(workspace: Path, tmp_path: Path) -> None:
    with MessagesServer(lambda body: Raw(b"<html>proxy says hi</html>")) as server:
        command = ["run", "--agent", JUNIOR, "--workspace", str(workspace), "say hi"]
        done = subprocess.run(orchestrate(*command, db=tmp_path / "r.sqlite"), env=environ(server.url, tmp_path),
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "failed" in done.stderr and "continue with: orchestrate resume" in done.stderr
