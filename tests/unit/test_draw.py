"""`orchestrate graph`: LangGraph's own drawing of the whole orchestration (run graph, agent loop, review
branch), Send targets registered, offline in every format, and a clear error when a format's library is
missing. The Mermaid snapshot catches any silent change to the graph's shape."""

from __future__ import annotations

import importlib
import os
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from orchestrator.agent_spec import AgentSpec
from orchestrator.cli import app
from orchestrator.errors import UserError
from orchestrator.graphs.draw import CAPTIONS, choose_format, draw, pieces
from orchestrator.loader import load_agents
from tests.snapshots import assert_snapshot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

EDGES = {  # (source, target, conditional): conditional edges and Sends are dotted in every format
    "run graph": {
        ("__start__", "route", False),
        ("route", "ml-engineer", True),
        ("route", "senior-ml-engineer", True),
        ("ml-engineer", "__end__", False),
        ("senior-ml-engineer", "__end__", False),
    },
    "agent loop": {
        ("__start__", "model", False),
        ("model", "tools", True),
        ("model", "delegate", True),  # the Send target: drawn only because it is registered
        ("model", "__end__", True),
        ("tools", "model", False),
        ("delegate", "model", False),
    },
    "review branch": {
        ("__start__", "work", False),
        ("work", "review", False),
        ("review", "work", True),
        ("review", "__end__", True),
    },
}


@pytest.fixture
def agents(tmp_path: Path) -> Mapping[str, AgentSpec]:
    """The bundled agents only (no user or project agents): what a fresh `orchestrate graph` draws."""
    return load_agents([], cwd=tmp_path, home=tmp_path).agents


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _pygraphviz_or_skip() -> None:
    """CI installs pygraphviz (the graph extra), so there a missing one fails instead of skipping."""
    if os.environ.get("CI"):
        importlib.import_module("pygraphviz")
    else:
        pytest.importorskip("pygraphviz", reason="png/svg need pygraphviz: pip install 'orchestrate[graph]'")


def test_mermaid_matches_snapshot(agents: Mapping[str, AgentSpec]) -> None:
    assert_snapshot("graph.mmd", draw(agents, "mermaid"))


def test_three_pieces_with_every_edge_and_send_target(agents: Mapping[str, AgentSpec]) -> None:
    drawn = {title: {(e.source, e.target, e.conditional) for e in graph.edges} for title, graph in pieces(agents)}
    assert drawn == EDGES


def test_mermaid_titles_each_piece_as_a_subgraph(agents: Mapping[str, AgentSpec]) -> None:
    mermaid = draw(agents, "mermaid")
    assert [line.strip() for line in mermaid.splitlines() if line.strip().startswith("subgraph")] == [
        f"subgraph {title}" for title in CAPTIONS
    ]


def test_ascii_draws_each_piece_and_lists_the_edges_its_layout_hides(agents: Mapping[str, AgentSpec]) -> None:
    text = draw(agents, "ascii")
    for title, caption in CAPTIONS.items():
        assert f"== {title}: {caption} ==" in text
    assert "  tools --> model" in text and "  review -.-> work" in text
    assert "| delegate |" in text and "| review |" in text


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_image_is_valid(agents: Mapping[str, AgentSpec], fmt: str) -> None:
    _pygraphviz_or_skip()
    image = draw(agents, "png" if fmt == "png" else "svg")
    if fmt == "png":
        assert image.startswith(PNG_MAGIC) and image[12:16] == b"IHDR"
        width, height = struct.unpack(">II", image[16:24])
        assert width > 0 and height > 0
    else:
        root = ElementTree.fromstring(image)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        text = " ".join(root.itertext())
        assert all(f"{title}: {caption}" in text for title, caption in CAPTIONS.items())
        assert "delegate" in text and "review" in text


@pytest.mark.parametrize(("fmt", "package"), [("png", "pygraphviz"), ("svg", "pygraphviz"), ("ascii", "grandalf")])
def test_missing_library_names_the_package(
    agents: Mapping[str, AgentSpec], monkeypatch: pytest.MonkeyPatch, fmt: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # import now raises ImportError
    with pytest.raises(UserError, match=rf"--format {fmt} needs {package}: pip install 'orchestrate\[graph\]'"):
        draw(agents, fmt)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("fmt", "output", "chosen"),
    [
        (None, None, "mermaid"),
        (None, "g.PNG", "png"),
        (None, "g.svg", "svg"),
        (None, "g.txt", "ascii"),
        (None, "g.mmd", "mermaid"),
        ("ascii", "g.png", "ascii"),
    ],
)
def test_format_comes_from_the_flag_else_the_file_suffix(fmt: str | None, output: str | None, chosen: str) -> None:
    assert choose_format(fmt, Path(output) if output else None) == chosen


def test_cli_prints_the_snapshot_mermaid(cli: CliRunner) -> None:
    done = cli.invoke(app, ["graph"])
    assert done.exit_code == 0, done.output
    assert_snapshot("graph.mmd", done.stdout)


def test_cli_writes_ascii_to_the_output_file(cli: CliRunner, tmp_path: Path) -> None:
    done = cli.invoke(app, ["graph", "--format", "ascii", "-o", str(tmp_path / "g.out")])
    assert done.exit_code == 0, done.output
    assert done.stdout == "" and "== review branch" in (tmp_path / "g.out").read_text()


def test_cli_images_by_suffix_and_to_a_pipe(cli: CliRunner, tmp_path: Path) -> None:
    _pygraphviz_or_skip()
    done = cli.invoke(app, ["graph", "-o", str(tmp_path / "g.svg")])
    assert done.exit_code == 0, done.output
    assert b"<svg" in (tmp_path / "g.svg").read_bytes()
    piped = cli.invoke(app, ["graph", "--format", "png"])  # the runner's stdout is not a terminal
    assert piped.exit_code == 0 and piped.stdout_bytes.startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["graph", "--format", "gif"], "--format must be one of mermaid, ascii, png, svg, not 'gif'"),
        (["graph", "-o", "/nonexistent/dir/g.mmd"], "--output /nonexistent/dir/g.mmd: No such file or directory"),
    ],
)
def test_cli_bad_input_names_the_flag(cli: CliRunner, args: list[str], message: str) -> None:
    done = cli.invoke(app, args)
    assert done.exit_code == 2
    assert message in " ".join(done.stderr.split())
