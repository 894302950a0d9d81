"""The Typer app with its small commands (agents, route, graph); the other groups mount onto it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Optional

import typer

from orchestrator.agent_spec import AgentSpec
from orchestrator.cli.common import AgentsDirOpt, JsonOpt, err, fail, load
from orchestrator.config import Settings
from orchestrator.errors import UserError
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.route import tiebreak_ask
from orchestrator.loader import AgentLintError
from orchestrator.logs import configure_logging
from orchestrator.providers import AnthropicProvider
from orchestrator.routing import Ask, RouteDecision, RoutedLine, Router, aroute_lines, build_router, check_task

app = typer.Typer(
    name="orchestrate",
    help="A senior ML agent plans and reviews; junior agents implement. Runs on Claude or local models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error (stderr).")] = "warning",
    log_json: Annotated[bool, typer.Option("--log-json", help="Log as JSON lines.")] = False,
) -> None:
    if log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        fail(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    configure_logging(json=log_json, level=log_level)


@app.command("agents")
def agents_command(
    agents_dir: AgentsDirOpt = None,
    as_json: JsonOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Lint: every tolerated oddity is an error.")] = False,
) -> None:
    """List the agents a run can use, with the file each came from."""
    try:
        loaded = load(agents_dir, strict=strict)
    except AgentLintError as exc:
        for warning in exc.warnings:
            err.print(f"error: {warning}", soft_wrap=True)
        fail(f"{len(exc.warnings)} problem(s) in agent files", 1)
    rows = [{"name": a.name, "model": a.model, "tools": a.tools, "source": str(a.source)} for a in loaded]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for row in rows:
        tools = "all tools" if row["tools"] is None else ", ".join(row["tools"]) or "no tools"
        sys.stdout.write(f"{row['name']}\t{row['model']}\t{tools}\t{row['source']}\n")


async def _route_all(router: Router, task: str | None, file: Path | None, ask: Ask | None) -> list[RoutedLine]:
    if file is not None:
        lines = file.read_bytes().splitlines()
        return [routed async for routed in aroute_lines(router, lines, source=str(file), ask=ask)]
    text = check_task(task, "TASK")
    return [RoutedLine(text, await router.aroute(text, ask=ask), 1)]


def _tiebreak(agents: Mapping[str, AgentSpec], router: Router) -> Ask | None:
    """With a key, unsure tasks go to Claude's cheapest model, through the graph's one model-call site."""
    if not os.environ.get("ANTHROPIC_API_KEY"):
        return None
    settings = Settings.from_env()
    provider = AnthropicProvider(settings)
    deps = Deps(agents=agents, provider=provider, router=router, tools={}, workspace=Path.cwd(), settings=settings)
    return tiebreak_ask(deps)


@app.command()
def route(
    task: Annotated[Optional[str], typer.Argument(help="The task to route.")] = None,  # noqa: UP045
    file: Annotated[Optional[Path], typer.Option("--file", help="Route every line of this file.")] = None,  # noqa: UP045
    agents_dir: AgentsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print which agent would take a task, how sure the router is, and why. Offline; with
    ANTHROPIC_API_KEY set, unsure tasks get a Haiku tie-break."""
    if (task is None) == (file is None):
        fail("give either TASK or --file (not both)")
    agents = load(agents_dir).agents
    router = build_router(agents)
    try:
        routed = asyncio.run(_route_all(router, task, file, _tiebreak(agents, router)))
    except OSError as exc:
        fail(f"--file {file}: {exc.strerror}")
    except UserError as exc:
        fail(str(exc))
    for line in routed:
        _print_route(line.task, line.decision, as_json)


def _print_route(task: str, decision: RouteDecision, as_json: bool) -> None:
    if as_json:
        row = {
            "task": task,
            "agent": decision.agent,
            "confidence": round(decision.confidence, 4),
            "method": decision.method,
            "reason": decision.reason,
            "candidates": [{"agent": name, "probability": p} for name, p in decision.candidates],
        }
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(f"{decision.agent}\t{decision.confidence:.2f}\t{decision.method}\t{decision.reason}\n")


@app.command()
def graph(
    agents_dir: AgentsDirOpt = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="mermaid, ascii, png or svg (default: from -o's suffix .png/.svg/.txt, else mermaid)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to FILE. Without it, png goes to stdout only when not a terminal."),
    ] = None,
) -> None:
    """Draw the orchestration as LangGraph draws it, offline: the run graph, the agent loop and the review
    branch that its delegate node runs, as three titled sections. png/svg need pygraphviz, ascii grandalf
    (pip install 'orchestrate\\[graph]'; the README's set-up and `make run` include it)."""
    from orchestrator.graphs.draw import choose_format, draw

    try:
        chosen = choose_format(fmt, output)
        if chosen == "png" and output is None and sys.stdout.isatty():
            raise UserError("--format png is binary: give -o FILE or redirect stdout")
        drawing = draw(load(agents_dir).agents, chosen)
    except UserError as exc:
        fail(str(exc))
    data = drawing.encode() if isinstance(drawing, str) else drawing
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        fail(f"--output {output}: {exc.strerror}")


def _mount() -> None:
    from orchestrator.cli.inspect import branches, replay, show
    from orchestrator.cli.local import models_app
    from orchestrator.cli.runs import batch, resume, run, runs

    for command in (run, resume, runs, batch, show, replay, branches):
        app.command()(command)
    app.add_typer(models_app, name="models", help="The local engine and models (offline default).")


_mount()
