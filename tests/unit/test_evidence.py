"""What the reviewer reads about a subagent's work: file states, tool calls, and the deterministic check."""

from __future__ import annotations

from pathlib import Path

from orchestrator.graphs.evidence import missing_work, review_request
from orchestrator.graphs.state import Brief, ToolEvent


def brief(prompt: str) -> Brief:
    return Brief(
        call_id="c1", agent="ml-engineer", description="design doc", prompt=prompt,
        parent="senior-ml-engineer", parent_model="opus", depth=1, briefs=[], position=0,
    )  # fmt: skip


def event(tool: str, ok: bool, path: str, result: str = "") -> ToolEvent:
    return ToolEvent(tool=tool, args=f"file_path={path!r}", ok=ok, result=result, path=path)


def test_absolute_paths_inside_the_workspace_count_as_the_workspace_files(tmp_path: Path) -> None:
    (tmp_path / "design.md").write_text("# Design\n")
    work = brief(f"Create {tmp_path}/design.md and {tmp_path}/plan.md")
    problems = missing_work(work, f"Wrote {tmp_path}/design.md and {tmp_path}/plan.md.", ["design.md"], tmp_path)
    assert problems == ["the report mentions plan.md, but no such file exists in the workspace"]


def test_a_required_file_that_was_neither_made_nor_claimed_is_a_problem(tmp_path: Path) -> None:
    assert missing_work(brief("Create out.csv"), "Done.", [], tmp_path) == [
        "the brief asks for out.csv, but it was not created"
    ]


def test_a_failed_call_on_a_file_written_later_is_marked_moot(tmp_path: Path) -> None:
    (tmp_path / "design.md").write_text("# Design\n\n## Components\n")
    log = [
        event("Read", False, "design.md", "Error: File does not exist: design.md"),
        event("Read", False, "other.md", "Error: File does not exist: other.md"),
        event("Write", True, "design.md", "Created file design.md (3 lines)."),
    ]
    text = review_request(brief("Create design.md"), "Wrote it.", log, ["design.md"], workspace=tmp_path, problems=[])
    lines = text.splitlines()
    assert lines[lines.index("## Evidence: tool calls, in order") + 1 :][:3] == [
        "1. Read(file_path='design.md') -> failed, before a later call wrote the file (moot now)",
        "2. Read(file_path='other.md') -> ERROR: Error: File does not exist: other.md",
        "3. Write(file_path='design.md') -> ok: Created file design.md (3 lines).",
    ]
    assert "### design.md (exists, 24 bytes, 3 lines now)" in lines
    assert text.endswith(
        "## Automatic checks\n- design.md (the brief asks for it): exists, 24 bytes, 3 lines\n"
        "- no missing files (whether the content meets the brief is yours to judge)"
    )


def test_the_checks_state_a_missing_or_empty_required_file(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_text("")
    work = brief("Create empty.md and save missing.md")
    problems = missing_work(work, "Done.", ["empty.md"], tmp_path)
    text = review_request(work, "Done.", [], ["empty.md"], workspace=tmp_path, problems=problems)
    assert text.endswith(
        "- empty.md (the brief asks for it): exists, but is empty (0 bytes)\n"
        "- missing.md (the brief asks for it): does not exist\n"
        "- problem: the brief asks for missing.md, but it was not created"
    )


def test_a_long_file_is_shown_in_part_with_the_headings_left_out(tmp_path: Path) -> None:
    body = ["# Design", *[f"line {n}" for n in range(200)], "## Milestones", "- week 1", "## Risks", "- latency"]
    (tmp_path / "design.md").write_text("\n".join(body) + "\n")
    text = review_request(brief("Create design.md"), "Done.", [], ["design.md"], workspace=tmp_path, problems=[])
    assert "### design.md (exists, 1741 bytes, 205 lines now)" in text
    assert "line 118\n... (truncated: 85 more lines; headings further on: ## Milestones | ## Risks)" in text
    assert "line 119" not in text


def test_a_long_tool_log_shows_its_latest_calls(tmp_path: Path) -> None:
    log = [event("Read", True, f"f{n}.md", "ok") for n in range(1, 16)]
    text = review_request(brief("Summarise"), "Done.", log, [], workspace=tmp_path, problems=[])
    lines = text.splitlines()
    start = lines.index("## Evidence: tool calls, in order") + 1
    assert lines[start : start + 2] == ["(calls 1-3 omitted)", "4. Read(file_path='f4.md') -> ok: ok"]
    assert "15. Read(file_path='f15.md') -> ok: ok" in lines
