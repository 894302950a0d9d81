"""The ripgrep engine for Grep: run `rg` (argument list, no shell) and parse what it prints.

ripgrep is what Claude Code's Grep runs, so its semantics are the reference: .gitignore-aware, hidden
files included, binary files skipped. We pin its behaviour with flags (no config file, no ignore files
above the search root, no global excludes) so the Python fallback can reproduce it exactly. Content
mode uses `--json` so line numbers and context come back structured instead of re-parsed from text.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import ToolError
from orchestrator.tools.grep_query import SKIP_GLOBS, FileHits, GrepQuery, Line, newline_error

__all__ = ["RG_TIMEOUT_S", "rg_argv", "search_rg"]

RG_TIMEOUT_S = 60.0
_PINNED = (
    "--no-config",
    "--hidden",
    "--no-require-git",
    "--no-ignore-parent",
    "--no-ignore-global",
    "--no-ignore-exclude",
    "--with-filename",
    "--line-number",
)
_MODE_FLAGS = {"content": ("--json",), "files_with_matches": ("--files-with-matches", "--null")}


def rg_argv(rg: str, query: GrepQuery) -> list[str]:
    """The full argument list; the target is relative because rg runs in the workspace root."""
    argv = [rg, *_PINNED, *_MODE_FLAGS.get(query.mode, ("--count", "--null"))]
    argv += ["--ignore-case"] if query.ignore_case else []
    argv += ["--multiline", "--multiline-dotall"] if query.multiline else []
    argv += ["--glob", query.glob] if query.glob else []
    for skip in SKIP_GLOBS:
        argv += ["--glob", skip]
    argv += ["--type", query.file_type] if query.file_type else []
    if query.mode == "content":
        argv += ["--before-context", str(query.before), "--after-context", str(query.after)]
    target = query.target.relative_to(query.root).as_posix()
    return [*argv, "--regexp", query.pattern, "--", target]


async def _run(argv: list[str], cwd: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), RG_TIMEOUT_S)
    except TimeoutError as exc:
        raise ToolError(f"Grep timed out after {RG_TIMEOUT_S:.0f} s; narrow path, glob or type.") from exc
    finally:
        if proc.returncode is None:  # timed out or cancelled: rg must not outlive the call
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out, err


def _fail(query: GrepQuery, stderr: str) -> ToolError:
    detail = stderr.strip()
    if "is not allowed in a regex" in detail:
        return newline_error(query.pattern)
    if "regex" in detail:
        return ToolError(f"Invalid regex {query.pattern!r}: {detail}")
    if "unrecognized file type" in detail:
        return ToolError(f"Unknown file type {query.file_type!r} for type: {detail}")
    return ToolError(f"Grep failed: {detail}")


def _rel(raw: bytes | str) -> str:
    text = os.fsdecode(raw)
    return os.path.normpath(text).replace(os.sep, "/")


def _parse_names(out: bytes) -> list[FileHits]:
    return [FileHits(_rel(name), 1) for name in out.split(b"\0") if name.strip()]


def _parse_counts(out: bytes) -> list[FileHits]:
    hits = []
    for row in out.splitlines():
        name, _, count = row.rpartition(b"\0")
        if name:
            hits.append(FileHits(_rel(name), int(count)))
    return hits


def _text(data: Mapping[str, str]) -> str:
    """rg --json gives valid UTF-8 as "text" and anything else as base64 "bytes"."""
    if "text" in data:
        return data["text"]
    return base64.b64decode(data["bytes"]).decode("utf-8", errors="replace")


@dataclass
class _FileLines:
    count: int = 0
    lines: dict[int, Line] = field(default_factory=dict)


def _add_event(files: dict[str, _FileLines], kind: str, data: dict[str, Any]) -> None:
    entry = files.setdefault(_rel(_text(data["path"])), _FileLines())
    text = _text(data["lines"])
    first = int(data["line_number"])
    entry.count += kind == "match"
    for offset, line in enumerate(text.removesuffix("\n").split("\n")):
        entry.lines[first + offset] = Line(first + offset, line.removesuffix("\r"), kind == "match")


def _parse_json(out: bytes) -> list[FileHits]:
    files: dict[str, _FileLines] = {}
    for row in out.splitlines():
        event = json.loads(row)
        if event["type"] in ("match", "context"):
            _add_event(files, event["type"], event["data"])
    return [
        FileHits(path, entry.count, tuple(entry.lines[n] for n in sorted(entry.lines))) for path, entry in files.items()
    ]


async def search_rg(query: GrepQuery, *, rg: str) -> list[FileHits]:
    """Run ripgrep for `query`; exit status 1 means "no match", 2 with no output means an error."""
    code, out, err = await _run(rg_argv(rg, query), str(query.root))
    if code == 2 and not out:
        raise _fail(query, err.decode("utf-8", errors="replace"))
    if query.mode == "content":
        return _parse_json(out)
    return _parse_names(out) if query.mode == "files_with_matches" else _parse_counts(out)
