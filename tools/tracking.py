"""What one agent context has seen and changed, so Write and Edit never act on a stale view.

Claude Code's rule: you may overwrite or edit a file only after reading it in this conversation, and
only if nobody changed it since. In a multi-agent run that second half matters most: two juniors share a
workspace, and a blind Write would silently undo the other one's work.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext

__all__ = ["record_change", "record_read", "require_fresh_read"]


def _version(rel: str, path: Path) -> int:
    """The file's mtime, never through a symlink (one swapped in would point outside the workspace)."""
    try:
        return os.stat(path, follow_symlinks=False).st_mtime_ns
    except OSError as exc:
        raise ToolError(f"File {rel} changed while it was in use (it is gone or was replaced); try again.") from exc


def record_read(ctx: ToolContext, rel: str, path: Path) -> None:
    """Note that this context has seen `rel` as it is now on disk."""
    ctx.files_read.add(rel)
    ctx.file_versions[rel] = _version(rel, path)


def record_change(ctx: ToolContext, rel: str, path: Path) -> None:
    """Note that this context wrote `rel`; it now knows the content, so it counts as read too."""
    if rel not in ctx.files_changed:
        ctx.files_changed.append(rel)
    record_read(ctx, rel, path)


def require_fresh_read(ctx: ToolContext, rel: str, path: Path) -> None:
    """Refuse to change an existing file this context has not Read, or that changed since it did."""
    if rel not in ctx.files_read:
        raise ToolError(f"File {rel} has not been read yet in this conversation. Read it first, then change it.")
    seen = ctx.file_versions.get(rel)
    if seen is not None and seen != _version(rel, path):
        raise ToolError(
            f"File {rel} has been modified since you last read it (by another agent, a command or the "
            "user). Read it again before changing it."
        )
