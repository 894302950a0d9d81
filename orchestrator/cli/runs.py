"""`orchestrate run / resume / runs / batch`: running tasks, durably, within budgets.

A run's flags are recorded with it (`RunOptions`), so `resume RUN_ID` rebuilds the same orchestrator:
same workspace, agents, provider and permissions; only the budget may be raised.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Optional, cast, get_args

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.prompt import Prompt
from rich.text import Text

from orchestrator.cli.common import AgentsDirOpt, DbOpt, JsonOpt, err, fail, load, styled
from orchestrator.cli.inspect import write_trace_html
from orchestrator.config import Settings
from orchestrator.errors import OrchestrateError, UserError
from orchestrator.graphs.permission_gate import Answer, PermissionRequest
from orchestrator.graphs.progress import ProgressEvent
from orchestrator.ledger import Budget
from orchestrator.providers import ProviderName, select_provider
from orchestrator.routing import iter_task_lines
from orchestrator.run_store import open_store
from orchestrator.runner import Orchestrator, RunResult
from orchestrator.tools.permissions import PermissionMode, PermissionPolicy, load_settings

__all__ = ["batch", "resume", "run", "runs"]

ModeOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(help="default (edits and commands ask), acceptEdits, plan (read-only) or bypassPermissions."),
]
SettingsOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--settings", help="Permission rules (Claude Code settings JSON), on top of WORKSPACE/.claude/settings.json."
    ),
]
ProviderOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(help="anthropic or local (default: anthropic if ANTHROPIC_API_KEY is set)."),
]
WorkspaceOpt = Annotated[Path, typer.Option(help="Directory the agents' file tools work in.")]
NoSandboxOpt = Annotated[
    bool,
    typer.Option(
        "--no-sandbox",
        help="Run Bash without the bubblewrap sandbox (its own PID namespace, read-only root, no network). "
        "The run records the choice.",
    ),
]
MaxCostOpt = Annotated[Optional[float], typer.Option("--max-cost", help="Stop the run at this many USD.")]  # noqa: UP045
DelegationCostOpt = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--max-delegation-cost", help="Stop the run when one delegation reaches this many USD."),
]


@dataclass(frozen=True)
class RunOptions:
    """The flags a run was started with; recorded so `resume` can rebuild the same orchestrator."""

    workspace: str
    agents_dirs: tuple[str, ...] = ()
    provider: str | None = None
    permission_mode: str | None = None
    settings: str | None = None
    no_sandbox: bool = False

    def validate(self) -> None:
        if self.provider not in (None, *get_args(ProviderName)):
            raise UserError(f"--provider must be anthropic or local, not {self.provider!r}")
        if self.permission_mode is not None and self.permission_mode not in get_args(PermissionMode):
            modes = ", ".join(get_args(PermissionMode))
            raise UserError(f"--permission-mode must be one of {modes}, not {self.permission_mode!r}")
        if not Path(self.workspace).is_dir():
            raise UserError(f"--workspace {self.workspace} is not a directory")
        if self.settings is not None and not Path(self.settings).is_file():
            raise UserError(f"--settings {self.settings}: no such file")


def _budget(max_cost: float | None, max_delegation_cost: float | None) -> Budget | None:
    for flag, value in (("--max-cost", max_cost), ("--max-delegation-cost", max_delegation_cost)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserError(f"{flag} must be a positive, finite number of USD, not {value}")
    return Budget(max_cost, max_delegation_cost) if max_cost or max_delegation_cost else None


def _policy(options: RunOptions) -> PermissionPolicy:
    """Rules from the workspace's .claude/settings.json and --settings, read now (the run records them);
    the mode from the flag, else the settings' defaultMode, else "default"."""
    files = [
        Path(options.workspace) / ".claude" / "settings.json",
        *([Path(options.settings)] if options.settings else []),
    ]
    mode = cast(PermissionMode | None, options.permission_mode)
    return PermissionPolicy.of(load_settings(files), mode=mode, sandbox=not options.no_sandbox)


async def _ask_on_terminal(request: PermissionRequest) -> Answer:
    err.print(styled((request["agent"], "bold"), f" wants to run: {request['summary']}"), soft_wrap=True)
    err.print(f"  ({request['reason']}; always = {request['rule']})", style="dim", soft_wrap=True)
    choice = await asyncio.to_thread(Prompt.ask, "Allow?", choices=["y", "n", "always"], default="n", console=err)
    return {"y": "allow", "always": "always"}.get(choice, "deny")  # type: ignore[return-value]


def _orchestrator(
    options: RunOptions, db: str | None, *, interactive: bool, policy: PermissionPolicy | None = None
) -> Orchestrator:
    """The orchestrator for these flags; `policy`: the recorded one, on resume."""
    options.validate()
    agents = load([Path(d) for d in options.agents_dirs])
    settings = Settings.from_env()
    provider, why = select_provider(cast(ProviderName | None, options.provider), settings=settings)
    err.print(why, style="dim")
    return Orchestrator(
        agents, provider=provider, workspace=options.workspace, settings=settings,
        permissions=policy or _policy(options),
        ask=_ask_on_terminal if interactive else None, db=db, options=asdict(options),
    )  # fmt: skip


def _describe(event: ProgressEvent) -> Text | None:
    indent = "  " * event.get("depth", 0)
    agent, detail = (event.get("agent", "?"), "bold"), event.get("detail", "")
    revise = f" - {detail}" if event.get("decision") == "revise" else ""
    lines = {
        "route": ("routed to ", agent, f" (confidence {event.get('confidence', 0):.2f}): {detail}"),
        "delegate": (f"{indent}↳ delegating to ", agent, f": {detail}"),
        "verdict": (f"{indent}  review of {agent[0]}, round {event.get('round')}: ",
                    (str(event.get("decision")), "bold"), revise),
        "returned": (f"{indent}✓ {agent[0]} done ({detail})",),
        "refused": (f"{indent}✗ delegation to {agent[0]} refused: {detail}",),
        "failed": (f"{indent}✗ {agent[0]} failed: {detail}",),
        "turn": (f"{indent}{agent[0]} is working (turn {event.get('round')})",),
        "tool": (f"{indent}  {agent[0]} uses {detail}",),
        "permission": (f"{indent}  permission for {agent[0]}: {detail}{_hint(event)}",),
    }  # fmt: skip
    parts = lines.get(event.get("event", ""))
    return styled(*parts) if parts else None


def _hint(event: ProgressEvent) -> str:
    """For a denied ask: what would allow it (shown to the user; the model never sees it)."""
    return f" ({event['hint']})" if event.get("answer") == "deny" and event.get("hint") else ""


async def _show(items: AsyncIterator[ProgressEvent | RunResult]) -> RunResult:
    async for item in items:
        if isinstance(item, RunResult):
            return item
        if line := _describe(item):
            err.print(line, soft_wrap=True)
    raise OrchestrateError("the run ended without a result")


def _money(usage: dict[str, Any] | Any) -> str:
    parts = ", ".join(f"{agent} ${u['cost_usd']:.4f}" for agent, u in usage.get("by_agent", {}).items())
    return f"${usage.get('cost_usd', 0):.4f}" + (f" ({parts})" if parts else "")


def _report(result: RunResult, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    usage = result.usage
    tokens = f"{usage.get('input_tokens', 0)} input / {usage.get('output_tokens', 0)} output tokens"
    if result.status != "completed":
        err.print(styled((f"run {result.run_id} {result.status}:", "red"), f" {result.error}"), soft_wrap=True)
        err.print(f"spent {_money(usage)}; continue with: orchestrate resume {result.run_id}", soft_wrap=True)
        raise typer.Exit(1)
    if not as_json:
        sys.stdout.write(result.final.rstrip() + "\n")
    err.print(f"run {result.run_id}: {tokens}, {_money(usage)}", style="dim", soft_wrap=True)


def run(
    task: Annotated[str, typer.Argument(help="What the agents should do.")],
    agent: Annotated[Optional[str], typer.Option(help="Skip routing: give the task to this agent.")] = None,  # noqa: UP045
    workspace: WorkspaceOpt = Path("."),
    agents_dir: AgentsDirOpt = None,
    permission_mode: ModeOpt = None,
    settings_file: SettingsOpt = None,
    provider: ProviderOpt = None,
    max_cost: MaxCostOpt = None,
    max_delegation_cost: DelegationCostOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    trace_html: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--trace-html", help="Write the run's HTML trace to FILE when it ends (also when it fails)."),
    ] = None,
    no_sandbox: NoSandboxOpt = False,
) -> None:
    """Run a task: route it, let the agents work and delegate, print the final answer."""
    options = RunOptions(
        str(workspace.resolve()), tuple(str(Path(d).resolve()) for d in agents_dir or []), provider,
        permission_mode, str(settings_file.resolve()) if settings_file else None, no_sandbox,
    )  # fmt: skip
    try:
        budget = _budget(max_cost, max_delegation_cost)
        orchestrator = _orchestrator(options, db, interactive=not as_json and sys.stdin.isatty())
        result = asyncio.run(_show(orchestrator.astream(task, agent=agent, budget=budget)))
    except OrchestrateError as exc:
        fail(str(exc))
    if trace_html is not None:
        write_trace_html(orchestrator.store, result.run_id, trace_html)
    _report(result, as_json)


def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue (see `orchestrate runs`).")],
    max_cost: MaxCostOpt = None,
    max_delegation_cost: DelegationCostOpt = None,
    settings_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--settings", help="Read the permission rules again, from the workspace and this file."),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue an interrupted, failed or budget-stopped run where it stopped, with the permission rules
    it recorded when it started (unless --settings is given again)."""
    try:
        with open_store(db) as store:
            record = store.run(run_id)
        fields = {k: v for k, v in record.options.items() if k in RunOptions.__dataclass_fields__}
        options = RunOptions(**{**fields, "agents_dirs": tuple(fields.get("agents_dirs", ()))})
        recorded = record.options.get("permissions")
        policy = None
        if settings_file is not None:
            options = replace(options, settings=str(settings_file.resolve()))
        elif isinstance(recorded, dict):
            policy = PermissionPolicy.from_record(recorded)
        orchestrator = _orchestrator(options, db, interactive=not as_json and sys.stdin.isatty(), policy=policy)
        budget = _budget(max_cost, max_delegation_cost)
        result = asyncio.run(_show(orchestrator.aresume(run_id, budget=budget)))
    except OrchestrateError as exc:
        fail(str(exc))
    _report(result, as_json)


def runs(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List recent runs: id, status, cost, when, task."""
    try:
        with open_store(db) as store:
            records = store.runs()
    except UserError as exc:
        fail(str(exc))
    if as_json:
        rows = [
            {"run_id": r.run_id, "task": r.task, "status": r.status, "started": r.started, "cost_usd": r.cost_usd}
            for r in records
        ]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for r in records:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started))
        sys.stdout.write(f"{r.run_id}\t{r.status}\t${r.cost_usd:.4f}\t{started}\t{r.task[:80]}\n")


async def _run_batch(orchestrator: Orchestrator, tasks: list[str], concurrency: int) -> list[RunResult]:
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        bar = progress.add_task("tasks", total=len(tasks))
        return await orchestrator.abatch(tasks, max_concurrency=concurrency, on_result=lambda _: progress.advance(bar))


def batch(
    file: Annotated[Path, typer.Argument(help="A file with one task per line (blank lines skipped).")],
    max_concurrency: Annotated[int, typer.Option(help="How many runs at once.")] = 4,
    workspace: WorkspaceOpt = Path("."),
    agents_dir: AgentsDirOpt = None,
    permission_mode: ModeOpt = None,
    provider: ProviderOpt = None,
    db: DbOpt = None,
    no_sandbox: NoSandboxOpt = False,
) -> None:
    """Run many tasks, each its own resumable run; one JSON line per run on stdout."""
    options = RunOptions(
        str(workspace.resolve()), tuple(str(Path(d).resolve()) for d in agents_dir or []), provider, permission_mode,
        no_sandbox=no_sandbox,
    )  # fmt: skip
    try:
        if max_concurrency < 1:
            raise UserError(f"--max-concurrency must be at least 1, not {max_concurrency}")
        tasks = [task for _, task in iter_task_lines(file.read_bytes().splitlines(), str(file))]
        orchestrator = _orchestrator(options, db, interactive=False)
        results = asyncio.run(_run_batch(orchestrator, tasks, max_concurrency))
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    except OrchestrateError as exc:
        fail(str(exc))
    for result in results:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    if any(r.status != "completed" for r in results):
        raise typer.Exit(1)
