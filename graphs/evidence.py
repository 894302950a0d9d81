"""Review evidence: what a subagent actually did, next to what it says it did.

The reviewer reads the brief, the subagent's report, its tool calls and the files it changed (with their
current content, read from disk). `missing_work` is a deterministic check on top: files the report claims
or the brief names that were neither changed nor exist. A reviewer's approval in spite of such gaps is
overridden, so a subagent that claims work it never did cannot slip through a lenient review.

The request states facts plainly for small reviewers: each file's state now ("exists, 50 lines"), and a
failed call that a later successful Write of the same file made moot is marked so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from orchestrator.claims import sentences
from orchestrator.file_mentions import mentioned_paths, requested_files
from orchestrator.graphs.state import Brief, ToolEvent
from orchestrator.isolation import Change
from orchestrator.tools.permissions import EDIT_TOOLS

__all__ = ["contradicted_claims", "file_status", "missing_work", "review_request"]

_EXCERPT_LINES = 120
_EXCERPT_CHARS = 4000
_EXCERPT_HEADINGS = 12
_SHOWN_CALLS = 12


def missing_work(
    brief: Brief, report: str, files_changed: Sequence[str], workspace: Path, *, diff: Sequence[Change] | None = None
) -> list[str]:
    """Problems a reviewer must not approve: claimed or required files that are not there. With the branch's
    `diff` (a workspace of its own), a required file the branch did not create or change is missing work,
    whatever exists on disk."""
    changed = set(files_changed)

    def absent(path: str) -> bool:
        return path not in changed and not (workspace / path).exists()

    claimed = mentioned_paths(report, workspace)
    required = requested_files(brief["prompt"], workspace)
    problems = [f"the report mentions {p}, but no such file exists in the workspace" for p in claimed if absent(p)]
    if diff is None:
        return problems + [
            f"the brief asks for {p}, but it was not created" for p in required if absent(p) and p not in claimed
        ]
    touched = {c.path for c in diff if c.status != "deleted"}
    return problems + [
        f"the brief asks for {p}, but this branch did not create or change it" for p in required if p not in touched
    ]


def _excerpt(path: Path) -> str:
    """The head of a file; when that is not all of it, what was left out, with the headings further on."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc.strerror})"
    lines = text.splitlines()
    shown = "\n".join(lines[:_EXCERPT_LINES])[:_EXCERPT_CHARS]
    if len(shown) == len("\n".join(lines)):
        return shown
    rest = lines[shown.count("\n") + 1 :]
    headings = [line.strip() for line in rest if line.startswith("#")][:_EXCERPT_HEADINGS]
    further = f"; headings further on: {' | '.join(headings)}" if headings else ""
    return f"{shown}\n... (truncated: {len(rest)} more lines{further})"


def file_status(path: Path) -> str:
    """What is on disk now, as facts a small reviewer cannot misread: "exists, 740 bytes, 20 lines" /
    "exists, but is empty (0 bytes)" / "does not exist"."""
    if path.is_dir():
        return "is a directory"
    if not path.is_file():
        return "does not exist"
    data = path.read_bytes()
    lines = len(data.splitlines())
    if not data.strip():
        return f"exists, but is empty ({len(data)} bytes)"
    return f"exists, {len(data)} bytes, {lines} line{'s' * (lines != 1)}"


_ABSENT = re.compile(
    r"\b(?:is|was|are|were|seems|looks)\s+(?:still\s+)?empty\b|\bempty file\b|\b(?:does|do|did)\s*(?:not|n't)\s+exist"
    r"|\bmissing\b|\bnot (?:been )?(?:found|created|written)\b|\bno such file\b|\bhas no content\b",
    re.IGNORECASE,
)


def contradicted_claims(feedback: str, workspace: Path) -> list[str]:
    """The review's statements that a file is empty or absent, where the file is there with content: each
    as the fact that overrules it (reviewers of any size misread files now and then)."""
    found = []
    for sentence in sentences(feedback):
        if not _ABSENT.search(sentence):
            continue
        for path in mentioned_paths(sentence, workspace):
            status = file_status(workspace / path)
            if status.startswith("exists, ") and "empty" not in status:
                found.append(f"{path} {status} (the review said: {sentence.strip()[:160]})")
    return list(dict.fromkeys(found))


def _fixed_later(events: Sequence[ToolEvent], index: int) -> bool:
    """A failed call on a file that a later call wrote successfully (e.g. a Read before the file existed)."""
    path = events[index].get("path")
    later = events[index + 1 :]
    return path is not None and any(e["ok"] and e["tool"] in EDIT_TOOLS and e.get("path") == path for e in later)


def _tool_line(events: Sequence[ToolEvent], index: int) -> str:
    event = events[index]
    call = f"{index + 1}. {event['tool']}({event['args']})"
    if event["ok"]:
        return f"{call} -> ok: {event['result']}"
    if _fixed_later(events, index):
        return f"{call} -> failed, before a later call wrote the file (moot now)"
    return f"{call} -> ERROR: {event['result']}"


def _tool_lines(tool_log: Sequence[ToolEvent]) -> str:
    """The calls in order; of a long log, only the latest `_SHOWN_CALLS` (what the work ended with)."""
    if not tool_log:
        return "(none: no tool was called)"
    first = max(0, len(tool_log) - _SHOWN_CALLS)
    omitted = [f"(calls 1-{first} omitted)"] if first else []
    return "\n".join([*omitted, *(_tool_line(tool_log, i) for i in range(first, len(tool_log)))])


def _file_sections(files_changed: Sequence[str], workspace: Path) -> str:
    if not files_changed:
        return "(none: no file was created or changed)"
    return "\n".join(
        f"### {path} ({file_status(workspace / path)} now)\n```\n{_excerpt(workspace / path)}\n```"
        for path in files_changed
    )


def _diff_sections(diff: Sequence[Change], hunks: dict[str, str], workspace: Path) -> str:
    """The branch's diff: an added file as it is now, a modified one as its hunks, a deleted one named."""
    if not diff:
        return "(empty: this branch created, changed and deleted no file)"
    parts = []
    for change in diff:
        if change.status == "added":
            parts.append(f"### {change.path}: added ({file_status(workspace / change.path)} now)\n"
                         f"```\n{_excerpt(workspace / change.path)}\n```")  # fmt: skip
        elif change.status == "modified":
            parts.append(f"### {change.path}: modified ({file_status(workspace / change.path)} now)\n"
                         f"```diff\n{hunks.get(change.path, '')}\n```")  # fmt: skip
        else:
            parts.append(f"### {change.path}: deleted")
    return "\n".join(parts)


def _checks(brief: Brief, workspace: Path, problems: Sequence[str]) -> str:
    """The evidence check's findings, and the state of every file the brief asks for."""
    asked = [
        f"- {p} (the brief asks for it): {file_status(workspace / p)}"
        for p in requested_files(brief["prompt"], workspace)
    ]
    found = [f"- problem: {p}" for p in problems] or [
        "- no missing files (whether the content meets the brief is yours to judge)"
    ]
    return "\n".join([*asked, *found])


def review_request(
    brief: Brief,
    report: str,
    tool_log: Sequence[ToolEvent],
    files_changed: Sequence[str],
    *,
    workspace: Path,
    problems: Sequence[str],
    diff: tuple[Sequence[Change], dict[str, str]] | None = None,
) -> str:
    """The message the reviewer reads; `problems` come from `missing_work`; `diff`: the branch's changes
    against its start and each modified file's hunks (a workspace of its own)."""
    work = (
        f"## The work: files changed, as they are now\n{_file_sections(files_changed, workspace)}"
        if diff is None
        else f"## The work: this branch's diff against its start\n{_diff_sections(*diff, workspace)}"
    )
    return (
        f"## Brief ({brief['description']})\n{brief['prompt']}\n\n{work}\n\n"
        f"## Evidence: tool calls, in order\n{_tool_lines(tool_log)}\n\n"
        f"## Summary from {brief['agent']}\n{report or '(empty)'}\n\n"
        f"## Automatic checks\n{_checks(brief, workspace, problems)}"
    )
