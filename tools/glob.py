"""Glob: find files by name pattern, newest first, never outside the workspace.

Newest first because the files an agent cares about are usually the ones just touched; the cap keeps a
`**/*` on a big tree from flooding the context, and says so, so the model narrows the pattern instead of
believing it saw everything.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext, ToolSpec, in_thread
from orchestrator.tools.globpattern import glob_to_regex, has_magic
from orchestrator.tools.sandbox import resolve_in_workspace, workspace_relative

__all__ = ["GLOB", "MAX_RESULTS", "SKIPPED_DIRS", "GlobArgs", "run_glob"]

MAX_RESULTS = 100
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", ".jj"})
"""Version-control internals: never what the model is looking for, often huge."""

DESCRIPTION = f"""\
Finds files by name: glob patterns like "**/*.py" or "src/*.{{ts,tsx}}" (* stays in one directory, ** \
spans any). Returns up to {MAX_RESULTS} paths, newest first. To search contents, use Grep.
"""


class GlobArgs(BaseModel):
    """Arguments of Glob (Claude Code's names)."""

    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(description="Glob pattern, relative to path.")
    path: str | None = Field(
        default=None,
        description="Directory to search; omit for the workspace root.",
    )


def _relative_pattern(pattern: str, base: Path) -> str:
    """Make an absolute pattern relative to `base`; refuse `..` (the pattern must not climb out)."""
    if pattern.startswith("/"):
        if not PurePosixPath(pattern).is_relative_to(base):
            raise ToolError(f"pattern {pattern!r} is outside the search directory {base}; use a relative pattern.")
        pattern = PurePosixPath(pattern).relative_to(base).as_posix()
    if ".." in pattern.split("/"):
        raise ToolError(f"pattern {pattern!r} contains '..'; pass a path inside the workspace instead.")
    return pattern


def _literal_prefix(pattern: str) -> tuple[str, str]:
    """Split "src/pkg/**/*.py" into the directory to walk ("src/pkg") and the rest."""
    segments = pattern.split("/")
    literal: list[str] = []
    while len(segments) > 1 and not has_magic(segments[0]):
        literal.append(segments.pop(0))
    return "/".join(literal), "/".join(segments)


def _from_root(ctx: ToolContext, base: Path, prefix: str) -> str:
    """`prefix` (relative to the search directory) as a workspace-relative path, for checks and messages."""
    rel_base = workspace_relative(ctx.workspace, base)
    return prefix if rel_base == "." else f"{rel_base}/{prefix}"


def _walk(start: Path, pattern: str) -> list[Path]:
    """Files under `start` whose path relative to `start` matches; symlinked directories are not entered."""
    regex = glob_to_regex(pattern)
    found: list[Path] = []
    for directory, dirnames, filenames in os.walk(start):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        rel_dir = Path(directory).relative_to(start).as_posix()
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if regex.match(rel):
                found.append(Path(directory) / name)
    return found


def _newest_first(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (-p.lstat().st_mtime_ns, p.as_posix()))


def _render(rels: list[str]) -> str:
    if not rels:
        return "No files found"
    shown = "\n".join(rels[:MAX_RESULTS])
    if len(rels) <= MAX_RESULTS:
        return shown
    return (
        f"{shown}\n(Results are truncated: showing the {MAX_RESULTS} most recently modified of {len(rels)} "
        "matches. Use a more specific pattern or path.)"
    )


def _glob(args: GlobArgs, ctx: ToolContext) -> str:
    """Walk from the pattern's literal prefix (sandbox-checked), match, sort newest first, cap."""
    base = resolve_in_workspace(ctx.workspace, args.path or ".", arg="path")
    if not base.is_dir():
        raise ToolError(f"path {args.path!r} is not a directory.")
    prefix, rest = _literal_prefix(_relative_pattern(args.pattern, base))
    start = base
    if prefix:
        start = resolve_in_workspace(ctx.workspace, _from_root(ctx, base, prefix), arg="pattern")
    if not start.is_dir():
        return "No files found"
    paths = _newest_first(_walk(start, rest))
    return _render([workspace_relative(ctx.workspace, p) for p in paths])


run_glob = in_thread(_glob)


GLOB: ToolSpec[GlobArgs] = ToolSpec(name="Glob", description=DESCRIPTION, args=GlobArgs, run=run_glob)
