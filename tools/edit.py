"""Edit: exact string replacement in a file this agent context has Read.

Exact and unique is the point: the model proves it knows what it is replacing, and an ambiguous edit is
refused with the number of matches so the model can add context (or ask for replace_all) instead of
changing the wrong occurrence.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ToolError
from orchestrator.tools.base import PATH_RULE, ToolContext, ToolSpec, in_thread
from orchestrator.tools.read import number_lines
from orchestrator.tools.sandbox import read_beneath, resolve_in_workspace, workspace_relative, write_beneath
from orchestrator.tools.tracking import record_change, require_fresh_read

__all__ = ["EDIT", "EditArgs", "run_edit"]

_SNIPPET_CONTEXT = 4

DESCRIPTION = """\
Replaces old_string with new_string in a file you have Read (unchanged since). old_string matches \
exactly, without Read's line-number prefix, and once unless replace_all: add surrounding lines to make \
it unique. An empty old_string on a missing file creates it.
"""


class EditArgs(BaseModel):
    """Arguments of Edit (Claude Code's names)."""

    model_config = ConfigDict(extra="forbid")

    file_path: str = Field(description=PATH_RULE)
    old_string: str = Field(description="Exact text to replace.")
    new_string: str = Field(description="Its replacement (different).")
    replace_all: bool = Field(default=False, description="Replace every occurrence.")


def _load(workspace: Path, path: Path, rel: str) -> str:
    if path.is_dir():
        raise ToolError(f"{rel} is a directory; Edit needs a file path.")
    try:
        return read_beneath(workspace, path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"File {rel} is not UTF-8 text; Edit only changes text files.") from exc


def _replace(text: str, args: EditArgs, rel: str) -> tuple[str, int]:
    """The new text and the number of replacements, or a ToolError the model can act on."""
    count = text.count(args.old_string) if args.old_string else 0
    if count == 0:
        raise ToolError(
            f"String to replace not found in {rel}. old_string must match the file exactly, including "
            "whitespace and indentation; Read the file again and copy the text."
        )
    if count > 1 and not args.replace_all:
        raise ToolError(
            f"Found {count} matches of old_string in {rel}, but replace_all is false. Add surrounding lines "
            "to old_string to make it unique, or set replace_all to true to replace every occurrence."
        )
    return text.replace(args.old_string, args.new_string), count


def _snippet(new_text: str, start: int, new_string: str) -> str:
    """`cat -n` lines around the first replacement, so the model sees the result without a Read."""
    lines = new_text.removesuffix("\n").split("\n")
    first = new_text.count("\n", 0, start)
    last = first + new_string.rstrip("\n").count("\n")
    lo, hi = max(first - _SNIPPET_CONTEXT, 0), min(last + _SNIPPET_CONTEXT + 1, len(lines))
    return number_lines(lines[lo:hi], lo + 1)


def _create(path: Path, rel: str, args: EditArgs, ctx: ToolContext) -> str:
    """An empty old_string on a missing file creates it, as in Claude Code."""
    write_beneath(ctx.workspace, path, args.new_string.encode("utf-8"))
    record_change(ctx, rel, path)
    return f"Created file {rel}."


def _edit_existing(path: Path, rel: str, args: EditArgs, ctx: ToolContext) -> str:
    require_fresh_read(ctx, rel, path)
    text = _load(ctx.workspace, path, rel)
    if not args.old_string and text:
        raise ToolError(f"old_string is empty but {rel} is not; give the exact text to replace.")
    new_text, count = _replace(text, args, rel) if args.old_string else (args.new_string, 1)
    write_beneath(ctx.workspace, path, new_text.encode("utf-8"))
    record_change(ctx, rel, path)
    start = text.find(args.old_string) if args.old_string else 0
    noun = "occurrence" if count == 1 else "occurrences"
    return (
        f"Edited {rel}: replaced {count} {noun}. Snippet of the result (cat -n):\n"
        f"{_snippet(new_text, start, args.new_string)}"
    )


def _edit(args: EditArgs, ctx: ToolContext) -> str:
    """Apply one exact replacement (or all, with replace_all) and record the change."""
    if args.old_string == args.new_string:
        raise ToolError("old_string and new_string are identical; there is nothing to change.")
    path = resolve_in_workspace(ctx.workspace, args.file_path, arg="file_path")
    rel = workspace_relative(ctx.workspace, path)
    exists = path.exists()
    if not exists and args.old_string:
        raise ToolError(f"File does not exist: {args.file_path}")
    try:
        return _edit_existing(path, rel, args, ctx) if exists else _create(path, rel, args, ctx)
    except OSError as exc:
        raise ToolError(f"Could not write {rel}: {exc.strerror or exc}.") from exc


run_edit = in_thread(_edit)


EDIT: ToolSpec[EditArgs] = ToolSpec(name="Edit", description=DESCRIPTION, args=EditArgs, run=run_edit)
