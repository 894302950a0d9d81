"""Suite-wide guards: no test reaches beyond this machine, and no real Claude key leaks into a test."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else None
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if inet and host is not None and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
        raise ConnectionRefusedError(f"tests may not reach {host}: only loopback is allowed")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network_no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    # run records and checkpoints go to a throwaway per-user data dir (the model cache stays shared)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    monkeypatch.delenv("ORCHESTRATE_DB", raising=False)  # never a developer's real database
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A CLI test configures structlog onto its captured stderr; later tests must not inherit that."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def seed_file() -> Path:
    """The senior agent's spec as the project received it (tests/data/seed)."""
    return DATA / "seed" / "senior-ml-engineer.seed.md"


@pytest.fixture
def agent_corpus() -> Path:
    """360 published Claude Code agent files from two MIT collections, licences beside them."""
    return DATA / "agent-corpus"
