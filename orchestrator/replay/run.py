"""Replay a recorded run through the current graph, answering every model call from the recording.

Why: a recorded run is a regression test. Replaying it after a code change (a prompt, a tool, a node)
shows whether the graph still asks exactly the questions it asked then; the first request that has no
recorded answer is the first point where behaviour diverged, and it is reported by step, agent and
purpose with what differs from the closest recorded request. No network client is ever built: the
replay provider's chat models only look answers up (by `request_fingerprint`, the same hash the run
recorded), unless `from_step`/`live` explicitly send later calls to a real provider.

Tools run for real, in a scratch workspace by default (an empty temporary directory). A run whose tools
read files that existed before it started diverges there unless it is replayed in a workspace holding
the same files (`workspace=`). Routing is recomputed and checked against the recorded route (a tie-break
is a recorded model call like any other, answered from the recording). Permission asks are answered as
they were answered in the recording (the permission events' `summary` and `answer` fields).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import cast

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.errors import UserError
from orchestrator.graphs.permission_gate import Answer, PermissionRequest
from orchestrator.ledger import Budget
from orchestrator.loader import AgentSet, load_agents
from orchestrator.pricing import PriceTable
from orchestrator.providers import ModelProvider
from orchestrator.replay.provider import ReplayProvider, recorded_model_ids, recorded_provider_name
from orchestrator.replay.recording import Divergence, Recording, ReplayDivergence
from orchestrator.replay.report import ReplayReport
from orchestrator.routing import Ask, RouteDecision, Router, build_router
from orchestrator.run_events import RecordedEvents, permission_answers, route_of
from orchestrator.run_store import CallRecord, RunRecord, RunStore, open_store
from orchestrator.runner import AskHandler, Orchestrator
from orchestrator.tools.permissions import PermissionPolicy

__all__ = ["areplay"]


@dataclass(frozen=True)
class _CheckedRouter(Router):
    """The offline router (and the tie-break, answered from the recording), checked against the recorded
    route: a different agent is the first divergence."""

    recorded: str | None = None
    recording: Recording | None = None

    async def aroute(self, task: str, *, ask: Ask | None = None) -> RouteDecision:
        decision = await super().aroute(task, ask=ask)
        if self.recorded is not None and decision.agent != self.recorded:
            how = f"{decision.method}, {decision.confidence:.2f}"
            what = f"routed to {decision.agent} ({how}); recorded: {self.recorded}"
            divergence = Divergence(None, decision.agent, "route", "", None, what)
            raise ReplayDivergence(self.recording.note(divergence) if self.recording else divergence)
        return decision


def _router(agents: Mapping[str, AgentSpec], events: RecordedEvents, recording: Recording) -> Router:
    base = build_router(agents)
    copied = {f.name: getattr(base, f.name) for f in fields(base)}
    route = route_of(events)
    return _CheckedRouter(**copied, recorded=route["agent"] if route else None, recording=recording)


def _recorded_answers(events: RecordedEvents) -> AskHandler:
    """Answer permission asks as the user answered them in the recorded run (unknown asks: deny)."""
    answers: dict[str, list[str]] = {}
    for summary, answer in permission_answers(events):
        answers.setdefault(summary, []).append(answer)

    async def ask(request: PermissionRequest) -> Answer:
        queue = answers.get(request["summary"])
        answer = queue.pop(0) if queue else "deny"
        return cast(Answer, answer if answer in ("allow", "deny", "always") else "deny")

    return ask


@asynccontextmanager
async def _workspace(given: Path | str | None) -> AsyncIterator[Path]:
    """The given workspace, or a fresh empty one removed afterwards."""
    if given is not None:
        path = Path(given).resolve()
        if not path.is_dir():
            raise UserError(f"--workspace {given} is not a directory")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="orchestrate-replay-") as scratch:
        yield Path(scratch).resolve()


def _check_steps(calls: Sequence[CallRecord], from_step: int | None, live: ModelProvider | None) -> None:
    if not calls:
        raise UserError("the run recorded no model calls: there is nothing to replay")
    if from_step is None:
        return
    if live is None:
        raise UserError("--from-step needs --provider (where the calls from that step on go)")
    if not 0 <= from_step <= len(calls):
        raise UserError(f"--from-step must be between 0 and {len(calls)} (the run's recorded calls), not {from_step}")


@dataclass(frozen=True)
class _Setup:
    """What the replayed orchestrator is built from (the recorded run's, unless the caller overrides)."""

    agents: Mapping[str, AgentSpec]
    settings: Settings | None
    permissions: PermissionPolicy | None
    live: ModelProvider | None
    provider_name: str | None


def _orchestrator(
    record: RunRecord, store: RunStore, setup: _Setup, recording: Recording, workspace: Path
) -> Orchestrator:
    events = store.events(record.run_id)
    name = setup.provider_name or recorded_provider_name(recording.calls, record.options)
    provider = ReplayProvider(recording, str(workspace), name, recorded_model_ids(recording.calls), setup.live)
    kept = {k: v for k, v in record.options.items() if k not in ("agent", "max_cost", "max_delegation_cost")}
    options = {**kept, "workspace": str(workspace), "replay_of": record.run_id, "from_step": recording.from_step}
    free = PriceTable(as_of="replay", models={}, families={}) if setup.live is None else None  # nothing was paid
    permissions = setup.permissions
    if permissions is None and isinstance(record.options.get("permissions"), dict):
        permissions = PermissionPolicy.from_record(record.options["permissions"])
    return Orchestrator(
        setup.agents, provider=provider, workspace=workspace, settings=setup.settings, permissions=permissions,
        router=_router(setup.agents, events, recording), ask=_recorded_answers(events),
        db=store.target, options=options, prices=free,
    )  # fmt: skip


async def areplay(
    run_id: str,
    *,
    db: Path | str | None = None,
    agents: AgentSet | Mapping[str, AgentSpec] | None = None,
    workspace: Path | str | None = None,
    settings: Settings | None = None,
    permissions: PermissionPolicy | None = None,
    from_step: int | None = None,
    live: ModelProvider | None = None,
    provider_name: str | None = None,
) -> ReplayReport:
    """Re-execute a recorded run with its recorded answers (zero API calls) and report where it diverges.

    `agents`, `settings`, `permissions`: the graph to replay through (default: the run's agent dirs,
    settings from the environment, default permissions); change them to test a change. `from_step=N`
    with `live=`: recorded steps 0..N-1 answer from the recording, later calls go to `live`."""
    store = open_store(db)
    try:
        record, calls = store.run(run_id), store.calls(run_id)
        _check_steps(calls, from_step, live)
        loaded = agents if agents is not None else load_agents(record.options.get("agents_dirs") or ())
        specs = dict(loaded.agents if isinstance(loaded, AgentSet) else loaded)
        setup = _Setup(specs, settings, permissions, live, provider_name)
        return await _replay(record, store, setup, Recording(calls, from_step=from_step), workspace)
    finally:
        store.close()


async def _replay(
    record: RunRecord, store: RunStore, setup: _Setup, recording: Recording, workspace: Path | str | None
) -> ReplayReport:
    budget = Budget(record.options.get("max_cost"), record.options.get("max_delegation_cost"))
    async with _workspace(workspace) as place:
        orchestrator = _orchestrator(record, store, setup, recording, place)
        try:
            result = await orchestrator.arun(record.task, agent=record.options.get("agent"), budget=budget)
        finally:
            await asyncio.to_thread(orchestrator.store.close)
    return ReplayReport(
        source=record.run_id, run_id=result.run_id, status=result.status, final=result.final,
        recorded_final=record.final, replayed=len(recording.used), live=recording.live, unused=recording.unused(),
        divergence=recording.divergence, workspace=str(place), scratch=workspace is None, error=result.error,
    )  # fmt: skip
