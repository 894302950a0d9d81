"""Reading file paths out of briefs and reports, shared by the review's evidence check and the local adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.file_mentions import in_workspace, mentioned_paths, requested_files, same_file


@pytest.mark.parametrize(
    ("request_text", "files"),
    [
        ("Create rag_config.yaml: a YAML config with chunk sizes.", ["rag_config.yaml"]),
        ("Create a Python script named `src/app.py` containing main().", ["src/app.py"]),
        ("Create /tmp/ws/pipeline.py with load() and query().", ["/tmp/ws/pipeline.py"]),
        ("Write the results to out.csv and save ./notes.md.", ["out.csv", "notes.md"]),
        (
            "Read data/train.csv. Then create rag_config.yaml and write the loader to src/load.py.",
            ["rag_config.yaml", "src/load.py"],
        ),
        ("Explain what train.py does.", []),
        ("design a RAG pipeline", []),
    ],
)
def test_requested_files_are_the_paths_a_request_asks_to_make(request_text: str, files: list[str]) -> None:
    assert requested_files(request_text) == files


def test_paths_inside_the_workspace_read_as_workspace_relative(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    text = f"Create {ws}/docs/design.md, then write ./notes.md and /etc/hosts.txt."
    assert requested_files(text, ws) == ["docs/design.md", "notes.md", "/etc/hosts.txt"]
    assert mentioned_paths(f"Wrote {ws}/a.py and a.py", ws) == ["a.py"]
    assert in_workspace(str(ws.resolve() / "b.md"), ws) == "b.md"
    assert in_workspace("/elsewhere/b.md", ws) == "/elsewhere/b.md"


@pytest.mark.parametrize(
    ("called", "wanted", "same"),
    [
        ("/tmp/ws/app.py", "app.py", True),
        ("./app.py", "app.py", True),
        ("app.py", "/tmp/ws/app.py", True),
        ("myapp.py", "app.py", False),
        ("src/app.py", "tests/app.py", False),
    ],
)
def test_same_file_matches_a_path_argument_to_a_wanted_file(called: str, wanted: str, same: bool) -> None:
    assert same_file(called, wanted) is same
