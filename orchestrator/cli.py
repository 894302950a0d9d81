"""The `orchestrate` command. Humans get rich progress on stderr; stdout carries the answer or JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional, cast, get_args

import typer
from rich.console import Console
from rich.prompt import Prompt

from orchestrator.config import Settings
from orchestrator.errors import OrchestrateError, RunError, UserError
from orchestrator.graphs.permission_gate import Answer, PermissionRequest
from orchestrator.graphs.progress import ProgressEvent
from orchestrator.loader import AgentLintError, AgentSet, load_agents
from orchestrator.logs import configure_logging
from orchestrator.models import AnthropicProvider, select_provider
from orchestrator.router import RouteDecision, RoutedLine, Router, aroute_lines, build_router, check_task
from orchestrator.runner import Orchestrator, RunResult
from orchestrator.tools.permissions import PermissionMode, PermissionPolicy, load_settings

app = typer.Typer(
    name="orchestrate",
    help="A senior ML agent plans and reviews; junior agents implement. Runs on Claude or local models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)

AgentsDirOpt = Annotated[
    Optional[list[Path]],  # noqa: UP045 - typer needs Optional here
    typer.Option("--agents-dir", help="Extra directory of agent .md files (highest precedence; repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _load(agents_dir: list[Path] | None, *, strict: bool = False) -> AgentSet:
    try:
        return load_agents(agents_dir or [], strict=strict)
    except AgentLintError:
        raise
    except UserError as exc:
        _fail(str(exc))


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error (stderr).")] = "warning",
    log_json: Annotated[bool, typer.Option("--log-json", help="Log as JSON lines.")] = False,
) -> None:
    if log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        _fail(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    configure_logging(json=log_json, level=log_level)


def _describe(event: ProgressEvent) -> str | None:
    indent = "  " * event.get("depth", 0)
    agent, detail = event.get("agent", "?"), event.get("detail", "")
    lines = {
        "route": f"routed to [bold]{agent}[/bold] (confidence {event.get('confidence', 0):.2f}): {detail}",
        "delegate": f"{indent}↳ delegating to [bold]{agent}[/bold]: {detail}",
        "verdict": f"{indent}  review of {agent}, round {event.get('round')}: [bold]{event.get('decision')}[/bold]"
        + (f" - {detail}" if event.get("decision") == "revise" else ""),
        "returned": f"{indent}✓ {agent} done ({detail})",
        "refused": f"{indent}✗ delegation to {agent} refused: {detail}",
        "failed": f"{indent}✗ {agent} failed: {detail}",
        "turn": f"{indent}{agent} is working (turn {event.get('round')})",
        "tool": f"{indent}  {agent} uses {detail}",
        "permission": f"{indent}  permission for {agent}: {detail}",
    }
    return lines.get(event.get("event", ""))


async def _stream(orchestrator: Orchestrator, task: str, agent: str | None, quiet: bool) -> RunResult:
    async for item in orchestrator.astream(task, agent=agent):
        if isinstance(item, RunResult):
            return item
        line = _describe(item)
        if line and not quiet:
            err.print(line, soft_wrap=True)
    raise RunError("the run ended without a result")


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="What the agents should do.")],
    agent: Annotated[Optional[str], typer.Option(help="Skip routing: give the task to this agent.")] = None,  # noqa: UP045
    workspace: Annotated[Path, typer.Option(help="Directory the agents' file tools work in.")] = Path("."),
    agents_dir: AgentsDirOpt = None,
    permission_mode: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="default (edits and commands ask), acceptEdits, plan (read-only) or bypassPermissions."),
    ] = None,
    settings_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--settings",
            help="Permission rules (Claude Code settings JSON), on top of WORKSPACE/.claude/settings.json.",
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(help="anthropic or local (default: anthropic if ANTHROPIC_API_KEY is set)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a task: route it, let the agents work and delegate, print the final answer."""
    if provider not in (None, "anthropic", "local"):
        _fail(f"--provider must be anthropic or local, not {provider!r}")
    if not workspace.is_dir():
        _fail(f"--workspace {workspace} is not a directory")
    agents = _load(agents_dir)
    settings = Settings.from_env()
    try:
        policy = _policy(workspace, settings_file, permission_mode)
        chosen, why = select_provider(provider, settings=settings)  # type: ignore[arg-type]
        err.print(why, style="dim")
        ask = None if as_json or not sys.stdin.isatty() else _ask_on_terminal
        orchestrator = Orchestrator(
            agents, provider=chosen, workspace=workspace, settings=settings, permissions=policy, ask=ask
        )
        result = asyncio.run(_stream(orchestrator, task, agent, quiet=False))
    except OrchestrateError as exc:
        _fail(str(exc))
    _report(result, as_json)


def _policy(workspace: Path, settings_file: Path | None, mode: str | None) -> PermissionPolicy:
    """Rules from the workspace's .claude/settings.json and --settings; the mode from the flag, else the
    settings' defaultMode, else "default"."""
    if mode is not None and mode not in get_args(PermissionMode):
        raise UserError(f"--permission-mode must be one of {', '.join(get_args(PermissionMode))}, not {mode!r}")
    if settings_file is not None and not settings_file.is_file():
        raise UserError(f"--settings {settings_file}: no such file")
    files = [workspace / ".claude" / "settings.json", *([settings_file] if settings_file else [])]
    rules = load_settings(files)
    chosen = cast(PermissionMode, mode or rules.default_mode or "default")
    return PermissionPolicy(mode=chosen, rules=rules)


async def _ask_on_terminal(request: PermissionRequest) -> Answer:
    err.print(f"[bold]{request['agent']}[/bold] wants to run: {request['summary']}", soft_wrap=True)
    err.print(f"  ({request['reason']})", style="dim", soft_wrap=True)
    choice = await asyncio.to_thread(Prompt.ask, "Allow?", choices=["y", "n", "always"], default="n", console=err)
    return {"y": "allow", "always": "always"}.get(choice, "deny")  # type: ignore[return-value]


def _report(result: RunResult, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    if result.status != "completed":
        err.print(f"[red]run {result.run_id} failed:[/red] {result.error}", soft_wrap=True)
        raise typer.Exit(1)
    if not as_json:
        sys.stdout.write(result.final.rstrip() + "\n")
        usage = result.usage
        err.print(
            f"run {result.run_id}: {usage['input_tokens']} input / {usage['output_tokens']} output tokens",
            style="dim",
        )


@app.command("agents")
def agents_command(
    agents_dir: AgentsDirOpt = None,
    as_json: JsonOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Lint: every tolerated oddity is an error.")] = False,
) -> None:
    """List the agents a run can use, with the file each came from."""
    try:
        loaded = _load(agents_dir, strict=strict)
    except AgentLintError as exc:
        for warning in exc.warnings:
            err.print(f"error: {warning}", soft_wrap=True, markup=False)
        _fail(f"{len(exc.warnings)} problem(s) in agent files", 1)
    rows = [{"name": a.name, "model": a.model, "tools": a.tools, "source": str(a.source)} for a in loaded]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for row in rows:
        tools = "all tools" if row["tools"] is None else ", ".join(row["tools"]) or "no tools"
        sys.stdout.write(f"{row['name']}\t{row['model']}\t{tools}\t{row['source']}\n")


async def _route_all(router: Router, task: str | None, file: Path | None) -> list[RoutedLine]:
    if file is not None:
        return [routed async for routed in aroute_lines(router, file.read_bytes().splitlines(), source=str(file))]
    text = check_task(task, "TASK")
    return [RoutedLine(text, await router.aroute(text), 1)]


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
        _fail("give either TASK or --file (not both)")
    agents = _load(agents_dir).agents
    tiebreak = AnthropicProvider(Settings.from_env()) if os.environ.get("ANTHROPIC_API_KEY") else None
    router = build_router(
        agents,
        tiebreak=tiebreak.chat_model("haiku") if tiebreak else None,
        tiebreak_errors=tiebreak.errors if tiebreak else (),
    )
    try:
        routed = asyncio.run(_route_all(router, task, file))
    except OSError as exc:
        _fail(f"--file {file}: {exc.strerror}")
    except UserError as exc:
        _fail(str(exc))
    for line in routed:
        _print_route(line.task, line.decision, as_json)


def _print_route(task: str, decision: RouteDecision, as_json: bool) -> None:
    if as_json:
        row = {
            "task": task,
            "agent": decision.agent,
            "confidence": round(decision.confidence, 4),
            "method": decision.method,
        }
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(f"{decision.agent}\t{decision.confidence:.2f}\t{decision.method}\t{decision.reason}\n")


class _DrawOnly:
    """Drawing the graph calls no model; this provider says so if anything tries."""

    name = "draw-only"
    errors: tuple[type[BaseException], ...] = ()

    def chat_model(self, model: str) -> Any:
        raise UserError("drawing the graph needs no model")


@app.command()
def graph(agents_dir: AgentsDirOpt = None) -> None:
    """Print the orchestration graph as Mermaid."""
    from orchestrator.graphs.builder import build_graph

    built = build_graph(_load(agents_dir).agents, provider=_DrawOnly())
    sys.stdout.write(built.compile().get_graph(xray=True).draw_mermaid())


def _mount_models() -> None:
    from orchestrator._cli_models import models_app

    app.add_typer(models_app, name="models", help="Fetch and list the local models (offline default).")


_mount_models()
