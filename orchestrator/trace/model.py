"""What happened in a run, as frozen data: the tree `fold` builds and every renderer reads.

The top agent's context and, nested below it by delegation path, one `NodeTrace` per Task call with its
brief, its model calls (`CallTrace`, which wraps the stored `CallRecord`), tool calls with their results,
and its review verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.pricing import TokenCounts
from orchestrator.run_store import CallRecord

__all__ = [
    "CallTrace",
    "EventTrace",
    "MessageView",
    "NodeTrace",
    "PolicyNote",
    "RouteTrace",
    "ToolCallTrace",
    "ToolRequest",
    "Trace",
    "VerdictTrace",
]


@dataclass(frozen=True)
class ToolRequest:
    """A tool call as the model asked for it."""

    id: str
    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class PolicyNote:
    rule: str
    detail: str


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
    policy: tuple[PolicyNote, ...] = ()
    """A reply's decisions made on the model's behalf (the local adapter's turn policy)."""


@dataclass(frozen=True)
class CallTrace:
    """One model call: the record (who asked, what it cost) and what was said, parsed for display."""

    step: int
    """The call's number in the run (0-based, the order calls were recorded; `replay --from-step` counts these)."""
    record: CallRecord
    tools: tuple[str, ...]
    tool_choice: str | None
    messages: tuple[MessageView, ...]
    reply: MessageView

    @property
    def agent(self) -> str:
        return self.record.agent

    @property
    def purpose(self) -> str:
        return self.record.purpose

    @property
    def model(self) -> str:
        return self.record.model

    @property
    def path(self) -> str:
        """The delegation path the call ran in ("" for the top agent)."""
        return self.record.delegation

    @property
    def started(self) -> float:
        return self.record.started

    @property
    def seconds(self) -> float:
        return self.record.seconds

    @property
    def ended(self) -> float:
        return self.started + self.seconds

    @property
    def input_tokens(self) -> int:
        return self.record.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.record.output_tokens

    @property
    def cache_read_tokens(self) -> int:
        return self.record.cache_read_tokens

    @property
    def cache_write_tokens(self) -> int:
        return self.record.cache_write_tokens

    @property
    def tokens(self) -> TokenCounts:
        return TokenCounts(self.input_tokens, self.output_tokens, self.cache_write_tokens, self.cache_read_tokens)

    @property
    def cost_usd(self) -> float:
        return self.record.cost_usd


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
    merge: str | None = None
    """A delegation with a workspace of its own: merged, conflict or not merged (None: it shared the main one)."""
    changes: int | None = None
    """With `merge`: how many files its branch added, modified or deleted."""

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
    def tokens(self) -> TokenCounts:
        """This context's own calls (like `cost_usd`)."""
        return TokenCounts.total(c.tokens for c in self.calls)

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
    method: str


@dataclass(frozen=True)
class EventTrace:
    """One recorded progress event, its facts as fields (graphs/progress.py's `ProgressEvent`)."""

    at: float
    kind: str
    agent: str
    depth: int
    detail: str
    call_id: str | None = None
    decision: str | None = None
    """verdict: approve or revise."""
    by: str | None = None
    """verdict: reviewer, or evidence when the evidence check overruled the reviewer."""
    status: str | None = None
    """returned: approved or unapproved."""
    merge: str | None = None
    """returned: merged, conflict or not merged (a delegation with a workspace of its own)."""
    changes: int | None = None
    summary: str | None = None
    """permission: what was asked."""
    answer: str | None = None
    """permission: allow, deny or always."""


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
    def tokens(self) -> TokenCounts:
        return TokenCounts.total(c.tokens for c in self.calls())

    @property
    def cost_usd(self) -> float:
        return self.root.total_cost_usd

    @property
    def ended(self) -> float:
        """When the last thing happened (the run's finish, else its last call or event)."""
        times = [self.started, *(c.ended for c in self.calls()), *(e.at for e in self.events)]
        return max([*times, self.finished or 0.0])
