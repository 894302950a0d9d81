"""structlog, configured once at the entry point (the CLI or the caller's own `configure_logging`).

Library code logs through `get_logger(name)` and binds run_id / agent / node with contextvars. Until
structlog is configured (by `configure_logging`, or by the application's own `structlog.configure`), the
library says nothing: structlog's default would print every event on the user's stdout.
Prompts, tool payloads and secrets never reach a log line: `redact` drops payload-bearing keys and masks
anything that looks like a credential, whatever the key, and the environment's actual key values.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from orchestrator.secrets import mask_secrets

__all__ = ["configure_logging", "get_logger", "redact", "scrub"]

_PAYLOAD_KEYS = frozenset({"prompt", "prompts", "messages", "content", "input", "output", "args", "api_key", "headers"})
_SECRET = re.compile(r"(sk-ant-[\w-]+|sk-[A-Za-z0-9]{20,}|Bearer\s+\S+|(?i:api[_-]?key)=\S+)")


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


class _LibraryLogger:
    """A structlog logger that is silent while structlog is unconfigured."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        if not structlog.is_configured():
            return _nothing
        return getattr(structlog.get_logger(self._name), method)


def get_logger(name: str) -> Any:
    """The library's logger for `name`: structlog's once the process configured structlog, else silent."""
    return _LibraryLogger(name)


def scrub(text: str) -> str:
    """Mask the environment's secret values and anything that looks like a credential in free text
    (recorded requests and responses, log values)."""
    return _SECRET.sub("[secret]", mask_secrets(text))


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Drop payload keys, mask credential-looking strings in every value."""
    clean: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        if key in _PAYLOAD_KEYS:
            clean[key] = "[redacted]"
        elif isinstance(value, str):
            clean[key] = scrub(value)
        else:
            clean[key] = value
    return dict(clean)


def configure_logging(*, json: bool = False, level: str = "warning", stream: TextIO | None = None) -> None:
    """Configure structlog for the process: JSON lines or console, to stderr, at `level`."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
