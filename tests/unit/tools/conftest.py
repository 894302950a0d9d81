"""Fixtures for the tool tests: a real workspace on disk and a fresh agent context per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.tools.base import ToolContext

from .local_http import HttpServer


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """The workspace root (resolved, like the graph gives it); tmp_path/outside is a sibling outside it."""
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("top secret\n")
    return root.resolve()


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return ToolContext(workspace=ws, provider="local")


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    holder: list[HttpServer] = []
    server = await asyncio.start_server(lambda r, w: holder[0].handle(r, w), "127.0.0.1", 0)
    holder.append(HttpServer(port=server.sockets[0].getsockname()[1]))
    async with server:
        yield holder[0]
