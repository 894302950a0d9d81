"""Running the graph: `Orchestrator.run / arun / astream / resume / batch` and the `RunResult`.

Definitions (agent files, the graph) are data built elsewhere; this module owns a run's lifecycle: a run
id bound into every log line, durable checkpoints (SQLite by default) so a crashed, failed or
budget-stopped run resumes where it stopped, permission asks answered and resumed, and the final state
turned into a result priced from the cost ledger.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self, cast

import structlog
from langchain_core.messages import AnyMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.errors import OrchestrateError, RunError, UserError, internal_error
from orchestrator.graphs.builder import build_graph
from orchestrator.graphs.context import RunContext
from orchestrator.graphs.isolated import branches_removed
from orchestrator.graphs.permission_gate import Answer, PermissionRequest
from orchestrator.graphs.progress import ProgressEvent
from orchestrator.graphs.review import final_text
from orchestrator.graphs.state import DelegationRecord, RouteInfo, RunInput
from orchestrator.ledger import Budget, Ledger, delegation_cost, summarize
from orchestrator.loader import AgentSet, agent_mapping, load_agents
from orchestrator.logs import get_logger
from orchestrator.pricing import PriceTable, load_prices
from orchestrator.providers import ModelProvider
from orchestrator.routing import Router, build_router, check_task
from orchestrator.run_events import RunIssue, issues_of, recordable, replayed
from orchestrator.run_store import EventLog, RunStatus, keep_lease, open_store, this_owner
from orchestrator.run_store_pg import PostgresRunStore, postgres_checkpointer
from orchestrator.secrets import mask_secrets
from orchestrator.sqlite_checkpoints import sqlite_checkpointer
from orchestrator.sync_loop import run_sync
from orchestrator.tools.permissions import PermissionMode, PermissionPolicy

__all__ = ["AskHandler", "Orchestrator", "RunResult"]

log = get_logger("orchestrator.run")

AskHandler = Callable[[PermissionRequest], Awaitable[Answer]]
"""Answers a permission ask: "allow" this once, "deny", or "always" (this tool / command for the run)."""

Graph = CompiledStateGraph[Any, Any, Any, Any]


@dataclass(frozen=True)
class RunResult:
    """What a run produced, in the shape `orchestrate run --json` prints.

    `status` tells the truth: `completed` only when the run finished, every delegation was approved and no
    tool call was denied; `incomplete` when it finished but `issues` lists what it could not do; `failed`,
    `budget_exceeded` or `interrupted` when it stopped early (resumable)."""

    run_id: str
    status: RunStatus
    final: str
    route: RouteInfo | None = None
    delegations: tuple[Mapping[str, Any], ...] = ()
    usage: Mapping[str, Any] = field(default_factory=dict)
    """Tokens and cost_usd in total, `by_agent` and `by_model` (from the cost ledger)."""
    error: str | None = None
    issues: tuple[RunIssue, ...] = ()
    """Each unapproved, refused or failed delegation and each denied tool call, with its reason."""
    files_changed: tuple[str, ...] = ()
    """Workspace-relative paths the run's agents created or changed in the workspace (a branch's only once
    it merged)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "route": dict(self.route) if self.route else None,
            "final": self.final,
            "delegations": [dict(d) for d in self.delegations],
            "issues": [dict(i) for i in self.issues],
            "files_changed": list(self.files_changed),
            "usage": dict(self.usage),
            "error": self.error,
        }


class Orchestrator:
    """Runs tasks through the orchestration graph. Build once, run many tasks (also concurrently); `close()`
    (or a `with` / `async with` block) releases the database connection."""

    def __init__(
        self,
        agents: AgentSet | Mapping[str, AgentSpec] | None = None,
        *,
        provider: ModelProvider,
        workspace: Path | str = ".",
        settings: Settings | None = None,
        router: Router | None = None,
        permissions: PermissionPolicy | None = None,
        permission_mode: PermissionMode | None = None,
        ask: AskHandler | None = None,
        db: Path | str | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        prices: PriceTable | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """`workspace`: the existing directory the file tools work in. `permissions`: Claude Code's modes and
        rules (default mode: reads allowed, edits and commands ask); `permission_mode` alone sets the mode
        ("acceptEdits" lets agents write files). `ask` answers those asks; without it every ask is denied
        with a message naming the flag or rule that would allow it. `db`: where checkpoints and run records
        live, a SQLite file or a `postgresql://` URL (default: env ORCHESTRATE_DB, else a per-user SQLite
        file); `checkpointer` replaces the checkpoints. `options`: what `resume` needs to rebuild this
        orchestrator (the CLI records its flags there)."""
        self.agents = agent_mapping(agents if agents is not None else load_agents())
        router = router or build_router(self.agents)
        self.permissions = permissions or PermissionPolicy()
        if permission_mode is not None:
            self.permissions = replace(self.permissions, mode=permission_mode)
        self.provider = provider
        self.workspace = existing_workspace(workspace)
        self.owner = this_owner()
        """Who holds the lease of the runs this orchestrator drives (host:pid)."""
        self.store = open_store(db)
        own_sqlite = checkpointer is None and not isinstance(self.store, PostgresRunStore)
        self.ledger = Ledger(self.store, prices or load_prices(), on_loop=own_sqlite)
        self._graph = build_graph(
            self.agents, provider=provider, workspace=workspace, settings=settings, router=router,
            permissions=self.permissions, ledger=self.ledger,
        ).compile()  # fmt: skip
        self._checkpointer = checkpointer
        self._ask = ask
        self._options = dict(options or {})

    @asynccontextmanager
    async def _compiled(self) -> AsyncIterator[Graph]:
        """The graph with its checkpointer, opened on the running event loop."""
        if self._checkpointer is not None:
            yield self._graph.copy(update={"checkpointer": self._checkpointer})
            return
        if isinstance(self.store, PostgresRunStore):  # checkpoints go where the run records go
            async with postgres_checkpointer(self.store.target) as pg_saver:
                yield self._graph.copy(update={"checkpointer": pg_saver})
            return
        with sqlite_checkpointer(self.store.path) as saver:
            yield self._graph.copy(update={"checkpointer": saver})

    def _input(self, task: str, agent: str | None) -> RunInput:
        check_task(task, "task")  # the same limits on every path: the CLI, batch and the API
        state = RunInput(task=task)
        if agent is not None:
            if agent not in self.agents:
                raise UserError(
                    f"unknown agent {agent!r} (argument agent); available: {', '.join(sorted(self.agents))}"
                )
            state["route"] = RouteInfo(agent=agent, confidence=1.0, reason="chosen by the caller", method="forced")
        return state

    async def astream(
        self, task: str, *, agent: str | None = None, run_id: str | None = None, budget: Budget | None = None
    ) -> AsyncIterator[ProgressEvent | RunResult]:
        """Progress events as they happen, then the RunResult as the last item."""
        run_id = run_id or uuid.uuid4().hex[:12]
        task = mask_secrets(task)  # a key pasted into a task must not reach the records or the checkpoints
        inputs = self._input(task, agent)
        options = {
            **self._options, "agent": agent, **_budget_options(budget), "permissions": self.permissions.to_record()
        }  # fmt: skip
        # store writes go off the event loop: another run's checkpointer may hold the SQLite write lock
        # and needs the loop to commit
        await asyncio.to_thread(self.store.start_run, run_id, task, options, self.owner)
        async for item in self._drive(run_id, inputs, budget or Budget()):
            yield item

    async def aresume(
        self, run_id: str, *, budget: Budget | None = None, force: bool = False
    ) -> AsyncIterator[ProgressEvent | RunResult]:
        """Continue an interrupted, failed or budget-stopped run from its last checkpoint. Subtasks whose
        results were recorded are not run again. A run another live process holds is refused (naming it)
        unless `force`."""
        record = await asyncio.to_thread(self.store.run, run_id)
        if record.status in ("completed", "incomplete"):
            raise UserError(f"run {run_id} already finished ({record.status}); nothing to resume")
        if record.options.get("server"):
            raise UserError(
                f"run {run_id} is a LangGraph Server thread: resume it through the server (runs with "
                'command={"resume": ...}), whose checkpoints it is in'
            )
        await asyncio.to_thread(self.store.claim, run_id, self.owner, force=force)
        async for item in self._drive(run_id, None, budget or _budget_from(record.options)):
            yield item

    async def _drive(self, run_id: str, command: Any, budget: Budget) -> AsyncIterator[ProgressEvent | RunResult]:
        config: Any = {"configurable": {"thread_id": run_id}, "recursion_limit": 200}
        context = RunContext.local(workspace=self.workspace, policy=self.permissions, budget=budget)
        status: RunStatus = "completed"
        error: str | None = None
        values: Mapping[str, Any] = {}
        with structlog.contextvars.bound_contextvars(run_id=run_id), keep_lease(self.store, run_id, self.owner):
            log.info("run_started", resume=command is None)
            try:
                async with self._compiled() as graph:
                    events = EventLog(self.store, run_id)
                    try:
                        async for event in self._until_done(graph, command, config, context):
                            if recordable(event):
                                events.add(event)
                            yield event
                    finally:
                        try:
                            values = (await graph.aget_state(config)).values
                        finally:
                            await events.aclose()
            except RunError as exc:
                status, error = exc.status, mask_secrets(str(exc))
                log.info("run_stopped", status=status, error=error)  # the result reports it
            except (asyncio.CancelledError, KeyboardInterrupt):  # Ctrl-C, SIGTERM, a cancelled task
                # off the event loop even now: a checkpointer holding the write lock needs the loop to let go
                await asyncio.to_thread(self.store.finish_run, run_id, "interrupted", error="interrupted")
                log.info("run_interrupted")
                raise
            except Exception as exc:  # the run's boundary: a bug or a broken database must not leave it "running"
                status = "failed"
                error = mask_secrets(internal_error(exc))
                log.error("run_crashed", error=type(exc).__name__)
                log.debug("run_crashed_traceback", exc_info=True)
            await branches_removed(run_id)  # the merged branches' removal, begun in the background
            # store work stays off the event loop: a checkpointer holding the SQLite write lock needs the loop
            result = await asyncio.to_thread(self._finish, run_id, values, status, error)
            log.info("run_finished", status=result.status, cost_usd=result.usage.get("cost_usd"))
        yield result

    async def _until_done(
        self, graph: Graph, command: Any, config: Any, context: RunContext
    ) -> AsyncIterator[ProgressEvent]:
        """Stream the graph; when it stops on permission asks, answer them and resume, until it ends."""
        always: set[str] = set()
        announced: set[str] = set()
        while True:
            stream = graph.astream(command, config, context=context, stream_mode="custom", subgraphs=True)
            async for _namespace, chunk in stream:
                event = cast(ProgressEvent, chunk)
                if not replayed(event, announced):
                    yield event
            pending = (await graph.aget_state(config)).interrupts
            if not pending:
                return
            # each answer comes back from the graph as a "permission" event when it resumes
            answers = {item.id: await self._answer(cast(PermissionRequest, item.value), always) for item in pending}
            command = Command(resume=answers)

    async def _answer(self, request: PermissionRequest, always: set[str]) -> Answer:
        if request["rule"] in always:
            return "allow"
        answer: Answer = "deny" if self._ask is None else await self._ask(request)
        if answer == "always":
            always.add(request["rule"])
        return answer

    def _finish(self, run_id: str, values: Mapping[str, Any], status: RunStatus, error: str | None) -> RunResult:
        """The run's result, recorded as its outcome."""
        result = self._result(run_id, values, status, error)
        self.store.finish_run(run_id, result.status, final=result.final or None, error=error)
        return result

    def _result(self, run_id: str, state: Mapping[str, Any], status: RunStatus, error: str | None) -> RunResult:
        calls = self.store.calls(run_id)
        messages: list[AnyMessage] = state.get("messages", [])
        records: list[DelegationRecord] = state.get("delegations", [])
        delegations = [_delegation(d, delegation_cost(calls, d["id"])) for d in records]
        final = final_text(messages) if status == "completed" else ""
        issues = tuple(issues_of(self.store.events(run_id)))
        if status == "completed" and issues:
            status = "incomplete"
        merged = [d for d in records if d.get("branch", {}).get("merge", "merged") == "merged"]
        landed = [f for d in merged for f in d["files_changed"]]
        changed = dict.fromkeys([*state.get("files_changed", []), *landed])
        return RunResult(
            run_id, status, final, state.get("route"), tuple(delegations), summarize(calls, self.ledger.prices),
            error, issues, tuple(changed),
        )  # fmt: skip

    async def arun(
        self, task: str, *, agent: str | None = None, budget: Budget | None = None, run_id: str | None = None
    ) -> RunResult:
        return await _last(self.astream(task, agent=agent, budget=budget, run_id=run_id))

    def run(self, task: str, *, agent: str | None = None, budget: Budget | None = None) -> RunResult:
        return run_sync(self.arun(task, agent=agent, budget=budget))

    async def abatch(
        self,
        tasks: Iterable[str],
        *,
        max_concurrency: int = 4,
        on_result: Callable[[RunResult], None] | None = None,
        budget: Budget | None = None,
    ) -> list[RunResult]:
        """Run many tasks, at most `max_concurrency` at a time, each its own resumable run (with its own
        `budget`); results in order. `on_result` hears about each run as it ends (the CLI prints it)."""
        if max_concurrency < 1:
            raise UserError("max_concurrency must be at least 1")
        gate = asyncio.Semaphore(max_concurrency)

        async def one(task: str) -> RunResult:
            run_id = uuid.uuid4().hex[:12]
            async with gate:
                try:
                    result = await self.arun(task, budget=budget, run_id=run_id)
                except OrchestrateError as exc:  # it could not even start (its record): the others go on
                    result = RunResult(run_id, "failed", "", error=mask_secrets(str(exc)))
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(task) for task in tasks)))

    def batch(self, tasks: Iterable[str], *, max_concurrency: int = 4) -> list[RunResult]:
        return run_sync(self.abatch(tasks, max_concurrency=max_concurrency))

    def close(self) -> None:
        """Close the connection to the run records (SQLite file or Postgres) and the HTTP pools the sync API
        opened; also `with Orchestrator(...)`."""
        run_sync(_close_provider(self.provider))
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await _close_provider(self.provider)  # the pools this loop opened
        await asyncio.to_thread(self.store.close)


def existing_workspace(workspace: Path | str) -> Path:
    """The workspace directory, resolved; one that does not exist is a UserError naming the argument."""
    path = Path(workspace).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"workspace {str(workspace)!r} is not an existing directory (argument workspace)")
    return path


async def _close_provider(provider: ModelProvider) -> None:
    """A provider with HTTP pools per event loop (OpenAIProvider) closes this loop's."""
    close = getattr(provider, "aclose", None)
    if close is not None:
        await close()


async def _last(items: AsyncIterator[ProgressEvent | RunResult]) -> RunResult:
    async for item in items:
        if isinstance(item, RunResult):
            return item
    raise RunError("the run ended without a result")


def _delegation(record: DelegationRecord, cost: float) -> dict[str, Any]:
    return {**record, "cost_usd": round(cost, 6)}


def _budget_options(budget: Budget | None) -> dict[str, float | None]:
    budget = budget or Budget()
    return {"max_cost": budget.max_cost, "max_delegation_cost": budget.max_delegation_cost}


def _budget_from(options: Mapping[str, Any]) -> Budget:
    return Budget(options.get("max_cost"), options.get("max_delegation_cost"))
