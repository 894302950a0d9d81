"""Review evidence: what a subagent actually did, next to what it says it did.

The reviewer reads the brief, the subagent's report, its tool calls and the files it changed (with their
current content, read from disk). `missing_work` is a deterministic check on top: files the report claims
or the brief names that were neither changed nor exist. A reviewer's approval in spite of such gaps is
overridden, so a subagent that claims work it never did cannot slip through a lenient review.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from orchestrator.graphs.state import Brief, ToolEvent

__all__ = ["missing_work", "review_request"]

_PATH = re.compile(
    r"(?<![\w/.-])((?:[\w.-]+/)*[\w-][\w.-]*\.(?:py|txt|md|json|jsonl|ya?ml|toml|csv|tsv|ipynb|sh|cfg|ini|sql|parquet))\b"
)
_MAKE = re.compile(r"\b(?:create|write|add|save|generate|produce|implement)\b(?:[^.\n]|\.(?=\w)){0,80}", re.IGNORECASE)
_EXCERPT_LINES = 40
_EXCERPT_CHARS = 2000


def mentioned_paths(text: str) -> list[str]:
    """File paths that look like paths in free text, in order, without duplicates."""
    return list(dict.fromkeys(match.group(1).lstrip("./") for match in _PATH.finditer(text)))


def required_outputs(brief_prompt: str) -> list[str]:
    """Paths the brief asks to be made ("create x.py", "write the results to out.csv"), not mere inputs."""
    return list(dict.fromkeys(p for clause in _MAKE.findall(brief_prompt) for p in mentioned_paths(clause)))


def missing_work(brief: Brief, report: str, files_changed: Sequence[str], workspace: Path) -> list[str]:
    """Problems a reviewer must not approve: claimed or required files that are not there."""
    changed = set(files_changed)
    problems = []
    for path in mentioned_paths(report):
        if path not in changed and not (workspace / path).exists():
            problems.append(f"the report mentions {path}, but no such file exists in the workspace")
    for path in required_outputs(brief["prompt"]):
        if path not in changed and not (workspace / path).exists() and path not in mentioned_paths(report):
            problems.append(f"the brief asks for {path}, but it was not created")
    return problems


def _excerpt(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc.strerror})"
    lines = text.splitlines()
    shown = "\n".join(lines[:_EXCERPT_LINES])[:_EXCERPT_CHARS]
    more = len(lines) > _EXCERPT_LINES or len(text) > _EXCERPT_CHARS
    return shown + ("\n... (truncated)" if more else "")


def _tool_lines(tool_log: Sequence[ToolEvent]) -> str:
    if not tool_log:
        return "(none: no tool was called)"
    return "\n".join(f"- {e['tool']}({e['args']}) -> {'ok' if e['ok'] else 'ERROR'}: {e['result']}" for e in tool_log)


def _file_sections(files_changed: Sequence[str], workspace: Path) -> str:
    if not files_changed:
        return "(none: no file was created or changed)"
    return "\n".join(f"### {path}\n```\n{_excerpt(workspace / path)}\n```" for path in files_changed)


def review_request(
    brief: Brief,
    report: str,
    tool_log: Sequence[ToolEvent],
    files_changed: Sequence[str],
    *,
    workspace: Path,
    problems: Sequence[str],
) -> str:
    """The message the reviewer reads; `problems` come from `missing_work`."""
    checks = "\n".join(f"- {p}" for p in problems) if problems else "(no problems found)"
    return (
        f"## Brief ({brief['description']})\n{brief['prompt']}\n\n"
        f"## Report from {brief['agent']}\n{report or '(empty report)'}\n\n"
        f"## Evidence: tool calls\n{_tool_lines(tool_log)}\n\n"
        f"## Evidence: files changed\n{_file_sections(files_changed, workspace)}\n\n"
        f"## Automatic checks\n{checks}"
    )
