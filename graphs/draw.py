"""The orchestration graph as LangGraph draws it: Mermaid, ASCII, PNG or SVG, all offline.

The review branch is not a node of the run graph: the `delegate` node of the agent loop invokes it, once
per Task call. An xray drawing of the run graph therefore shows the agent loop but hides the work⇄review
loop. So we draw three pieces, each exactly as LangGraph draws it (`get_graph()` of the compiled graph):

    run graph      START → route → <agent> → END      (every agent node runs the agent loop)
    agent loop     model ⇄ tools, model ⇄ delegate     (delegate runs the review branch per Task call)
    review branch  work → review → work | END

Mermaid, PNG and SVG show them as three titled subgraphs of one drawing (`Graph.extend` with a prefix,
the mechanism LangGraph's own xray uses). ASCII draws them one after the other, because grandalf lays out
only one connected piece, and lists each piece's edges under it, because its layout hides the edges that
loop back up. PNG and SVG come from pygraphviz (Graphviz bundled in its wheel), never a web service.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, get_args, overload

from langchain_core.runnables.graph import Graph, LabelsDict

from orchestrator.agent_spec import AgentSpec
from orchestrator.errors import UserError
from orchestrator.graphs.builder import build_graph
from orchestrator.graphs.deps import Deps
from orchestrator.routing import build_router
from orchestrator.tools.registry import ALL_TOOLS

__all__ = ["CAPTIONS", "FORMATS", "Format", "choose_format", "draw", "pieces"]

Format = Literal["mermaid", "ascii", "png", "svg"]
FORMATS: tuple[Format, ...] = get_args(Format)

CAPTIONS: dict[str, str] = {
    "run graph": "route picks one agent; its node runs the agent loop",
    "agent loop": "every agent's conversation; Task calls are parallel Sends to delegate",
    "review branch": "delegate runs this per Task call; work runs the subagent's agent loop",
}
"""Section title → one line on how it connects to the others (ASCII headings, PNG/SVG cluster labels).
The titles are also the Mermaid subgraph names, so they stay short and plain."""

_NEEDS = {"ascii": "grandalf", "png": "pygraphviz", "svg": "pygraphviz"}
_INSTALL = "pip install 'orchestrate[graph]'"


class _DrawOnly:
    """Drawing calls no model; this provider says so if anything tries."""

    name = "draw-only"
    errors: tuple[type[BaseException], ...] = ()

    def chat_model(self, model: str) -> Any:
        raise UserError("drawing the graph needs no model")

    def model_id(self, model: str) -> str:
        return model


def pieces(agents: Mapping[str, AgentSpec]) -> list[tuple[str, Graph]]:
    """The run graph, the agent loop and the review branch, titled, as their compiled graphs draw them.

    Built with the same builders a run uses, so a change to the graph shows up here."""
    provider, router = _DrawOnly(), build_router(agents)
    deps = Deps(agents=dict(agents), provider=provider, router=router, tools=dict(ALL_TOOLS), workspace=Path("."))
    run = build_graph(agents, provider=provider, router=router).compile()
    graphs = [run.get_graph(), deps.agent_loop.get_graph(), deps.branch.get_graph()]
    return list(zip(CAPTIONS, graphs, strict=True))


def choose_format(fmt: str | None, output: Path | None = None) -> Format:
    """The format asked for: `fmt` if given, else what the output file's suffix says (.png, .svg, .txt for
    ascii), else Mermaid. Validated here so the CLI and library callers get the same error."""
    suffixes: dict[str, Format] = {".png": "png", ".svg": "svg", ".txt": "ascii"}
    chosen = fmt if fmt is not None else suffixes.get(output.suffix.lower() if output else "", "mermaid")
    for known in FORMATS:
        if chosen == known:
            return known
    raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {chosen!r}")


@overload
def draw(agents: Mapping[str, AgentSpec], fmt: Literal["mermaid", "ascii"]) -> str: ...
@overload
def draw(agents: Mapping[str, AgentSpec], fmt: Literal["png", "svg"]) -> bytes: ...
@overload
def draw(agents: Mapping[str, AgentSpec], fmt: Format) -> str | bytes: ...
def draw(agents: Mapping[str, AgentSpec], fmt: Format) -> str | bytes:
    """Draw the whole orchestration for these agents. Text formats return str, images bytes.

    Raises UserError naming the package to install when the format's drawing library is missing."""
    fmt = choose_format(fmt)
    library = _require(fmt)
    titled = pieces(agents)
    if fmt == "mermaid":
        return _compose(titled).draw_mermaid()
    if fmt == "ascii":
        return "\n".join(_ascii_section(title, graph) for title, graph in titled)
    return _graphviz(titled, fmt, library)


def _require(fmt: Format) -> ModuleType | None:
    """Import the format's optional drawing library up front, so a missing one is a clear UserError."""
    package = _NEEDS.get(fmt)
    if package is None:
        return None
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise UserError(f"--format {fmt} needs {package}: {_INSTALL}") from exc


def _compose(titled: list[tuple[str, Graph]]) -> Graph:
    """One drawable graph with each piece's nodes prefixed by its title: drawn as titled subgraphs."""
    whole = Graph()
    for title, graph in titled:
        whole.extend(graph, prefix=title)
    return whole


def _ascii_section(title: str, graph: Graph) -> str:
    edges = [f"  {e.source} {'-.->' if e.conditional else '-->'} {e.target}" for e in graph.edges]
    heading = f"== {title}: {CAPTIONS[title]} =="
    return "\n".join([heading, graph.draw_ascii().rstrip(), "edges (-.-> conditional or Send):", *edges, ""])


def _graphviz(titled: list[tuple[str, Graph]], fmt: Literal["png", "svg"], pygraphviz: Any) -> bytes:
    """LangGraph's PNG drawing (its PngDrawer's nodes, edges, clusters and colours), rendered as PNG or SVG
    (PngDrawer itself only writes PNG), with each cluster labelled and each piece's start and end coloured."""
    from langchain_core.runnables.graph_png import PngDrawer

    whole = _compose(titled)
    drawer = PngDrawer(labels=LabelsDict(nodes={n.id: n.name for n in whole.nodes.values()}, edges={}))
    viz = pygraphviz.AGraph(directed=True, nodesep=0.9, ranksep=1.0)
    try:
        drawer.add_nodes(viz, whole)
        drawer.add_edges(viz, whole)
        drawer.add_subgraph(viz, [node.split(":") for node in whole.nodes])
        for title, graph in titled:
            _style_piece(viz, title, graph, drawer.fontname)
        return bytes(viz.draw(format=fmt, prog="dot"))
    finally:
        viz.close()


def _style_piece(viz: Any, title: str, graph: Graph, fontname: str) -> None:
    """What PngDrawer.update_styles does for a single graph, per piece; plus the cluster's title."""
    cluster = viz.get_subgraph(f"cluster_{title}")
    cluster.graph_attr.update(label=f"{title}: {CAPTIONS[title]}", labeljust="l", fontname=fontname)
    if first := graph.first_node():
        viz.get_node(f"{title}:{first.id}").attr.update(fillcolor="lightblue")
    if last := graph.last_node():
        viz.get_node(f"{title}:{last.id}").attr.update(fillcolor="orange")
