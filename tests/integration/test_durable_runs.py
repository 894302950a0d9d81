"""Durable runs for real: a CLI subprocess against the loopback Messages API, killed with SIGKILL while
a junior is in flight, then resumed; API faults survived by the SDK's retries; a dead API failing the run
cleanly, resumable once it recovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.claude_team import FINAL, SUBTASKS, team_responder
from tests.support.messages_server import Fault, MessagesServer, RecordedRequest, Reply
from tests.support.waiting import wait_for

SLOW_PATH = "rag/retrieve.py"


def _orchestrate(*args: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args, "--db", str(db)]


def _env(server: MessagesServer, home: Path) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "x", "HOME": str(home)}


def _is_junior_first_turn(request: RecordedRequest, path: str) -> bool:
    text = json.dumps(request.body.get("messages"))
    return "turns clear briefs" in json.dumps(request.body.get("system")) and path in text and "tool_result" not in text


def _is_review(request: RecordedRequest, path: str) -> bool:
    return (request.body.get("tool_choice") or {}).get("name") == "Verdict" and path in json.dumps(request.body)


class HeldJunior:
    """Holds the first answer to one junior until released, so the test can kill the run mid-branch."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.team = team_responder(junior_delay=0.0)

    def __call__(self, body: dict[str, Any]) -> Reply:
        if "tool_result" not in json.dumps(body["messages"]) and SLOW_PATH in json.dumps(body["messages"][0]):
            self.release.wait(timeout=30)
        return self.team(body)


@pytest.fixture
def held() -> Iterator[tuple[MessagesServer, HeldJunior]]:
    responder = HeldJunior()
    with MessagesServer(responder) as server:
        yield server, responder
        responder.release.set()


def test_sigkill_during_parallel_delegation_then_resume_repeats_no_finished_subtask(
    held: tuple[MessagesServer, HeldJunior], tmp_path: Path
) -> None:
    server, responder = held
    db, env = tmp_path / "runs.sqlite", _env(server, tmp_path)
    run = ["run", "--json", "--permission-mode", "acceptEdits", "--workspace", str(tmp_path), "design a RAG pipeline"]
    process = subprocess.Popen(_orchestrate(*run, db=db), env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    fast = next(path for path in SUBTASKS if path != SLOW_PATH)
    wait_for(lambda: any(_is_review(r, fast) for r in server.requests), "the fast junior's review")
    wait_for(lambda: (tmp_path / fast).exists(), "the fast junior's file")
    time.sleep(0.5)  # let the finished branch's checkpoint write land before the kill
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    responder.release.set()

    listed = subprocess.run(_orchestrate("runs", "--json", db=db), env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    [record] = json.loads(listed.stdout)
    assert record["status"] == "interrupted"  # its process is gone: the lease says so at once
    resumed = subprocess.run(_orchestrate("resume", record["run_id"], "--json", db=db), env=env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    payload = json.loads(resumed.stdout)
    assert payload["status"] == "completed" and payload["final"] == FINAL
    assert sorted(d["status"] for d in payload["delegations"]) == ["approved", "approved"]
    requests = server.requests
    assert sum(_is_junior_first_turn(r, fast) for r in requests) == 1  # the finished subtask never ran again
    assert sum(_is_review(r, fast) for r in requests) == 1
    assert sum(_is_junior_first_turn(r, SLOW_PATH) for r in requests) == 2  # killed once, then finished
    for path, content in SUBTASKS.items():
        assert (tmp_path / path).read_text() == content
    # each junior worked in a snapshot of its own; the fast one merged before the kill and not again after
    command = [sys.executable, "-m", "orchestrator", "branches", record["run_id"], "--json"]
    branches = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    assert sorted((b["merge"], [c["path"] for c in b["changes"]]) for b in branches) == [
        ("merged", [path]) for path in sorted(SUBTASKS)
    ]


def _flaky(responder: Callable[[dict[str, Any]], Reply], every: int) -> Callable[[dict[str, Any]], Reply]:
    """Answer 529 or 429 (alternating) to every `every`-th request."""
    count = iter(range(1, 10_000))

    def respond(body: dict[str, Any]) -> Reply:
        n = next(count)
        if n % every == 0:
            return Fault(529 if n % (2 * every) else 429, retry_after_ms=10)
        return responder(body)

    return respond


def test_overloaded_and_rate_limited_calls_are_retried_and_the_run_completes(tmp_path: Path) -> None:
    with MessagesServer(_flaky(team_responder(junior_delay=0.0), every=3)) as server:
        run = ["run", "--json", "--permission-mode", "acceptEdits", "--workspace", str(tmp_path), "design a RAG"]
        done = subprocess.run(_orchestrate(*run, db=tmp_path / "r.sqlite"), env=_env(server, tmp_path),
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        statuses = [r.status for r in server.requests]
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["final"] == FINAL
    assert {529, 429} <= set(statuses)


def test_a_dead_api_fails_cleanly_and_the_run_resumes_once_it_is_back(tmp_path: Path) -> None:
    up = threading.Event()
    team = team_responder(junior_delay=0.0)

    def respond(body: dict[str, Any]) -> Reply:
        return team(body) if up.is_set() else Fault(529, retry_after_ms=10)

    with MessagesServer(respond) as server:
        env, db = _env(server, tmp_path), tmp_path / "r.sqlite"
        run = ["run", "--permission-mode", "acceptEdits", "--workspace", str(tmp_path), "design a RAG pipeline"]
        failed = subprocess.run(_orchestrate(*run, db=db), env=env, capture_output=True, text=True,
                                timeout=120, check=False)  # fmt: skip
        assert failed.returncode == 1
        stderr = " ".join(failed.stderr.split())
        run_id = stderr.split("continue with: orchestrate resume ")[1].split()[0]
        assert f"run {run_id} failed" in stderr and "Overloaded" in stderr
        assert len(server.requests) == 3  # one call, the SDK's two retries, and no retry layer of ours
        up.set()
        resumed = subprocess.run(_orchestrate("resume", run_id, "--json", db=db), env=env,
                                 capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["final"] == FINAL
