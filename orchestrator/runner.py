"""Running the graph: `Orchestrator.run / arun / astream / batch` and the `RunResult` they return.

Definitions (agent files, the graph) are data built elsewhere; this module owns a run's lifecycle: a
run id bound into every log line, the input, streaming progress, and turning the final state into a
result (or a clean failure that names the run).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import structlog
from langchain_core.messages import AnyMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.errors import RunError, UserError
from orchestrator.graphs.builder import build_graph
from orchestrator.graphs.permission_gate import Answer, PermissionRequest
from orchestrator.graphs.progress import ProgressEvent
from orchestrator.graphs.review import final_text
from orchestrator.graphs.state import DelegationRecord, RouteInfo, RunState, Usage, add_usage
from orchestrator.loader import AgentSet, load_agents
from orchestrator.models import ModelProvider
from orchestrator.router import Router, build_router
from orchestrator.tools.permissions import PermissionPolicy

__all__ = ["AskHandler", "Orchestrator", "RunResult"]

log = structlog.get_logger("orchestrator.run")

RunStatus = Literal["completed", "failed"]
AskHandler = Callable[[PermissionRequest], Awaitable[Answer]]
"""Answers a permission ask: "allow" this once, "deny", or "always" (this tool / command for the run)."""


@dataclass(frozen=True)
class RunResult:
    """What a run produced, in the shape `orchestrate run --json` prints."""

    run_id: str
    status: RunStatus
    final: str
    route: RouteInfo | None = None
    delegations: tuple[DelegationRecord, ...] = ()
    usage_by_agent: Mapping[str, Usage] = field(default_factory=dict)
    error: str | None = None

    @property
    def usage(self) -> Usage:
        total = add_usage({}, {"all": Usage(input_tokens=0, output_tokens=0)})
        for usage in self.usage_by_agent.values():
            total = add_usage(total, {"all": usage})
        return total["all"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "route": dict(self.route) if self.route else None,
            "final": self.final,
            "delegations": [_delegation_dict(d) for d in self.delegations],
            "usage": {**self.usage, "by_agent": dict(self.usage_by_agent)},
            "error": self.error,
        }


def _delegation_dict(record: DelegationRecord) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "id"}


def _result(run_id: str, state: Mapping[str, Any]) -> RunResult:
    messages: list[AnyMessage] = state.get("messages", [])
    return RunResult(
        run_id=run_id,
        status="completed",
        final=final_text(messages),
        route=state.get("route"),
        delegations=tuple(state.get("delegations", [])),
        usage_by_agent=state.get("usage", {}),
    )


class Orchestrator:
    """Runs tasks through the orchestration graph. Build once, run many tasks (also concurrently)."""

    def __init__(
        self,
        agents: AgentSet | Mapping[str, AgentSpec] | None = None,
        *,
        provider: ModelProvider,
        workspace: Path | str = ".",
        settings: Settings | None = None,
        router: Router | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        permissions: PermissionPolicy | None = None,
        ask: AskHandler | None = None,
    ) -> None:
        """`permissions`: Claude Code's modes and rules (default mode: reads allowed, edits and commands
        ask). `ask` answers those asks (allow / deny / always); without it every ask is denied with a
        message naming the flag or rule that would allow it."""
        loaded = agents if agents is not None else load_agents()
        self.agents: Mapping[str, AgentSpec] = dict(loaded.agents if isinstance(loaded, AgentSet) else loaded)
        if router is None:  # unsure routing decisions go to the provider's cheapest model
            tiebreak = provider.chat_model("haiku")
            router = build_router(self.agents, tiebreak=tiebreak, tiebreak_errors=provider.errors)
        graph = build_graph(
            self.agents, provider=provider, workspace=workspace, settings=settings, router=router,
            permissions=permissions,
        )  # fmt: skip
        self._ask = ask
        self.graph = graph.compile(checkpointer=checkpointer or InMemorySaver())

    def _input(self, task: str, agent: str | None) -> RunState:
        if not task.strip():
            raise UserError("task is empty: say what the agents should do")
        state = RunState(task=task, agent="", model="", depth=0, messages=[], briefs=[])
        if agent is not None:
            if agent not in self.agents:
                raise UserError(
                    f"unknown agent {agent!r} (argument agent); available: {', '.join(sorted(self.agents))}"
                )
            state["route"] = RouteInfo(agent=agent, confidence=1.0, reason="chosen by the caller", method="forced")
        return state

    async def astream(
        self, task: str, *, agent: str | None = None, run_id: str | None = None
    ) -> AsyncIterator[ProgressEvent | RunResult]:
        """Progress events as they happen, then the RunResult as the last item."""
        run_id = run_id or uuid.uuid4().hex[:12]
        config: Any = {"configurable": {"thread_id": run_id}, "recursion_limit": 200}
        inputs = self._input(task, agent)
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            log.info("run_started", agent=agent)
            try:
                async for event in self._until_done(inputs, config):
                    yield event
            except RunError as exc:
                log.error("run_failed", error=str(exc))
                yield RunResult(run_id=run_id, status="failed", final="", error=str(exc))
                return
            state = (await self.graph.aget_state(config)).values
            result = _result(run_id, state)
            log.info("run_finished", status=result.status, **result.usage)
            yield result

    async def _until_done(self, inputs: Any, config: Any) -> AsyncIterator[ProgressEvent]:
        """Stream the graph; when it stops on permission asks, answer them and resume, until it ends."""
        always: set[str] = set()
        command: Any = inputs
        while True:
            async for _namespace, event in self.graph.astream(command, config, stream_mode="custom", subgraphs=True):
                yield cast(ProgressEvent, event)
            pending = (await self.graph.aget_state(config)).interrupts
            if not pending:
                return
            answers = {}
            for item in pending:
                request = cast(PermissionRequest, item.value)
                answers[item.id] = await self._answer(request, always)
                yield ProgressEvent(event="permission", agent=request["agent"], depth=request["depth"],
                                    detail=f"{request['summary']}: {answers[item.id]}")  # fmt: skip
            command = Command(resume=answers)

    async def _answer(self, request: PermissionRequest, always: set[str]) -> Answer:
        if request["key"] in always:
            return "allow"
        answer: Answer = "deny" if self._ask is None else await self._ask(request)
        if answer == "always":
            always.add(request["key"])
        return answer

    async def arun(self, task: str, *, agent: str | None = None, run_id: str | None = None) -> RunResult:
        async for item in self.astream(task, agent=agent, run_id=run_id):
            if isinstance(item, RunResult):
                return item
        raise RunError("the run ended without a result")  # unreachable unless astream is broken

    def run(self, task: str, *, agent: str | None = None) -> RunResult:
        return asyncio.run(self.arun(task, agent=agent))

    async def abatch(self, tasks: Iterable[str], *, max_concurrency: int = 4) -> list[RunResult]:
        """Run many tasks, at most `max_concurrency` at a time; results in input order."""
        if max_concurrency < 1:
            raise UserError("max_concurrency must be at least 1")
        gate = asyncio.Semaphore(max_concurrency)

        async def one(task: str) -> RunResult:
            async with gate:
                return await self.arun(task)

        return list(await asyncio.gather(*(one(task) for task in tasks)))

    def batch(self, tasks: Iterable[str], *, max_concurrency: int = 4) -> list[RunResult]:
        return asyncio.run(self.abatch(tasks, max_concurrency=max_concurrency))
