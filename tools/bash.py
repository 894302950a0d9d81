"""Bash: run a shell command in the workspace, sandboxed, with a timeout, a capped output and no secrets.

The command runs under bubblewrap (tools/bash_sandbox.py: own PID namespace, read-only root, writable
workspace and private /tmp, no network) unless the user opted out. It gets the parent's environment minus
anything that looks like a credential, so a prompt injection that says "echo $ANTHROPIC_API_KEY" (or
"cat /proc/$PPID/environ") finds nothing. It runs in its own process group so a timeout kills the command
*and* whatever it spawned, and the model gets a readable error rather than a hung run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext, ToolSpec
from orchestrator.tools.bash_sandbox import INSTALL_HINT, sandbox_argv, sandbox_problem

__all__ = [
    "BASH",
    "DEFAULT_TIMEOUT_MS",
    "MAX_OUTPUT_CHARS",
    "MAX_TIMEOUT_MS",
    "SECRET_MARKERS",
    "BashArgs",
    "run_bash",
    "scrubbed_env",
]

DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 600_000
MAX_OUTPUT_CHARS = 30_000
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
"""A variable whose upper-cased name contains one of these is withheld from the command."""
_DRAIN_GRACE_S = 5.0
"""After the process group is killed, how long to wait for a pipe held open by an escaped daemon."""

DESCRIPTION = f"""\
Runs a bash command in the workspace root, sandboxed (no network unless allowed), returning stdout, \
stderr and the exit code. A fresh shell each call: chain with &&. Output over {MAX_OUTPUT_CHARS} characters \
keeps its start and end. For files use Read, Write, Edit, Glob and Grep. No secrets in the environment.
"""


class BashArgs(BaseModel):
    """Arguments of Bash (Claude Code's names)."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(description="The command.")
    timeout: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TIMEOUT_MS,
        description=f"Milliseconds (default {DEFAULT_TIMEOUT_MS}); then the command and its children are killed.",
    )
    description: str | None = Field(
        default=None,
        description="What it does, in 5-10 words.",
    )


def scrubbed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without ANTHROPIC_* and without anything named like a key, token, secret or password."""
    return {
        name: value
        for name, value in environ.items()
        if not name.upper().startswith("ANTHROPIC_") and not any(m in name.upper() for m in SECRET_MARKERS)
    }


@dataclass
class _Output:
    """Keeps the first and last half of the cap, so both the command and its final error survive."""

    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, chunk: bytes) -> None:
        half = MAX_OUTPUT_CHARS // 2
        self.total += len(chunk)
        room = max(half - len(self.head), 0)
        self.head += chunk[:room]
        self.tail += chunk[room:]
        del self.tail[:-half]

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        cut = self.total - len(self.head) - len(self.tail)
        if cut <= 0:
            return (head + tail).rstrip("\n")
        marker = f"[... {cut} bytes cut: output exceeded {MAX_OUTPUT_CHARS} characters ...]"
        return f"{head}\n{marker}\n{tail}".rstrip("\n")


class _Collector(asyncio.SubprocessProtocol):
    """Collects output and tells apart "the shell exited" from "every pipe writer is gone": a background
    job can keep the pipe open long after the shell exits (asyncio's Process.wait waits for both)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.output = _Output()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.output.add(data.encode() if isinstance(data, str) else data)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _kill_group(pgid: int) -> None:
    """Kill every process the command started (they share its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _argv(command: str, ctx: ToolContext) -> list[str]:
    shell = shutil.which("bash") or "/bin/sh"
    if not ctx.sandbox:
        return [shell, "-c", command]
    if (problem := sandbox_problem()) is not None:
        raise ToolError(f"Bash refused: its sandbox cannot run here ({problem}); the user can {INSTALL_HINT}.")
    return sandbox_argv(ctx.workspace, shell, command, network=ctx.sandbox_network)


async def _spawn(command: str, ctx: ToolContext) -> tuple[asyncio.SubprocessTransport, _Collector]:
    return await asyncio.get_running_loop().subprocess_exec(
        _Collector,
        *await asyncio.to_thread(_argv, command, ctx),  # it probes the sandbox and resolves paths
        cwd=ctx.workspace,
        env=scrubbed_env(os.environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def _within(future: asyncio.Future[None], seconds: float) -> bool:
    """Whether `future` completed within `seconds` (it is not cancelled when it did not)."""
    try:
        await asyncio.wait_for(asyncio.shield(future), seconds)
    except TimeoutError:
        return False
    return True


async def run_bash(args: BashArgs, ctx: ToolContext) -> str:
    """Run the command; a timeout is a ToolError carrying the output so far."""
    timeout_ms = args.timeout or DEFAULT_TIMEOUT_MS
    transport, collector = await _spawn(args.command, ctx)
    try:
        finished = await _within(collector.exited, timeout_ms / 1000)
        _kill_group(transport.get_pid())  # everything on timeout; otherwise the jobs it left running
        await _within(collector.closed, _DRAIN_GRACE_S)  # a daemon that left the group may hold the pipe
    finally:
        _kill_group(transport.get_pid())
        transport.close()
    output = collector.output.text() or "(no output)"
    if not finished:
        raise ToolError(
            f"Command timed out after {timeout_ms} ms and was killed, with every process it started. "
            f"Output before the timeout:\n{output}"
        )
    return f"{output}\nExit code: {transport.get_returncode()}"


BASH: ToolSpec[BashArgs] = ToolSpec(name="Bash", description=DESCRIPTION, args=BashArgs, run=run_bash)
