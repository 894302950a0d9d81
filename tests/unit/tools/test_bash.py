"""Bash as a real subprocess: output and exit code, cwd, scrubbed environment, caps and timeouts."""

from __future__ import annotations

import os
import select
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext
from orchestrator.tools.bash import MAX_OUTPUT_CHARS, BashArgs, run_bash, scrubbed_env


async def bash(ctx: ToolContext, command: str, timeout: int | None = None) -> str:
    return await run_bash(BashArgs(command=command, timeout=timeout), ctx)


def has_exited(pid: int) -> bool:
    """True once `pid` is gone or a zombie; waits on a pidfd (bounded), never sleeps."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], 30)[0])
    finally:
        os.close(fd)


async def test_output_and_exit_code(ctx: ToolContext) -> None:
    assert await bash(ctx, "echo out; echo err >&2; exit 3") == "out\nerr\nExit code: 3"
    assert await bash(ctx, "true") == "(no output)\nExit code: 0"


async def test_runs_in_the_workspace(ws: Path, ctx: ToolContext) -> None:
    assert await bash(ctx, "pwd") == f"{ws}\nExit code: 0"


async def test_environment_is_scrubbed_of_secrets(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://fake")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_fake")
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-fake")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    out = await bash(ctx, "env")
    for leaked in ("sk-ant-fake-key", "http://fake", "ghp_fake", "hunter2", "aws-fake"):
        assert leaked not in out
    assert "HARMLESS_SETTING=visible" in out


def test_scrubbed_env_rules() -> None:
    env = {"PATH": "/bin", "anthropic_model": "x", "my_api_key": "k", "SSH_CREDENTIALS": "c", "LANG": "C"}
    assert scrubbed_env(env) == {"PATH": "/bin", "LANG": "C"}


async def test_timeout_kills_the_whole_process_group(ws: Path, ctx: ToolContext) -> None:
    command = "sleep 60 & echo $! > child.pid; echo started; wait"
    with pytest.raises(ToolError) as err:
        await bash(ctx, command, timeout=1000)
    assert str(err.value) == (
        "Command timed out after 1000 ms and was killed, with every process it started. "
        "Output before the timeout:\nstarted"
    )
    assert has_exited(int((ws / "child.pid").read_text()))


async def test_background_jobs_do_not_outlive_the_call(ws: Path, ctx: ToolContext) -> None:
    assert await bash(ctx, "sleep 60 & echo $! > bg.pid") == "(no output)\nExit code: 0"
    assert has_exited(int((ws / "bg.pid").read_text()))


async def test_long_output_keeps_head_and_tail(ctx: ToolContext) -> None:
    out = await bash(ctx, "printf START; head -c 50000 /dev/zero | tr '\\0' x; printf END")
    assert out.startswith("START")
    assert out.endswith("END\nExit code: 0")
    assert f"bytes cut: output exceeded {MAX_OUTPUT_CHARS} characters" in out
    assert len(out) < MAX_OUTPUT_CHARS + 200


def test_timeout_is_bounded() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 600000"):
        BashArgs(command="true", timeout=600_001)
