"""A real `langgraph dev` (LangGraph Server in one process) serving this project's langgraph.json."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.waiting import wait_for

__all__ = ["langgraph_dev"]

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ok(url: str, server: subprocess.Popen[bytes], log: Path) -> bool:
    if server.poll() is not None:
        raise AssertionError(f"langgraph dev exited with {server.returncode}:\n{log.read_text()[-4000:]}")
    try:
        with urllib.request.urlopen(f"{url}/ok", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@contextmanager
def langgraph_dev(env: Mapping[str, str], cwd: Path) -> Iterator[str]:
    """Start `langgraph dev` from `cwd` (not the checkout: `--config` names the project's file) with exactly
    the environment a user would set plus `env`; yield its URL; stop it and fail on any blocking-call error
    it logged."""
    port, log = _free_port(), cwd / "langgraph-dev.log"
    command = [str(Path(sys.executable).with_name("langgraph")), "dev", "--no-browser", "--no-reload",
               "--port", str(port), "--config", str(REPO / "langgraph.json")]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ok(url, server, log), "langgraph dev to answer /ok", timeout=120)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    text = log.read_text(errors="replace")
    assert "BlockingError" not in text, text[-4000:]
