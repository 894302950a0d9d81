"""The contract between Grep and its two search engines (ripgrep and the Python fallback).

Both engines take the same normalized `GrepQuery` and return the same `FileHits`; one renderer turns
those into text. That split is what makes "identical output" checkable: the engines can differ only in
which lines they find, never in how results look.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.errors import ToolError

__all__ = ["SKIP_GLOBS", "Engine", "FileHits", "GrepQuery", "Line", "OutputMode", "newline_error"]

OutputMode = Literal["content", "files_with_matches", "count"]

SKIP_GLOBS = ("!.git", "!.hg", "!.svn", "!.bzr", "!.jj")
"""Version-control internals, excluded as ripgrep `--glob` overrides (after the user's glob, so they win)."""


@dataclass(frozen=True)
class GrepQuery:
    """One search, with paths already sandbox-checked and flags already resolved."""

    root: Path
    """The resolved workspace root; engines report paths relative to it."""
    target: Path
    """The file or directory to search (resolved, inside `root`)."""
    pattern: str
    mode: OutputMode
    glob: str | None = None
    file_type: str | None = None
    ignore_case: bool = False
    multiline: bool = False
    before: int = 0
    after: int = 0


@dataclass(frozen=True)
class Line:
    """One printed line: a match (or part of a multi-line match) or a context line."""

    number: int
    text: str
    is_match: bool


@dataclass(frozen=True)
class FileHits:
    """What one file contributed."""

    path: str
    """POSIX path relative to the workspace root."""
    count: int
    """Matching lines (in multiline mode: matched blocks of lines), as `rg --count` counts them."""
    lines: tuple[Line, ...] = ()
    """Matches and context in line order; filled in content mode only."""


Engine = Callable[[GrepQuery], Awaitable[list[FileHits]]]


def newline_error(pattern: str) -> ToolError:
    """ripgrep refuses a literal newline outside multiline mode; both engines say so the same way."""
    return ToolError(
        f"Invalid regex {pattern!r}: it contains a newline (\\n), which can only match with multiline set to true."
    )
