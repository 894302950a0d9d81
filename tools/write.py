"""Write: create a file, or replace one this agent context has Read.

Creating is free; overwriting requires a prior Read in the same context (and no change since), so a model
cannot clobber a file it never looked at, nor undo another agent's edit it has not seen.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ToolError
from orchestrator.tools.base import PATH_RULE, ToolContext, ToolSpec, in_thread
from orchestrator.tools.sandbox import resolve_in_workspace, workspace_relative, write_beneath
from orchestrator.tools.tracking import record_change, require_fresh_read

__all__ = ["WRITE", "WriteArgs", "run_write"]

DESCRIPTION = """\
Writes a file (parent directories are created), replacing it if it exists. An existing file must be \
Read first and unchanged since. Prefer Edit to change part of a file.
"""


class WriteArgs(BaseModel):
    """Arguments of Write (Claude Code's names)."""

    model_config = ConfigDict(extra="forbid")

    file_path: str = Field(description=PATH_RULE)
    content: str = Field(description="The whole new content.")


def _write(args: WriteArgs, ctx: ToolContext) -> str:
    """Write the content byte for byte (no newline translation) and record the change."""
    path = resolve_in_workspace(ctx.workspace, args.file_path, arg="file_path")
    rel = workspace_relative(ctx.workspace, path)
    if path.is_dir():
        raise ToolError(f"{rel} is a directory; Write needs a file path.")
    existed = path.exists()
    if existed:
        require_fresh_read(ctx, rel, path)
    try:
        write_beneath(ctx.workspace, path, args.content.encode("utf-8"))
    except OSError as exc:
        raise ToolError(f"Could not write {rel}: {exc.strerror or exc}.") from exc
    record_change(ctx, rel, path)
    lines = len(args.content.splitlines())
    verb = "Updated" if existed else "Created"
    return f"{verb} file {rel} ({lines} lines)."


run_write = in_thread(_write)


WRITE: ToolSpec[WriteArgs] = ToolSpec(name="Write", description=DESCRIPTION, args=WriteArgs, run=run_write)
