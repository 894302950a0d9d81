"""Folding a run's records into its `Trace`, purely (no I/O, no graph), so it can be tested on hand-made
records.

A run leaves three records (orchestrator/run_store.py): the run row, one row per model call (with its
delegation path, request and response, secrets already stripped) and the timestamped progress events,
whose facts are typed fields (graphs/progress.py). Each Task call in a recorded reply becomes a node
(its brief read from that call); calls attach to nodes by delegation path, events by Task call id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.graphs.prompts import TASK_ALIASES, VERDICT_TOOL
from orchestrator.run_events import RecordedEvents, route_of
from orchestrator.run_store import CallRecord, RunRecord, RunStore
from orchestrator.trace.model import (
    CallTrace,
    EventTrace,
    MessageView,
    NodeTrace,
    RouteTrace,
    ToolCallTrace,
    Trace,
    VerdictTrace,
)
from orchestrator.trace.records import call_trace

__all__ = ["build_trace", "load_trace"]

Event = Mapping[str, Any]


@dataclass(frozen=True)
class _Spec:
    """A delegation as its Task call announced it."""

    id: str
    parent: str
    agent: str
    title: str
    brief: str
    step: int


def _parent_path(path: str) -> str:
    head = path.rstrip("/").rpartition("/")[0]
    return f"{head}/" if head else ""


def _specs(calls: Sequence[CallTrace]) -> dict[str, _Spec]:
    """Delegation path -> its Task call, from every recorded reply that delegated."""
    specs: dict[str, _Spec] = {}
    for call in calls:
        for req in (r for r in call.reply.tool_calls if r.name in TASK_ALIASES):
            args = req.args
            specs[f"{call.path}{req.id}/"] = _Spec(
                req.id, call.path, str(args.get("subagent_type", "")), str(args.get("description", "")),
                str(args.get("prompt", "")), call.step,
            )  # fmt: skip
    return specs


def _results(calls: Sequence[CallTrace]) -> dict[str, MessageView]:
    """Tool call id -> the tool result message a later request carried."""
    return {m.tool_call_id: m for c in calls for m in c.messages if m.role == "tool" and m.tool_call_id}


def _by_call_id(events: Sequence[EventTrace]) -> dict[str, list[EventTrace]]:
    grouped: dict[str, list[EventTrace]] = {}
    for event in events:
        if event.call_id:
            grouped.setdefault(event.call_id, []).append(event)
    return grouped


@dataclass(frozen=True)
class _Context:
    """Everything the node builders look things up in."""

    run: RunRecord
    calls: tuple[CallTrace, ...]
    specs: Mapping[str, _Spec]
    results: Mapping[str, MessageView]
    events: Mapping[str, list[EventTrace]]
    paths: tuple[str, ...]
    top: str
    """The top agent (the run's route)."""

    def of(self, call_id: str, *kinds: str) -> list[EventTrace]:
        return [e for e in self.events.get(call_id, []) if e.kind in kinds]


def _tools(ctx: _Context, calls: Sequence[CallTrace]) -> tuple[ToolCallTrace, ...]:
    out = []
    for call in (c for c in calls if c.purpose == "turn"):
        for req in (r for r in call.reply.tool_calls if r.name not in TASK_ALIASES):
            result = ctx.results.get(req.id)
            ok = None if result is None else result.status != "error"
            at = next((e.at for e in ctx.of(req.id, "tool")), None)
            text = None if result is None else result.text
            out.append(ToolCallTrace(req.id, req.name, req.args, call.step, text, ok, at))
    return tuple(out)


def _said(call: CallTrace | None) -> Mapping[str, Any]:
    """The Verdict tool's arguments in a review reply."""
    if call is None:
        return {}
    return next((r.args for r in call.reply.tool_calls if r.name == VERDICT_TOOL), {})


def _verdict(number: int, call: CallTrace | None, event: EventTrace | None) -> VerdictTrace:
    """A review round from its verdict event (decision, who decided) and its call (the full feedback)."""
    said = _said(call)
    by = (event.by if event else None) or "reviewer"
    decision = (event.decision if event else None) or str(said.get("decision", "?"))
    feedback = str(said["feedback"]) if by == "reviewer" and "feedback" in said else (event.detail if event else "")
    step, at = (call.step if call else None), (event.at if event else call.ended if call else None)
    return VerdictTrace(number, decision, feedback, by, step, at)


def _verdicts(ctx: _Context, node_id: str, calls: Sequence[CallTrace]) -> tuple[VerdictTrace, ...]:
    """k-th review call <-> k-th verdict event of this delegation (rounds are sequential)."""
    reviews = [c for c in calls if c.purpose == "review"]
    events = ctx.of(node_id, "verdict")
    rounds = range(max(len(reviews), len(events)))
    return tuple(
        _verdict(k + 1, reviews[k] if k < len(reviews) else None, events[k] if k < len(events) else None)
        for k in rounds
    )


def _status(ctx: _Context, node_id: str) -> tuple[str, str | None, float | None]:
    """(status, error, when it ended) of a delegation, from its last outcome event."""
    outcome = ctx.of(node_id, "returned", "refused", "failed")
    if not outcome:
        return ("running" if ctx.run.status == "running" else "unfinished"), None, None
    last = outcome[-1]
    if last.kind == "returned":
        return last.status or "returned", None, last.at
    return ("refused" if last.kind == "refused" else "error"), last.detail, last.at


def _span(ctx: _Context, node_id: str, calls: Sequence[CallTrace], ended: float | None) -> tuple[float, float | None]:
    starts = [e.at for e in ctx.of(node_id, "delegate", "refused", "failed")] or [c.started for c in calls]
    started = min(starts) if starts else ctx.run.started
    if ended is None and calls:
        ended = max(c.ended for c in calls)
    return started, ended


def _children(ctx: _Context, path: str) -> tuple[NodeTrace, ...]:
    return tuple(_node(ctx, p) for p in ctx.paths if p and _attach_to(ctx, p) == path)


def _attach_to(ctx: _Context, path: str) -> str:
    """The nearest known ancestor of a delegation path (a lost parent reply must not lose the subtree)."""
    parent = _parent_path(path)
    while parent and parent not in ctx.paths:
        parent = _parent_path(parent)
    return parent


def _node(ctx: _Context, path: str) -> NodeTrace:
    if not path:
        return _root(ctx)
    calls = tuple(c for c in ctx.calls if c.path == path)
    spec = ctx.specs.get(path)
    node_id = path.rstrip("/").rpartition("/")[2]
    status, error, ended = _status(ctx, node_id)
    started, ended = _span(ctx, node_id, calls, ended)
    agent = spec.agent if spec else next((c.agent for c in calls if c.purpose == "turn"), "?")
    merged = next((e for e in reversed(ctx.of(node_id, "returned")) if e.merge is not None), None)
    return NodeTrace(
        id=node_id, path=path, agent=agent, depth=path.count("/"), title=spec.title if spec else node_id,
        brief=spec.brief if spec else "", status=status, started=started, ended=ended,
        issued_by=spec.step if spec else None, error=error, calls=calls, tools=_tools(ctx, calls),
        verdicts=_verdicts(ctx, node_id, calls), children=_children(ctx, path),
        merge=merged.merge if merged else None, changes=merged.changes if merged else None,
    )  # fmt: skip


def _root(ctx: _Context) -> NodeTrace:
    run = ctx.run
    calls = tuple(c for c in ctx.calls if c.path == "")
    return NodeTrace(
        id="", path="", agent=ctx.top, depth=0, title="", brief=run.task, status=run.status, started=run.started,
        ended=run.finished, issued_by=None, error=run.error, calls=calls, tools=_tools(ctx, calls),
        children=_children(ctx, ""),
    )  # fmt: skip


def _event(at: float, event: Event) -> EventTrace:
    return EventTrace(
        at=at, kind=str(event.get("event", "?")), agent=str(event.get("agent", "?")), depth=int(event.get("depth", 0)),
        detail=str(event.get("detail", "")), call_id=event.get("call_id"), decision=event.get("decision"),
        by=event.get("by"), status=event.get("status"), summary=event.get("summary"), answer=event.get("answer"),
        merge=event.get("merge"), changes=event.get("changes"),
    )  # fmt: skip


def _route(events: RecordedEvents) -> RouteTrace | None:
    route = route_of(events)
    return None if route is None else RouteTrace(route["agent"], route["confidence"], route["reason"], route["method"])


def build_trace(run: RunRecord, calls: Sequence[CallRecord], events: RecordedEvents) -> Trace:
    """The run's tree from its records."""
    traced = tuple(call_trace(step, record) for step, record in enumerate(calls))
    specs = _specs(traced)
    timeline = tuple(_event(at, event) for at, event in events)
    paths = tuple(dict.fromkeys(["", *specs, *(c.path for c in traced)]))
    route = _route(events)
    top = run.agent or (route.agent if route else next((c.agent for c in traced if not c.path), "?"))
    ctx = _Context(run, traced, specs, _results(traced), _by_call_id(timeline), paths, top)
    root = _root(ctx)
    return Trace(
        run.run_id, run.task, run.status, run.started, run.finished, run.final, run.error, route, root, timeline,
        dict(run.options),
    )  # fmt: skip


def load_trace(store: RunStore, run_id: str) -> Trace:
    """The trace of one recorded run (UserError naming the run if there is none)."""
    return build_trace(store.run(run_id), store.calls(run_id), store.events(run_id))
