"""`orchestrate run / resume / runs / batch`: running tasks, durably, within budgets.

A run's flags are recorded with it (`RunOptions`), so `resume RUN_ID` rebuilds the same orchestrator:
same workspace, agents, provider and permissions; only the budget may be raised.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar, cast, get_args

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
from orchestrator.pricing import TokenCounts
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
    typer.Option(
        help="anthropic, openai (any OpenAI-compatible server: OPENAI_BASE_URL) or local "
        "(default: anthropic if ANTHROPIC_API_KEY is set, else local)."
    ),
]
WorkspaceOpt = Annotated[Path, typer.Option(help="Directory the agents' file tools work in.")]
TimeoutOpt = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--timeout", help="Seconds one model request may take before it fails (default 120)."),
]
NoSandboxOpt = Annotated[
    bool,
    typer.Option(
        "--no-sandbox",
        help="Run Bash without the bubblewrap sandbox (its own PID namespace, read-only root, no network). "
        "The run records the choice.",
    ),
]
MaxCostOpt = Annotated[Optional[float], typer.Option("--max-cost", help="Stop the run at this many USD.")]  # noqa: UP045
MergeOpt = Annotated[
    str,
    typer.Option(
        "--merge",
        help="Which subagent branches merge into the workspace: approved (default) or unapproved (all of them).",
    ),
]
KeepBranchesOpt = Annotated[
    bool, typer.Option("--keep-branches", help="Keep each subagent's branch after it merged (see `branches`).")
]
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
    timeout: float | None = None
    merge: str = "approved"
    keep_branches: bool = False

    def validate(self) -> None:
        if self.merge not in ("approved", "unapproved"):
            raise UserError(f"--merge must be approved or unapproved, not {self.merge!r}")
        if self.provider not in (None, *get_args(ProviderName)):
            raise UserError(f"--provider must be anthropic, openai or local, not {self.provider!r}")
        if self.permission_mode is not None and self.permission_mode not in get_args(PermissionMode):
            modes = ", ".join(get_args(PermissionMode))
            raise UserError(f"--permission-mode must be one of {modes}, not {self.permission_mode!r}")
        if not Path(self.workspace).is_dir():
            raise UserError(f"--workspace {self.workspace} is not a directory")
        if self.settings is not None and not Path(self.settings).is_file():
            raise UserError(f"--settings {self.settings}: no such file")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise UserError(f"--timeout must be a positive number of seconds, not {self.timeout}")


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


_ANSWERS: dict[str, Answer] = {
    "y": "allow", "yes": "allow", "n": "deny", "no": "deny", "": "deny", "a": "always", "always": "always"
}  # fmt: skip


async def _ask_on_terminal(request: PermissionRequest) -> Answer:
    """Show what would happen and ask: y/yes, n/no (the default), a/always (this exact rule, this run)."""
    err.print(styled((request["agent"], "bold"), f" wants to run {request['tool']}:"), soft_wrap=True)
    for line in request.get("preview", request["summary"]).splitlines():
        err.print(f"    {line}", soft_wrap=True)
    err.print(f"  ({request['reason']})", style="dim", soft_wrap=True)
    err.print(f"  always = allow {request['rule']} for the rest of this run", style="dim", soft_wrap=True)
    with _WAITING[-1].paused() if _WAITING else nullcontext():
        while True:
            question = Text("Allow? [y/N/a]")  # Text: rich would read "[y/N/a]" as markup
            choice = await asyncio.to_thread(Prompt.ask, question, console=err, default="", show_default=False)
            if choice.strip().lower() in _ANSWERS:
                return _ANSWERS[choice.strip().lower()]
            err.print("answer y (yes), n (no) or a (always)")


def _orchestrator(
    options: RunOptions, db: str | None, *, interactive: bool, policy: PermissionPolicy | None = None
) -> Orchestrator:
    """The orchestrator for these flags; `policy`: the recorded one, on resume."""
    options.validate()
    agents = load([Path(d) for d in options.agents_dirs])
    settings = Settings.from_env()
    if options.timeout is not None:
        settings = replace(settings, request_timeout_s=options.timeout)
    settings = replace(settings, merge_unapproved=options.merge == "unapproved", keep_branches=options.keep_branches)
    provider, why = select_provider(cast(ProviderName | None, options.provider), settings=settings)
    err.print(why, style="dim")
    return Orchestrator(
        agents, provider=provider, workspace=options.workspace, settings=settings,
        permissions=policy or _policy(options),
        ask=_ask_on_terminal if interactive else None, db=db, options=asdict(options),
    )  # fmt: skip


class _Printer:
    """Progress lines on stderr. Lines of parallel juniors are told apart by their delegation's short id
    and description; refused, denied and unapproved work prints with a ✗."""

    def __init__(self) -> None:
        self.delegations: dict[str, str] = {}

    def label(self, event: ProgressEvent) -> str:
        path = str(event.get("delegation") or "")
        call_id = path.rstrip("/").rsplit("/", 1)[-1] if path else str(event.get("call_id", ""))
        if event.get("event") == "delegate":
            self.delegations[call_id] = str(event.get("detail", ""))
        description = self.delegations.get(call_id, str(event.get("description", "")))
        return f"[{call_id[-6:]} {description[:32]}] " if call_id and description else ""

    def line(self, event: ProgressEvent) -> Text | None:
        kind = event.get("event", "")
        indent, tag = "  " * event.get("depth", 0), self.label(event) if kind != "route" else ""
        agent, detail = (event.get("agent", "?"), "bold"), event.get("detail", "")
        name = agent[0]
        revise = f" - {detail}" if event.get("decision") in ("revise", "unreadable") else ""
        unapproved = f"✗ {name} not approved after {event.get('round')} rounds: {event.get('reason', '')}"
        if detail == "unreadable":
            unapproved = f"✗ {name} not approved: {event.get('reason', '')}"
        merges = {"merged": ", merged", "not merged": "; its branch is kept, not merged"}
        merge = merges.get(str(event.get("merge")), "")
        approved = f"✓ {name} done (approved{merge})"
        if event.get("merge") == "conflict":
            approved = f"✗ {name} approved, but its branch conflicts with the workspace: nothing of it landed"
        lines = {
            "route": ("routed to ", agent, f" (confidence {event.get('confidence', 0):.2f}): {detail}"),
            "delegate": (f"{indent}↳ {tag}delegating to ", agent),
            "verdict": (f"{indent}  {tag}review of {name}, round {event.get('round')}: ",
                        (str(event.get("decision")), "bold"), revise),
            "returned": (f"{indent}{tag}" + (approved if detail == "approved" else unapproved + merge),),
            "refused": (f"{indent}{tag}✗ delegation to {name} refused: {detail}",),
            "failed": (f"{indent}{tag}✗ {name} failed: {detail}",),
            "turn": (f"{indent}{tag}{name} is working (turn {event.get('round')})",),
            "tool": (f"{indent}  {tag}{name} uses {detail}",),
            "denied": (f"{indent}  {tag}✗ {name}: {detail} refused: {event.get('reason', '')}",),
            "permission": (f"{indent}  {tag}permission for {name}: {detail}{_hint(event)}",),
        }  # fmt: skip
        parts = lines.get(kind)
        return styled(*parts) if parts else None


def _hint(event: ProgressEvent) -> str:
    """For a denied ask: what would allow it (shown to the user; the model never sees it)."""
    return f" ({event['hint']})" if event.get("answer") == "deny" and event.get("hint") else ""


class _Waiting:
    """On a terminal, a status line with the time since the last event (a long model call shows it is
    alive); elsewhere nothing."""

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.what = "starting"
        self._status = err.status(Text(self.what)) if err.is_terminal else None

    def saw(self, event: ProgressEvent) -> None:
        self.since = time.monotonic()
        if event.get("event") == "turn":
            self.what = f"{event.get('agent')} is thinking (turn {event.get('round')})"
        elif event.get("event") == "tool":
            self.what = f"{event.get('agent')} runs {event.get('detail')}"
        elif event.get("event") == "text":
            self.what = f"{event.get('agent')} is writing"

    async def tick(self) -> None:
        while self._status is not None:
            self._status.update(Text(f"{self.what} · {time.monotonic() - self.since:.0f} s"))
            await asyncio.sleep(1)

    def __enter__(self) -> _Waiting:
        if self._status is not None:
            self._status.start()
        _WAITING.append(self)
        return self

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Off while the user answers a question (a live status would draw over the prompt)."""
        if self._status is not None:
            self._status.stop()
        try:
            yield
        finally:
            if self._status is not None:
                self._status.start()

    def __exit__(self, *exc_info: object) -> None:
        _WAITING.remove(self)
        if self._status is not None:
            self._status.stop()
            self._status = None


_WAITING: list[_Waiting] = []
"""The status line of the run being shown, if any (paused while a permission is asked)."""


class _LiveAnswer:
    """On a terminal, the top agent's reply streams to stdout as the model writes it, so the final answer
    is read while it is written (and is not printed again at the end); piped stdout gets it once, whole."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.turn: object = None
        self.last = ""
        """What the top agent's latest turn streamed so far."""

    def saw(self, event: ProgressEvent) -> None:
        if not self.enabled or event.get("event") != "text" or event.get("delegation"):
            return
        if event.get("round") != self.turn:
            if self.last and not self.last.endswith("\n\n"):
                sys.stdout.write("\n" if self.last.endswith("\n") else "\n\n")
            self.turn, self.last = event.get("round"), ""
        text = str(event.get("text", ""))
        self.last += text
        sys.stdout.write(text)
        sys.stdout.flush()

    def shown(self, final: str) -> bool:
        """Whether `final` is what the last streamed turn already showed."""
        return self.enabled and bool(final.strip()) and final.strip() == self.last.strip()


async def _show(items: AsyncIterator[ProgressEvent | RunResult], answer: _LiveAnswer) -> RunResult:
    printer = _Printer()
    with _Waiting() as waiting:
        ticker = asyncio.ensure_future(waiting.tick())
        try:
            async for item in items:
                if isinstance(item, RunResult):
                    return item
                waiting.saw(item)
                answer.saw(item)
                if line := printer.line(item):
                    err.print(line, soft_wrap=True)
        finally:
            ticker.cancel()
    raise OrchestrateError("the run ended without a result")


EXIT_CODES: dict[str, int] = {"completed": 0, "failed": 1, "budget_exceeded": 1, "incomplete": 3}
"""`orchestrate run` / `resume`: 0 completed, 3 incomplete (finished, with issues), 1 failed or stopped at a
budget (resumable), 2 bad input, 130 / 143 interrupted by SIGINT / SIGTERM (resumable)."""


def _money(usage: dict[str, Any] | Any) -> str:
    parts = ", ".join(f"{agent} ${u['cost_usd']:.4f}" for agent, u in usage.get("by_agent", {}).items())
    return f"${usage.get('cost_usd', 0):.4f}" + (f" ({parts})" if parts else "")


def _resume_hint(result: RunResult, budget: Budget | None) -> str:
    """The exact command that continues the run (with a cap that lets it go on, after a budget stop)."""
    command = f"orchestrate resume {result.run_id}"
    if result.status != "budget_exceeded":
        return command
    spent = float(result.usage.get("cost_usd", 0))
    cap = budget.max_cost if budget and budget.max_cost else spent
    more = f" --max-cost {max(cap * 2, spent + 0.01):.2f}"
    if budget and budget.max_delegation_cost and "delegation" in (result.error or ""):
        more = f" --max-delegation-cost {budget.max_delegation_cost * 2:.2f}"
    return command + more


def _report(result: RunResult, as_json: bool, budget: Budget | None = None, answer: _LiveAnswer | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    usage = result.usage
    if result.status in ("failed", "budget_exceeded"):
        err.print(styled((f"run {result.run_id} {result.status}:", "red"), f" {result.error}"), soft_wrap=True)
        err.print(f"spent {_money(usage)}; continue with: {_resume_hint(result, budget)}", soft_wrap=True)
        raise typer.Exit(EXIT_CODES[result.status])
    if answer is not None and answer.shown(result.final):
        sys.stdout.write("" if answer.last.endswith("\n") else "\n")
    elif not as_json:
        sys.stdout.write(result.final.rstrip() + "\n")
    if result.files_changed:
        err.print(f"files changed: {', '.join(result.files_changed)}", soft_wrap=True)
    for issue in result.issues:
        err.print(styled(("✗ ", "red"), f"{issue['kind']}: {issue['agent']}: {issue['what']}: {issue['reason']}"),
                  soft_wrap=True)  # fmt: skip
    if result.status == "incomplete":
        err.print(styled((f"run {result.run_id} incomplete:", "yellow"), f" {len(result.issues)} issue(s)"))
    err.print(
        f"run {result.run_id}: {TokenCounts.of_usage(usage).describe()}, {_money(usage)}", style="dim", soft_wrap=True
    )
    if result.status != "completed":
        raise typer.Exit(EXIT_CODES[result.status])


T = TypeVar("T")


def _until_stopped(coroutine: Coroutine[Any, Any, T], saved: str) -> T:
    """Run to the end; SIGINT or SIGTERM saves the run as interrupted and exits saying how to resume."""
    signum = signal.SIGINT

    async def main() -> T:
        task = asyncio.ensure_future(coroutine)

        def stop(received: signal.Signals) -> None:
            nonlocal signum
            signum = received
            task.cancel()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop, sig)
        return await task

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print(f"interrupted ({signal.Signals(signum).name}): {saved}")
        raise typer.Exit(128 + int(signum)) from None


def _saved(run_id: str) -> str:
    return f"run {run_id} saved; continue with: orchestrate resume {run_id}"


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
    timeout: TimeoutOpt = None,
    merge: MergeOpt = "approved",
    keep_branches: KeepBranchesOpt = False,
) -> None:
    """Run a task: route it, let the agents work and delegate, print the final answer. Exit 0 completed,
    3 incomplete (finished with issues), 1 failed or stopped at a budget, 2 bad input, 130/143 interrupted."""
    options = RunOptions(
        str(workspace.resolve()), tuple(str(Path(d).resolve()) for d in agents_dir or []), provider,
        permission_mode, str(settings_file.resolve()) if settings_file else None, no_sandbox, timeout, merge,
        keep_branches,
    )  # fmt: skip
    try:
        budget = _budget(max_cost, max_delegation_cost)
        orchestrator = _orchestrator(options, db, interactive=not as_json and sys.stdin.isatty())
        run_id = uuid.uuid4().hex[:12]
        answer = _LiveAnswer(not as_json and sys.stdout.isatty())
        result = _until_stopped(
            _show(orchestrator.astream(task, agent=agent, budget=budget, run_id=run_id), answer), _saved(run_id)
        )
    except OrchestrateError as exc:
        fail(str(exc))
    if trace_html is not None:
        write_trace_html(orchestrator.store, result.run_id, trace_html)
    _report(result, as_json, budget, answer)


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
    force: Annotated[
        bool, typer.Option("--force", help="Resume even though another process seems to hold the run.")
    ] = False,
) -> None:
    """Continue an interrupted, failed or budget-stopped run where it stopped, with the permission rules
    it recorded when it started (unless --settings is given again). A run another live process holds is
    refused, naming it, unless --force."""
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
        answer = _LiveAnswer(not as_json and sys.stdout.isatty())
        stream = orchestrator.aresume(run_id, budget=budget, force=force)
        result = _until_stopped(_show(stream, answer), _saved(run_id))
    except OrchestrateError as exc:
        fail(str(exc))
    recorded_budget = Budget(record.options.get("max_cost"), record.options.get("max_delegation_cost"))
    _report(result, as_json, budget or recorded_budget, answer)


def runs(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List recent runs: id, status, cost, when, task."""
    try:
        with open_store(db) as store:
            records = store.runs()
    except UserError as exc:
        fail(str(exc))
    if as_json:
        rows = [
            {"run_id": r.run_id, "task": r.task, "status": r.status, "started": r.started, "cost_usd": r.cost_usd,
             "replay_of": r.options.get("replay_of")}
            for r in records
        ]  # fmt: skip
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for r in records:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started))
        task = f"(replay of {r.options['replay_of']}) {r.task}" if r.options.get("replay_of") else r.task
        sys.stdout.write(f"{r.run_id}\t{r.status}\t${r.cost_usd:.4f}\t{started}\t{task[:80]}\n")


async def _run_batch(
    orchestrator: Orchestrator, tasks: list[str], concurrency: int, budget: Budget | None
) -> list[RunResult]:
    """Each run's JSON line goes out the moment it ends, so a later failure loses nothing finished."""
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        bar = progress.add_task("tasks", total=len(tasks))

        def done(result: RunResult) -> None:
            sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
            progress.advance(bar)

        return await orchestrator.abatch(tasks, max_concurrency=concurrency, on_result=done, budget=budget)


def batch(
    file: Annotated[Path, typer.Argument(help="A file with one task per line (blank lines skipped).")],
    max_concurrency: Annotated[int, typer.Option(help="How many runs at once.")] = 4,
    workspace: WorkspaceOpt = Path("."),
    agents_dir: AgentsDirOpt = None,
    permission_mode: ModeOpt = None,
    provider: ProviderOpt = None,
    db: DbOpt = None,
    no_sandbox: NoSandboxOpt = False,
    timeout: TimeoutOpt = None,
    max_cost: MaxCostOpt = None,
    max_delegation_cost: DelegationCostOpt = None,
) -> None:
    """Run many tasks, each its own resumable run; one JSON line per run on stdout as it ends. Exit code:
    the worst of the runs' (0 all completed, 3 some incomplete, 1 some failed)."""
    options = RunOptions(
        str(workspace.resolve()), tuple(str(Path(d).resolve()) for d in agents_dir or []), provider, permission_mode,
        no_sandbox=no_sandbox, timeout=timeout,
    )  # fmt: skip
    try:
        if max_concurrency < 1:
            raise UserError(f"--max-concurrency must be at least 1, not {max_concurrency}")
        tasks = [task for _, task in iter_task_lines(file.read_bytes().splitlines(), str(file))]
        budget = _budget(max_cost, max_delegation_cost)
        orchestrator = _orchestrator(options, db, interactive=False)
        unfinished = "the unfinished runs are saved as interrupted; `orchestrate runs` lists them, `resume` continues"
        results = _until_stopped(_run_batch(orchestrator, tasks, max_concurrency, budget), unfinished)
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    except OrchestrateError as exc:
        fail(str(exc))
    codes = [EXIT_CODES.get(r.status, 1) for r in results]
    if any(codes):
        raise typer.Exit(1 if 1 in codes else 3)
