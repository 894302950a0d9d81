"""What actually happened in a run, as one tree: `orchestrate show` and the HTML trace read this.

A run leaves three records (orchestrator/run_store.py): the run row, one row per model call (with its
delegation path, request and response, secrets already stripped) and the timestamped progress events.
`build_trace` folds them into frozen dataclasses, purely (no I/O, no graph): the top agent's context and,
nested below it by delegation path, one node per Task call with its brief (read from the Task call in
the parent's recorded reply), its model calls, tool calls with their results, and its review verdicts.
The renderers here (rich tree, JSON, Mermaid) and in `trace_html` only read that tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.text import Text
from rich.tree import Tree

from orchestrator.graphs.prompts import TASK_ALIASES, VERDICT_TOOL
from orchestrator.run_store import CallRecord, RunRecord, RunStore

__all__ = [
    "CallTrace",
    "EventTrace",
    "MessageView",
    "NodeTrace",
    "RouteTrace",
    "ToolCallTrace",
    "ToolRequest",
    "Trace",
    "VerdictTrace",
    "build_trace",
    "load_trace",
    "render_json",
    "render_mermaid",
    "render_tree",
    "trace_dict",
]

Event = Mapping[str, Any]


@dataclass(frozen=True)
class ToolRequest:
    """A tool call as the model asked for it."""

    id: str
    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class MessageView:
    """One message of a recorded request or reply, flattened for display."""

    role: str
    """system, human, ai or tool."""
    text: str
    tool_calls: tuple[ToolRequest, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class CallTrace:
    """One model call: who asked, what it cost, what was said."""

    step: int
    """The call's number in the run (0-based, the order calls were recorded; `replay --from-step` counts these)."""
    agent: str
    purpose: str
    model: str
    path: str
    started: float
    seconds: float
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    request_hash: str
    tools: tuple[str, ...]
    tool_choice: str | None
    messages: tuple[MessageView, ...]
    reply: MessageView

    @property
    def ended(self) -> float:
        return self.started + self.seconds


@dataclass(frozen=True)
class ToolCallTrace:
    """A tool the agent ran (Task calls are nodes instead), with the result its next request carried."""

    id: str
    name: str
    args: Mapping[str, Any]
    step: int
    """The model call that asked for it."""
    result: str | None
    ok: bool | None
    at: float | None


@dataclass(frozen=True)
class VerdictTrace:
    round: int
    decision: str
    feedback: str
    by: str
    """reviewer, or evidence when the evidence check overruled the reviewer's approval."""
    step: int | None
    at: float | None


@dataclass(frozen=True)
class NodeTrace:
    """One agent context: the top agent (id "") or one Task delegation and what it did."""

    id: str
    path: str
    agent: str
    depth: int
    title: str
    brief: str
    status: str
    started: float
    ended: float | None
    issued_by: int | None
    """Step of the parent's call that delegated this (None at the top)."""
    error: str | None = None
    calls: tuple[CallTrace, ...] = ()
    tools: tuple[ToolCallTrace, ...] = ()
    verdicts: tuple[VerdictTrace, ...] = ()
    children: tuple[NodeTrace, ...] = ()

    @property
    def model(self) -> str:
        return next((c.model for c in self.calls if c.purpose == "turn"), self.calls[0].model if self.calls else "")

    @property
    def cost_usd(self) -> float:
        """This context's own calls (its turns and the reviews of its work)."""
        return sum(c.cost_usd for c in self.calls)

    @property
    def total_cost_usd(self) -> float:
        return self.cost_usd + sum(child.total_cost_usd for child in self.children)

    @property
    def input_tokens(self) -> int:
        return sum(c.input_tokens + c.cache_read_tokens + c.cache_write_tokens for c in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.calls)

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else max(0.0, self.ended - self.started)

    def walk(self) -> Iterator[NodeTrace]:
        """This node and every node below it, depth first, in delegation order."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class RouteTrace:
    agent: str
    confidence: float
    reason: str
    method: str | None


@dataclass(frozen=True)
class EventTrace:
    at: float
    kind: str
    agent: str
    depth: int
    detail: str
    call_id: str | None
    decision: str | None


@dataclass(frozen=True)
class Trace:
    run_id: str
    task: str
    status: str
    started: float
    finished: float | None
    final: str | None
    error: str | None
    route: RouteTrace | None
    root: NodeTrace
    events: tuple[EventTrace, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def nodes(self) -> list[NodeTrace]:
        return list(self.root.walk())

    def calls(self) -> list[CallTrace]:
        return sorted((c for n in self.root.walk() for c in n.calls), key=lambda c: c.step)

    @property
    def cost_usd(self) -> float:
        return self.root.total_cost_usd

    @property
    def ended(self) -> float:
        """When the last thing happened (the run's finish, else its last call or event)."""
        times = [self.started, *(c.ended for c in self.calls()), *(e.at for e in self.events)]
        return max([*times, self.finished or 0.0])


# ---- parsing the recorded JSON ----


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [b.get("text", "") if b.get("type") == "text" else "" for b in content if isinstance(b, dict)]
    others = [
        f"[{b.get('type')}]" for b in content if isinstance(b, dict) and b.get("type") not in ("text", "tool_use")
    ]
    return "\n".join(p for p in [*parts, *others] if p)


def _tool_requests(data: Mapping[str, Any]) -> tuple[ToolRequest, ...]:
    calls = data.get("tool_calls") or []
    return tuple(ToolRequest(str(c.get("id")), str(c.get("name")), dict(c.get("args") or {})) for c in calls)


def _message(item: Mapping[str, Any]) -> MessageView:
    """A langchain `message_to_dict` record ({"type", "data"}) as a MessageView."""
    data = item.get("data") or {}
    return MessageView(
        role=str(item.get("type", "?")), text=_text(data.get("content")), tool_calls=_tool_requests(data),
        tool_call_id=data.get("tool_call_id"), name=data.get("name"), status=data.get("status"),
    )  # fmt: skip


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _choice(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _call(step: int, record: CallRecord) -> CallTrace:
    request = _loads(record.request)
    return CallTrace(
        step=step, agent=record.agent, purpose=record.purpose, model=record.model, path=record.delegation,
        started=record.started, seconds=record.seconds, input_tokens=record.input_tokens,
        output_tokens=record.output_tokens, cache_read_tokens=record.cache_read_tokens,
        cache_write_tokens=record.cache_write_tokens, cost_usd=record.cost_usd, request_hash=record.request_hash,
        tools=tuple(str(t) for t in request.get("tools") or []), tool_choice=_choice(request.get("tool_choice")),
        messages=tuple(_message(m) for m in request.get("messages") or []), reply=_message(_loads(record.response)),
    )  # fmt: skip


# ---- folding calls and events into nodes ----


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
    said = _said(call)
    decision = (event.decision if event else None) or str(said.get("decision", "?"))
    overruled = said.get("decision") == "approve" and decision == "revise"
    feedback = str(said.get("feedback", "")) if said.get("decision") == decision else (event.detail if event else "")
    step, at = (call.step if call else None), (event.at if event else call.ended if call else None)
    return VerdictTrace(number, decision, feedback, "evidence" if overruled else "reviewer", step, at)


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
        return last.detail or "returned", None, last.at
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
    return NodeTrace(
        id=node_id, path=path, agent=agent, depth=path.count("/"), title=spec.title if spec else node_id,
        brief=spec.brief if spec else "", status=status, started=started, ended=ended,
        issued_by=spec.step if spec else None, error=error, calls=calls, tools=_tools(ctx, calls),
        verdicts=_verdicts(ctx, node_id, calls), children=_children(ctx, path),
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
    )  # fmt: skip


def _route(events: Sequence[tuple[float, Event]]) -> RouteTrace | None:
    event = next((e for _, e in events if e.get("event") == "route"), None)
    if event is None:
        return None
    method = event.get("method")
    if method is None and event.get("detail") == "chosen by the caller":
        method = "forced"
    return RouteTrace(
        str(event.get("agent")), float(event.get("confidence", 0.0)), str(event.get("detail", "")), method
    )


def build_trace(run: RunRecord, calls: Sequence[CallRecord], events: Sequence[tuple[float, Event]]) -> Trace:
    """The run's tree from its records; pure, so it can be tested on hand-made records."""
    traced = tuple(_call(step, record) for step, record in enumerate(calls))
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


def _fields(node: NodeTrace) -> dict[str, Any]:
    return {name: getattr(node, name) for name in NodeTrace.__dataclass_fields__}


def load_trace(store: RunStore, run_id: str) -> Trace:
    """The trace of one recorded run (UserError naming the run if there is none)."""
    return build_trace(store.run(run_id), store.calls(run_id), store.events(run_id))


# ---- renderers: JSON, rich tree, Mermaid ----


def _node_dict(node: NodeTrace) -> dict[str, Any]:
    plain = {k: v for k, v in _fields(node).items() if k not in ("children", "calls", "tools", "verdicts")}
    return {
        **plain, "model": node.model, "cost_usd": round(node.cost_usd, 6),
        "total_cost_usd": round(node.total_cost_usd, 6), "input_tokens": node.input_tokens,
        "output_tokens": node.output_tokens, "seconds": node.seconds,
        "calls": [asdict(c) for c in node.calls], "tools": [asdict(t) for t in node.tools],
        "verdicts": [asdict(v) for v in node.verdicts], "children": [_node_dict(c) for c in node.children],
    }  # fmt: skip


def trace_dict(trace: Trace) -> dict[str, Any]:
    """The trace as plain JSON-able data, with per-node and per-run totals."""
    calls = trace.calls()
    totals = {
        "cost_usd": round(trace.cost_usd, 6), "calls": len(calls), "seconds": round(trace.ended - trace.started, 3),
        "input_tokens": sum(c.input_tokens + c.cache_read_tokens + c.cache_write_tokens for c in calls),
        "output_tokens": sum(c.output_tokens for c in calls),
    }  # fmt: skip
    return {
        "run_id": trace.run_id, "task": trace.task, "status": trace.status, "started": trace.started,
        "finished": trace.finished, "final": trace.final, "error": trace.error, "options": dict(trace.options),
        "route": asdict(trace.route) if trace.route else None, "totals": totals, "root": _node_dict(trace.root),
        "events": [asdict(e) for e in trace.events],
    }  # fmt: skip


def render_json(trace: Trace) -> str:
    return json.dumps(trace_dict(trace), ensure_ascii=False, indent=1, default=str)


def _short(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _duration(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.2f} s"


_STATUS_STYLE = {"completed": "green", "approved": "green", "approve": "green", "revise": "yellow"}


def _styled(status: str) -> tuple[str, str]:
    return status, _STATUS_STYLE.get(status, "red" if status in ("failed", "error", "refused") else "yellow")


def _call_label(call: CallTrace) -> Text:
    tokens = f"{call.input_tokens + call.cache_read_tokens + call.cache_write_tokens} in / {call.output_tokens} out"
    said = call.reply.text or ", ".join(r.name for r in call.reply.tool_calls)
    return Text.assemble(
        (f"step {call.step} ", "bold"), f"{call.purpose} ", (call.agent, "cyan"), f"  {call.model}  {tokens}  ",
        f"${call.cost_usd:.4f}  {_duration(call.seconds)}  ", (_short(said, 80), "dim"),
    )  # fmt: skip


def _tool_label(tool: ToolCallTrace) -> Text:
    args = ", ".join(f"{k}={_short(str(v), 40)}" for k, v in tool.args.items() if k != "content")
    mark = ("✓", "green") if tool.ok else ("?", "yellow") if tool.ok is None else ("✗", "red")
    return Text.assemble(mark, " ", (tool.name, "bold"), f"({args})  ", (_short(tool.result or "", 80), "dim"))


def _verdict_label(verdict: VerdictTrace) -> Text:
    by = " (evidence check)" if verdict.by == "evidence" else ""
    return Text.assemble(f"verdict round {verdict.round}: ", _styled(verdict.decision), f"{by} {verdict.feedback}")


def _node_label(node: NodeTrace) -> Text:
    head = Text.assemble(("↳ " if node.id else "", ""), (node.agent, "bold cyan"))
    if node.title:
        head.append(f": {node.title}")
    head.append("  ")
    head.append(*_styled(node.status))
    tokens = f"{node.input_tokens} in / {node.output_tokens} out"
    head.append(f"  {node.model}  {tokens}  ${node.total_cost_usd:.4f}  {_duration(node.seconds)}", "dim")
    return head


def _add_call(branch: Tree, node: NodeTrace, call: CallTrace) -> None:
    leaf = branch.add(_call_label(call))
    for tool in (t for t in node.tools if t.step == call.step):
        leaf.add(_tool_label(tool))
    for verdict in (v for v in node.verdicts if v.step == call.step):
        leaf.add(_verdict_label(verdict))
    for child in (c for c in node.children if c.issued_by == call.step):
        _add_node(branch, child)


def _add_node(parent: Tree, node: NodeTrace) -> None:
    branch = parent.add(_node_label(node))
    if node.id:
        branch.add(Text.assemble(("brief: ", "bold"), _short(node.brief, 300)))
    if node.error:
        branch.add(Text(f"error: {_short(node.error, 300)}", "red"))
    for call in node.calls:
        _add_call(branch, node, call)
    steps = {c.step for c in node.calls}
    for child in (c for c in node.children if c.issued_by not in steps):
        _add_node(branch, child)
    for verdict in (v for v in node.verdicts if v.step is None):
        branch.add(_verdict_label(verdict))


def render_tree(trace: Trace) -> Tree:
    """The run as a rich tree: route, each context's calls with their tools, delegations and verdicts."""
    calls = trace.calls()
    tokens = sum(c.input_tokens + c.cache_read_tokens + c.cache_write_tokens for c in calls)
    out = sum(c.output_tokens for c in calls)
    head = Text.assemble(("run ", "bold"), trace.run_id, "  ", _styled(trace.status))
    head.append(f"  ${trace.cost_usd:.4f}  {tokens} in / {out} out  {len(calls)} calls  ")
    head.append(_duration(trace.ended - trace.started))
    tree = Tree(head)
    tree.add(Text.assemble(("task: ", "bold"), _short(trace.task, 200)))
    if trace.route:
        r = trace.route
        tree.add(Text(f"route → {r.agent} (confidence {r.confidence:.4f}, {r.method or '?'}): {_short(r.reason)}"))
    _add_node(tree, trace.root)
    if trace.final:
        tree.add(Text.assemble(("final: ", "bold green"), _short(trace.final, 300)))
    if trace.error:
        tree.add(Text(f"error: {trace.error}", "red"))
    return tree


def _mermaid_text(text: str) -> str:
    """Mermaid label text: every character that could end or format the label as an entity code."""
    return "".join(f"#{ord(ch)};" if ch in '#"<>&`[]{}()|' else ch for ch in text)


def _verdict_summary(node: NodeTrace) -> str:
    if not node.verdicts:
        return node.status
    return " → ".join(v.decision for v in node.verdicts) + f" ({node.status})"


def _mermaid_node(index: int, node: NodeTrace) -> str:
    title = f"{node.agent}: {_short(node.title, 40)}" if node.title else f"{node.agent} (top)"
    lines = [title, f"{node.model or 'no model call'} · ${node.total_cost_usd:.4f}", _verdict_summary(node)]
    return f'    n{index}["{"<br/>".join(_mermaid_text(line) for line in lines)}"]'


_MERMAID_CLASSES = {"approved": "ok", "completed": "ok", "unapproved": "warn", "running": "warn", "unfinished": "warn"}


def render_mermaid(trace: Trace) -> str:
    """The run's delegation graph as a Mermaid flowchart, each node annotated with agent, cost and verdicts."""
    nodes = trace.nodes()
    index = {id(node): i for i, node in enumerate(nodes)}
    lines = ["flowchart TD", *(_mermaid_node(i, node) for i, node in enumerate(nodes))]
    lines += [f'    n{index[id(node)]} -->|"Task"| n{index[id(child)]}' for node in nodes for child in node.children]
    lines += [
        "    classDef ok fill:#e3f6e3,stroke:#2e7d32",
        "    classDef warn fill:#fff4d6,stroke:#b7791f",
        "    classDef bad fill:#fde2e1,stroke:#c62828",
    ]
    lines += [f"    class n{i} {_MERMAID_CLASSES.get(n.status, 'bad')}" for i, n in enumerate(nodes)]
    return "\n".join(lines) + "\n"
