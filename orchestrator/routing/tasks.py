"""Task text as the router accepts it: one task checked, or a task file read line by line.

Both name what is at fault: the argument (TASK) or FILE:LINE, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from orchestrator.errors import UserError

__all__ = ["MAX_TASK_CHARS", "check_task", "iter_task_lines"]

MAX_TASK_CHARS = 20_000
"""A task longer than this (about 5k tokens) is a document, not a task: refuse rather than guess."""


def check_task(task: object, argument: str = "TASK") -> str:
    """Refuse what cannot be routed, naming the argument (or FILE:LINE) at fault."""
    if not isinstance(task, str):
        raise UserError(f"{argument}: expected text, got {type(task).__name__}")
    if bad := next((i for i, ch in enumerate(task) if "\ud800" <= ch <= "\udfff"), None):
        raise UserError(f"{argument}: not valid UTF-8 (an undecodable byte at character {bad + 1})")
    if not task.strip():
        raise UserError(f"{argument}: the task is empty")
    if len(task) > MAX_TASK_CHARS:
        raise UserError(f"{argument}: the task is {len(task):,} characters; the limit is {MAX_TASK_CHARS:,}")
    return task


def iter_task_lines(lines: Iterable[bytes | str], source: str) -> Iterator[tuple[int, str]]:
    """(line number, task) for each non-blank line; UserError names FILE:LINE for a bad one."""
    found = False
    for number, raw in enumerate(lines, start=1):
        text = _decode(raw, source, number).strip()
        if number == 1:
            text = text.removeprefix("\ufeff").strip()
        if text:
            found = True
            yield number, check_task(text, f"{source}:{number}")
    if not found:
        raise UserError(f"{source}: no tasks (every line is blank)")


def _decode(raw: bytes | str, source: str, number: int) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        raise UserError(f"{source}:{number}: not valid UTF-8 (byte 0x{bad:02x} at column {exc.start + 1})") from None
