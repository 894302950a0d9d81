"""What the permission prompt shows before the user answers: the command, the file to write, the edit."""

from __future__ import annotations

from orchestrator.graphs.permission_gate import preview_call


def test_bash_shows_the_command() -> None:
    assert preview_call("Bash", {"command": "git push --force"}) == "git push --force"


def test_write_shows_size_and_first_lines() -> None:
    content = "".join(f"line {n}\n" for n in range(1, 21))
    preview = preview_call("Write", {"file_path": "notes.md", "content": content})
    lines = preview.splitlines()
    assert lines[0] == f"notes.md: {len(content)} bytes, 20 lines"
    assert lines[1:13] == [f"line {n}" for n in range(1, 13)] and lines[-1] == "…"


def test_edit_shows_a_diff() -> None:
    preview = preview_call("Edit", {"file_path": "a.py", "old_string": "x = 1\ny = 2", "new_string": "x = 1\ny = 3"})
    assert preview.splitlines()[-2:] == ["-y = 2", "+y = 3"] and "--- a.py" in preview
