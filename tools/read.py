"""Read: a text file as `cat -n` numbered lines, the way Claude Code's Read shows it.

Line numbers matter: the model quotes them back to Edit and uses them as `offset` for the next Read.
Large files are read in windows (offset/limit) rather than whole, so a log or a data file cannot flood
the context; binary files are refused with a message instead of mojibake.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ToolError
from orchestrator.tools.base import PATH_RULE, ToolContext, ToolSpec, in_thread
from orchestrator.tools.sandbox import open_beneath, resolve_in_workspace, workspace_relative
from orchestrator.tools.tracking import record_read

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "READ",
    "ReadArgs",
    "number_lines",
    "run_read",
]

DEFAULT_LIMIT = 2000
"""Lines returned when the model gives no limit."""
MAX_LINE_CHARS = 2000
"""Longer lines (minified code, embedded data) are cut to this many characters."""
MAX_FILE_BYTES = 256 * 1024
"""Whole-file reads of bigger files are refused; the model must page with offset/limit or Grep."""
_SNIFF_BYTES = 8192

DESCRIPTION = f"""\
Reads a text file as `cat -n` (line number, tab, line): up to {DEFAULT_LIMIT} lines, each cut at \
{MAX_LINE_CHARS} characters; over {MAX_FILE_BYTES // 1024} KB pass offset and limit, or Grep. Read a file before \
you Edit or overwrite it. Fails on a missing file, a directory or binary data.
"""


class ReadArgs(BaseModel):
    """Arguments of Read (Claude Code's names)."""

    model_config = ConfigDict(extra="forbid")

    file_path: str = Field(description=PATH_RULE)
    offset: int | None = Field(
        default=None,
        ge=0,
        description="First line to read, 1-based.",
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        description="How many lines to read.",
    )


@dataclass(frozen=True)
class _Window:
    """The lines asked for, and how many the file has in all."""

    lines: list[str]
    first: int
    total: int


def number_lines(lines: Iterable[str], first: int) -> str:
    """`cat -n` format: right-aligned line number, a tab, the line (cut past MAX_LINE_CHARS)."""
    return "\n".join(f"{n:>6}\t{_cut(line)}" for n, line in enumerate(lines, start=first))


def _cut(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[:MAX_LINE_CHARS] + f" [... line cut at {MAX_LINE_CHARS} of {len(line)} characters]"


def _check_readable(path: Path, rel: str, raw: str) -> None:
    if not path.exists():
        raise ToolError(f"File does not exist: {raw}")
    if path.is_dir():
        raise ToolError(f"{rel} is a directory, not a file; use Glob or Bash ls to list it.")


def _read_window(workspace: Path, path: Path, rel: str, whole: bool, first: int, count: int) -> _Window:
    """Open the file once, beneath the workspace (no symlink swapped in since resolving is followed), check
    its size and that it is text, and stream it, keeping lines [first, first + count) and counting all."""
    with os.fdopen(open_beneath(workspace, path, os.O_RDONLY), "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if whole and size > MAX_FILE_BYTES:
            raise ToolError(
                f"File {rel} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit for reading a whole file. "
                "Pass offset and limit to read part of it, or use Grep to find the lines you need."
            )
        if b"\0" in handle.read(_SNIFF_BYTES):
            raise ToolError(f"File {rel} looks binary ({size} bytes); Read only shows text files.")
        handle.seek(0)
        kept: list[str] = []
        total = 0
        for total, raw in enumerate(handle, start=1):
            if first <= total < first + count:
                kept.append(raw.decode("utf-8", errors="replace").rstrip("\n").rstrip("\r"))
    return _Window(kept, first, total)


def _render(rel: str, window: _Window) -> str:
    if window.total == 0:
        return f"(File {rel} exists but is empty.)"
    if not window.lines:
        raise ToolError(f"File {rel} has {window.total} lines; offset {window.first} is past the end of the file.")
    body = number_lines(window.lines, window.first)
    last = window.first + len(window.lines) - 1
    if window.first == 1 and last == window.total:
        return body
    note = f"(Showing lines {window.first}-{last} of {window.total}; use offset={last + 1} to read on.)"
    return f"{body}\n\n{note}"


def _read(args: ReadArgs, ctx: ToolContext) -> str:
    """Read the window the model asked for and remember that this context has seen the file."""
    path = resolve_in_workspace(ctx.workspace, args.file_path, arg="file_path")
    rel = workspace_relative(ctx.workspace, path)
    whole = args.offset is None and args.limit is None
    _check_readable(path, rel, args.file_path)
    first = max(args.offset or 1, 1)
    window = _read_window(ctx.workspace, path, rel, whole, first, args.limit or DEFAULT_LIMIT)
    text = _render(rel, window)
    record_read(ctx, rel, path)
    return text


run_read = in_thread(_read)


READ: ToolSpec[ReadArgs] = ToolSpec(name="Read", description=DESCRIPTION, args=ReadArgs, run=run_read)
