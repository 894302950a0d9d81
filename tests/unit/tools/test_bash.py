"""Bash as a real subprocess, in its bubblewrap sandbox and (opted out) without: output and exit code, cwd,
scrubbed environment, caps and timeouts, and what the sandbox keeps out of reach."""

from __future__ import annotations

import asyncio
import os
import select
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext
from orchestrator.tools.bash import MAX_OUTPUT_CHARS, BashArgs, run_bash, scrubbed_env
from orchestrator.tools.bash_sandbox import sandbox_problem


async def bash(ctx: ToolContext, command: str, timeout: int | None = None) -> str:
    return await run_bash(BashArgs(command=command, timeout=timeout), ctx)


@pytest.fixture(params=[True, False], ids=["sandboxed", "no-sandbox"])
def either(ws: Path, request: pytest.FixtureRequest) -> ToolContext:
    return ToolContext(workspace=ws, provider="local", sandbox=request.param)


def marked(marker: str) -> list[int]:
    """Host PIDs of the processes whose argv[0] is `marker` (set with `exec -a`): visible from outside
    the sandbox's PID namespace, unlike the PIDs the command itself sees."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if entry.name.isdigit() and argv0 == marker.encode():
            found.append(int(entry.name))
    return found


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


async def appears(marker: str) -> list[int]:
    """Wait (bounded) until a process named `marker` runs; its host PIDs."""
    for _ in range(3000):
        if found := marked(marker):
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no process {marker} appeared")


async def test_timeout_kills_the_whole_process_group(either: ToolContext) -> None:
    marker = f"orchestrate-test-child-{os.getpid()}-t"
    command = f"(exec -a {marker} sleep 60) & echo started; wait"
    call = asyncio.ensure_future(bash(either, command, timeout=3000))
    children = await appears(marker)
    with pytest.raises(ToolError) as err:
        await call
    assert str(err.value) == (
        "Command timed out after 3000 ms and was killed, with every process it started. "
        "Output before the timeout:\nstarted"
    )
    assert all(has_exited(pid) for pid in children)


async def test_background_jobs_do_not_outlive_the_call(either: ToolContext) -> None:
    marker = f"orchestrate-test-child-{os.getpid()}-b"
    call = asyncio.ensure_future(bash(either, f"(exec -a {marker} sleep 60) & read -t 2 <> <(:) || true"))
    children = await appears(marker)
    assert await call == "(no output)\nExit code: 0"
    assert all(has_exited(pid) for pid in children)


async def test_long_output_keeps_head_and_tail(ctx: ToolContext) -> None:
    out = await bash(ctx, "printf START; head -c 50000 /dev/zero | tr '\\0' x; printf END")
    assert out.startswith("START")
    assert out.endswith("END\nExit code: 0")
    assert f"bytes cut: output exceeded {MAX_OUTPUT_CHARS} characters" in out
    assert len(out) < MAX_OUTPUT_CHARS + 200


def test_timeout_is_bounded() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 600000"):
        BashArgs(command="true", timeout=600_001)


async def test_the_sandbox_keeps_writes_in_the_workspace_and_a_private_tmp(ws: Path, ctx: ToolContext) -> None:
    outside = ws.parent / "outside"
    marker = f"orchestrate-sandbox-{os.getpid()}"
    out = await bash(ctx, f"touch in.txt; touch {outside}/x; touch /usr/{marker}; touch /tmp/{marker}; ls /tmp")
    assert (ws / "in.txt").exists() and not (outside / "x").exists() and not Path(f"/usr/{marker}").exists()
    assert f"touch: cannot touch '/usr/{marker}': Read-only file system" in out
    assert f"\n{marker}\n" in out and not Path(f"/tmp/{marker}").exists()  # its own /tmp, gone with the command


async def test_the_sandbox_has_no_network_unless_allowed(ws: Path, http_server: object) -> None:
    port = http_server.port  # type: ignore[attr-defined]
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected || echo refused"
    assert "refused" in await bash(ToolContext(workspace=ws, provider="local"), probe)
    assert "connected" in await bash(ToolContext(workspace=ws, provider="local", sandbox_network=True), probe)


async def test_the_sandbox_hides_the_orchestrator_from_the_command(
    ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-for-the-shell")
    out = await bash(ctx, "cat /proc/$PPID/environ | tr '\\0' '\\n'; echo; ps -e -o pid=,comm= | wc -l")
    assert "sk-ant-not-for-the-shell" not in out and "ANTHROPIC" not in out
    assert int(out.split("\n")[-2].strip()) <= 5  # bwrap's stub, the shell, ps, wc: no host processes


async def test_without_bubblewrap_bash_refuses_in_one_line(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    sandbox_problem.cache_clear()
    try:
        with pytest.raises(ToolError) as err:
            await bash(ctx, "echo hi")
    finally:
        sandbox_problem.cache_clear()
    assert str(err.value) == (
        "Bash refused: its sandbox cannot run here (bubblewrap (bwrap) is not installed); the user can "
        "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) or run with --no-sandbox."
    )
