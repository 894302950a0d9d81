"""The trace as plain JSON-able data (`show --format json`), with per-node and per-run totals."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from orchestrator.pricing import TokenCounts
from orchestrator.trace.model import CallTrace, NodeTrace, Trace

__all__ = ["render_json", "trace_dict"]


def _call_dict(call: CallTrace) -> dict[str, Any]:
    record = call.record
    return {
        "step": call.step, "agent": call.agent, "purpose": call.purpose, "model": call.model, "path": call.path,
        "started": call.started, "seconds": call.seconds, **_tokens(call.tokens), "cost_usd": call.cost_usd,
        "request_hash": record.request_hash, "tools": list(call.tools), "tool_choice": call.tool_choice,
        "messages": [asdict(m) for m in call.messages], "reply": asdict(call.reply),
    }  # fmt: skip


def _tokens(tokens: TokenCounts) -> dict[str, int]:
    """The token fields, named as in a run's `usage` (one definition: pricing.TokenCounts)."""
    return {
        "input_tokens": tokens.input, "output_tokens": tokens.output, "cache_read_tokens": tokens.cache_read,
        "cache_write_tokens": tokens.cache_write,
    }  # fmt: skip


def _fields(node: NodeTrace) -> dict[str, Any]:
    return {name: getattr(node, name) for name in NodeTrace.__dataclass_fields__}


def _node_dict(node: NodeTrace) -> dict[str, Any]:
    plain = {k: v for k, v in _fields(node).items() if k not in ("children", "calls", "tools", "verdicts")}
    return {
        **plain, "model": node.model, "cost_usd": round(node.cost_usd, 6),
        "total_cost_usd": round(node.total_cost_usd, 6), **_tokens(node.tokens), "seconds": node.seconds,
        "calls": [_call_dict(c) for c in node.calls], "tools": [asdict(t) for t in node.tools],
        "verdicts": [asdict(v) for v in node.verdicts], "children": [_node_dict(c) for c in node.children],
    }  # fmt: skip


def trace_dict(trace: Trace) -> dict[str, Any]:
    """The trace as plain JSON-able data, with per-node and per-run totals."""
    calls = trace.calls()
    totals = {
        "cost_usd": round(trace.cost_usd, 6), "calls": len(calls), "seconds": round(trace.ended - trace.started, 3),
        **_tokens(trace.tokens),
    }  # fmt: skip
    return {
        "run_id": trace.run_id, "task": trace.task, "status": trace.status, "started": trace.started,
        "finished": trace.finished, "final": trace.final, "error": trace.error, "options": dict(trace.options),
        "route": asdict(trace.route) if trace.route else None, "totals": totals, "root": _node_dict(trace.root),
        "events": [asdict(e) for e in trace.events],
    }  # fmt: skip


def render_json(trace: Trace) -> str:
    return json.dumps(trace_dict(trace), ensure_ascii=False, indent=1, default=str)
