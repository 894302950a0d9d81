"""Keep every path a tool touches inside the workspace root.

Models pass paths as they please: relative, absolute, with `..`, or through a symlink someone planted.
Every file tool resolves its path argument here, once, so the rule "inside the workspace, after
following symlinks" lives in one function. A refusal is a `ToolError` naming the argument and the path,
because the model chose the path and can choose another.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import ToolError

__all__ = ["resolve_in_workspace", "workspace_relative"]


def resolve_in_workspace(workspace: Path, raw: str, *, arg: str) -> Path:
    """Return the real (symlink-free) absolute path for `raw`, or refuse if it leaves the workspace.

    Relative paths are taken from the workspace root (not the process's cwd); `~` expands to the home
    directory, which then has to be inside the workspace like any other absolute path.
    """
    root = workspace.resolve()
    if not raw.strip():
        raise ToolError(f"{arg} is empty; give a path inside the workspace {root}.")
    if "\0" in raw:
        raise ToolError(f"{arg} {raw!r} contains a NUL byte.")
    joined = root / os.path.expanduser(raw)
    lexical = Path(os.path.normpath(joined))
    if not lexical.is_relative_to(root):
        raise ToolError(
            f"{arg} {raw!r} is outside the workspace {root}; only paths inside it are allowed "
            "(relative paths start at the workspace root)."
        )
    real = joined.resolve()
    if not real.is_relative_to(root):
        raise ToolError(f"{arg} {raw!r} leads through a symlink to {real}, outside the workspace {root}.")
    return real


def workspace_relative(workspace: Path, path: Path) -> str:
    """The POSIX-style path of `path` relative to the workspace root ("." for the root itself): the
    form tools print and the form `ToolContext.files_read` and `files_changed` store."""
    return path.relative_to(workspace.resolve()).as_posix()
