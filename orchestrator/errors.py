"""The three kinds of error orchestrate knows, in one place.

1. Mistakes the *model* can fix (a missing file, a non-unique edit, a refused delegation) are not
   exceptions at all: they go back to the model as tool-result text (`ToolError` is raised inside a tool
   and turned into that text by the tool node).
2. Mistakes of the *user or developer* (a malformed agent file, an unknown agent, a bad flag) raise
   `UserError` subclasses whose message names the culprit: file and line, flag, or argument.
3. *Run* failures (the API is down after retries, a budget is exhausted) raise `RunError` subclasses.

`UserError` is also a ValueError and `RunError` a RuntimeError: LangGraph Server shows a client the message
of builtin error types only ("An internal error occurred" otherwise), and these messages are for the user.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal


class OrchestrateError(Exception):
    """Base of every exception orchestrate raises on purpose."""


class UserError(OrchestrateError, ValueError):
    """A configuration or input mistake; the message names what to fix."""


class AgentFileError(UserError):
    """An agent definition file is malformed (or, under --strict, merely dubious)."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        super().__init__(f"{path}:{line}: {message}")


class ToolError(OrchestrateError):
    """Raised inside a tool for a mistake the model can fix; its text becomes the tool result."""


class RunError(OrchestrateError, RuntimeError):
    """A run could not finish."""

    status: ClassVar[Literal["failed", "budget_exceeded"]] = "failed"
    """What the run's record says it ended as."""


def internal_error(exc: BaseException) -> str:
    """One line, at most 500 characters, for an exception nobody raised on purpose (a bug, a broken
    database) at a run's boundary; mask secrets before recording it."""
    return " ".join(f"internal error: {type(exc).__name__}: {exc}".split())[:500]


class ModelCallError(RunError):
    """A model call failed after the provider's own retries."""
