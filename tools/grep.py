"""Grep: search file contents with ripgrep semantics, through `rg` when installed, in Python otherwise.

The model learned Claude Code's Grep (ripgrep flags as argument names: `-i`, `-n`, `-A`...), so we keep
those names as pydantic aliases. Whichever engine runs, one renderer formats the results, so the model
sees the same text either way; long results are cut with a note saying how to narrow them.
"""

from __future__ import annotations

import asyncio
import shutil
from functools import partial
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext, ToolSpec
from orchestrator.tools.grep_py import search_python
from orchestrator.tools.grep_query import Engine, FileHits, GrepQuery, OutputMode
from orchestrator.tools.grep_rg import search_rg
from orchestrator.tools.sandbox import resolve_in_workspace

__all__ = [
    "GREP",
    "MAX_LINE_CHARS",
    "MAX_OUTPUT_CHARS",
    "GrepArgs",
    "available_engines",
    "grep",
    "render",
    "run_grep",
]

MAX_OUTPUT_CHARS = 30_000
MAX_LINE_CHARS = 500
"""Matched lines longer than this (minified files) are cut in content mode."""

DESCRIPTION = f"""\
Searches file contents with a ripgrep regex (escape literal braces: `interface\\{{\\}}`), skipping \
.gitignored files. Use it, not grep or rg in Bash. Output is cut at {MAX_OUTPUT_CHARS} characters.
"""


class GrepArgs(BaseModel):
    """Arguments of Grep (Claude Code's names, ripgrep's flags as aliases)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    pattern: str = Field(description="Regex.")
    path: str | None = Field(
        default=None,
        description="File or directory (default: the workspace root).",
    )
    glob: str | None = Field(
        default=None,
        description='Only files matching this glob ("*.py").',
    )
    type: str | None = Field(
        default=None,
        description='Only files of this rg type ("py").',
    )
    output_mode: OutputMode = Field(
        default="files_with_matches",
        description='"content" (lines; -A/-B/-C/-n apply), "files_with_matches" (paths) or "count".',
    )
    # ripgrep's own flags: the name is the rule, and output_mode says where they apply
    case_insensitive: bool = Field(default=False, alias="-i", description="Ignore case.")
    line_numbers: bool = Field(default=True, alias="-n")
    after: int | None = Field(default=None, ge=0, alias="-A")
    before: int | None = Field(default=None, ge=0, alias="-B")
    context: int | None = Field(default=None, ge=0, alias="-C")
    multiline: bool = Field(
        default=False,
        description="Patterns span lines.",
    )
    head_limit: int | None = Field(
        default=None,
        ge=1,
        description="First N results only.",
    )


def available_engines() -> dict[str, Engine]:
    """The engines this machine can run: always the Python one, plus ripgrep when `rg` is on PATH."""
    engines: dict[str, Engine] = {"python": search_python}
    rg = shutil.which("rg")
    if rg is not None:
        engines["rg"] = partial(search_rg, rg=rg)
    return engines


def _query(args: GrepArgs, ctx: ToolContext) -> GrepQuery:
    root = ctx.workspace.resolve()
    target = resolve_in_workspace(ctx.workspace, args.path or ".", arg="path")
    if not target.exists():
        raise ToolError(f"path {args.path!r} does not exist.")
    context = args.context or 0
    return GrepQuery(
        root=root,
        target=target,
        pattern=args.pattern,
        mode=args.output_mode,
        glob=args.glob,
        file_type=args.type,
        ignore_case=args.case_insensitive,
        multiline=args.multiline,
        before=context if args.before is None else args.before,
        after=context if args.after is None else args.after,
    )


def _content_rows(hits: list[FileHits], numbered: bool, separated: bool) -> list[str]:
    """ripgrep's layout: `path:N:text` for matches, `path-N-text` for context, `--` between groups."""
    rows: list[str] = []
    for hit in sorted(hits, key=lambda h: h.path):
        previous = None
        for line in hit.lines:
            if separated and rows and (previous is None or line.number > previous + 1):
                rows.append("--")
            mark = ":" if line.is_match else "-"
            number = f"{line.number}{mark}" if numbered else ""
            rows.append(f"{hit.path}{mark}{number}{_cut(line.text)}")
            previous = line.number
    return rows


def _cut(text: str) -> str:
    if len(text) <= MAX_LINE_CHARS:
        return text
    return text[:MAX_LINE_CHARS] + f" [... {len(text) - MAX_LINE_CHARS} more characters]"


def _newest_first(hits: list[FileHits], root: Path) -> list[str]:
    def key(hit: FileHits) -> tuple[int, str]:
        return (-(root / hit.path).stat().st_mtime_ns, hit.path)

    return [hit.path for hit in sorted(hits, key=key)]


def _limit(rows: list[str], head_limit: int | None, unit: str) -> tuple[list[str], str]:
    if head_limit is None or len(rows) <= head_limit:
        return rows, ""
    return rows[:head_limit], f"\n(Showing the first {head_limit} of {len(rows)} {unit}; raise head_limit to see more.)"


def _cap(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    head = text[:MAX_OUTPUT_CHARS].rsplit("\n", 1)[0]
    note = f"(Output cut at {MAX_OUTPUT_CHARS} characters; use head_limit, path, glob or a narrower pattern.)"
    return f"{head}\n{note}"


def render(hits: list[FileHits], args: GrepArgs, query: GrepQuery) -> str:
    """The text the model reads, identical for both engines."""
    if not hits:
        return "No files found" if query.mode == "files_with_matches" else "No matches found"
    if query.mode == "files_with_matches":
        rows, note = _limit(_newest_first(hits, query.root), args.head_limit, "files")
        return _cap(f"Found {len(hits)} files\n" + "\n".join(rows) + note)
    if query.mode == "count":
        ordered = sorted(hits, key=lambda h: h.path)
        rows, note = _limit([f"{h.path}:{h.count}" for h in ordered], args.head_limit, "files")
        total = sum(h.count for h in hits)
        return _cap("\n".join(rows) + note + f"\n\nFound {total} matches across {len(hits)} files.")
    separated = query.before > 0 or query.after > 0
    rows, note = _limit(_content_rows(hits, args.line_numbers, separated), args.head_limit, "lines")
    return _cap("\n".join(rows) + note)


async def grep(args: GrepArgs, ctx: ToolContext, engine: Engine) -> str:
    """Run one search with the given engine (tests pass each engine explicitly)."""
    query = await asyncio.to_thread(_query, args, ctx)  # it resolves and stats paths
    return render(await engine(query), args, query)


async def run_grep(args: GrepArgs, ctx: ToolContext) -> str:
    """ripgrep when installed, the Python engine otherwise."""
    engines = await asyncio.to_thread(available_engines)  # it looks for rg on PATH
    return await grep(args, ctx, engines.get("rg", engines["python"]))


GREP: ToolSpec[GrepArgs] = ToolSpec(name="Grep", description=DESCRIPTION, args=GrepArgs, run=run_grep)
