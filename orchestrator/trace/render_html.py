"""A run's trace as one self-contained HTML page: delegation tree, timeline, and each node's messages.

Why one file: it is attached to bug reports and opened offline, so it loads nothing (inline CSS and JS,
and a Content-Security-Policy that forbids every fetch, so even a payload that slipped through escaping
could not reach the network). Everything in it that a model or a tool produced is HTML-escaped; long
payloads are collapsed in <details>. The tree and the timeline are rendered here, server side; the
script only switches which node's details are shown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from orchestrator.trace.model import CallTrace, MessageView, NodeTrace, ToolCallTrace, Trace, VerdictTrace

__all__ = ["render_html"]

_PREVIEW = 240
"""Payloads longer than this are collapsed behind a preview of this many characters."""

_CSS = """
:root { --fg:#1d2330; --muted:#5f6b7a; --line:#d9dee5; --bg:#f6f7f9; --card:#fff; --accent:#2f6fdb; }
* { box-sizing: border-box; }
body {
  margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg);
  background:var(--bg);
}
header { padding:16px 24px; background:var(--card); border-bottom:1px solid var(--line); }
h1 { font-size:20px; margin:0 0 6px; } h2 { font-size:15px; margin:0 0 10px; } h3 { font-size:16px; margin:0 0 8px; }
h4 { font-size:13px; margin:14px 0 6px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
code, pre { font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace; font-size:12.5px; }
pre {
  white-space:pre-wrap; word-break:break-word; margin:4px 0; background:#f3f5f8; padding:6px 8px; border-radius:4px;
}
.task { margin:4px 0 10px; font-size:15px; }
.stats { display:flex; flex-wrap:wrap; gap:6px 22px; margin:0; color:var(--muted); }
.stats b { color:var(--fg); font-weight:600; }
main { display:grid; grid-template-columns:minmax(300px,1fr) minmax(420px,2fr); gap:16px; padding:16px 24px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; min-width:0; }
.details-panel { grid-column:1 / -1; }
.badge {
  display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; background:#eceff3;
}
.ok { background:#e3f6e3; color:#1b5e20;}
.warn { background:#fff4d6; color:#8a5a00;}
.bad { background:#fde2e1; color:#b71c1c; }
ul.dtree, ul.dtree ul { list-style:none; margin:0; padding-left:18px; } ul.dtree { padding-left:0; }
ul.dtree li { margin:6px 0; position:relative; }
ul.dtree ul li::before {
  content:""; position:absolute; left:-12px; top:0; bottom:50%; border-left:1px solid var(--line);
  border-bottom:1px solid var(--line); width:10px;
}
.dnode {
  display:block; width:100%; text-align:left; border:1px solid var(--line); border-radius:6px;
  background:var(--card); padding:6px 10px; cursor:pointer; font:inherit; color:inherit;
}
.dnode:hover { border-color:var(--accent);}
.dnode.selected { border-color:var(--accent); box-shadow:0 0 0 2px #2f6fdb33; }
.dnode .agent { font-weight:600; } .dnode .title { color:var(--fg); }
.dnode .meta { display:block; color:var(--muted); font-size:12px; margin-top:2px; }
.tl-axis {
  position:relative; height:18px; margin-left:200px; color:var(--muted); font-size:11px;
  border-bottom:1px solid var(--line);
}
.tl-axis span { position:absolute; transform:translateX(-50%); white-space:nowrap; }
.tl-axis span:first-child { transform:none; } .tl-axis span:last-child { transform:translateX(-100%); }
.tl-row { display:flex; align-items:center; height:30px; border-bottom:1px dashed #edf0f3; cursor:pointer; }
.tl-row:hover, .tl-row.selected { background:#f1f5fd; }
.tl-label {
  width:200px; flex:none; padding-right:8px; overflow:hidden; white-space:nowrap; text-overflow:ellipsis;
  font-size:12.5px;
}
.tl-track { position:relative; flex:1; height:100%; }
.tl-span { position:absolute; top:8px; height:14px; background:#e8ecf2; border-radius:3px; }
.tl-bar { position:absolute; top:10px; height:10px; min-width:3px; border-radius:2px; background:var(--accent); }
.tl-bar.review { background:#8e44ad; } .tl-bar.summarize { background:#16a085; }
.tl-tick { position:absolute; top:6px; width:2px; height:18px; background:#37474f; }
.tl-mark {
  position:absolute; top:9px; width:12px; height:12px; transform:translateX(-6px) rotate(45deg);
  border:1px solid #fff;
}
.tl-mark.approve { background:#2e7d32; } .tl-mark.revise { background:#ef6c00; }
.legend { display:flex; flex-wrap:wrap; gap:14px; margin-top:10px; color:var(--muted); font-size:12px; }
.legend i {
  display:inline-block; width:14px; height:10px; margin-right:5px; vertical-align:middle; border-radius:2px;
}
.panel[hidden] { display:none; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; }
details > summary { cursor:pointer; color:var(--accent); }
details.call { border:1px solid var(--line); border-radius:6px; padding:6px 10px; margin:6px 0; }
details.call > summary { color:var(--fg); }
.msg { border-left:3px solid var(--line); padding:2px 0 2px 10px; margin:8px 0; }
.msg .role { font-size:11px; font-weight:700; text-transform:uppercase; color:var(--muted); }
.msg.role-human { border-color:#2f6fdb;}
.msg.role-ai { border-color:#2e7d32;}
.msg.role-tool { border-color:#b7791f; }
.msg.role-system { border-color:#9e9e9e; }
ol.verdicts { padding-left:20px; margin:0; } ul.tools { padding-left:18px; margin:0; }
.muted { color:var(--muted); }
"""

_JS = """
(function () {
  var panels = document.querySelectorAll('.panel');
  var clickable = document.querySelectorAll('[data-node]');
  function select(id) {
    panels.forEach(function (panel) { panel.hidden = panel.id !== 'panel-' + id; });
    clickable.forEach(function (el) { el.classList.toggle('selected', el.getAttribute('data-node') === id); });
  }
  clickable.forEach(function (el) {
    el.addEventListener('click', function () { select(el.getAttribute('data-node')); });
  });
  select('n0');
  document.body.setAttribute('data-ready', '1');
})();
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _money(value: float) -> str:
    return f"${value:.4f}"


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} s"


def _when(epoch: float | None) -> str:
    return "?" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _class(status: str) -> str:
    if status in ("completed", "approved", "approve"):
        return "ok"
    return "bad" if status in ("failed", "error", "refused", "budget_exceeded") else "warn"


def _badge(status: str) -> str:
    return f'<span class="badge {_class(status)}">{_e(status)}</span>'


def _payload(text: str, *, collapsed: bool = False) -> str:
    """Text in a <pre>, behind a one-line preview when long (or always, for system prompts)."""
    if not collapsed and len(text) <= _PREVIEW:
        return f"<pre>{_e(text)}</pre>"
    preview = " ".join(text[:_PREVIEW].split())
    more = f"{_e(preview)}… ({len(text):,} characters)"
    return f"<details><summary>{more}</summary><pre>{_e(text)}</pre></details>"


def _facts(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are already HTML."""
    return '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


# ---- header ----


def _header(trace: Trace) -> str:
    calls = trace.calls()
    stats = [
        ("cost", _money(trace.cost_usd)), ("tokens", trace.tokens.describe()),
        ("model calls", str(len(calls))), ("duration", _seconds(trace.ended - trace.started)),
        ("started", _when(trace.started)),
    ]  # fmt: skip
    if trace.route:
        r = trace.route
        stats.insert(0, ("route", f"{r.agent} ({r.confidence:.4f}, {r.method or '?'})"))
    spans = "".join(f"<span>{_e(k)} <b>{_e(v)}</b></span>" for k, v in stats)
    return (
        f"<header><h1>Run <code>{_e(trace.run_id)}</code> {_badge(trace.status)}</h1>"
        f'<p class="task">{_e(trace.task)}</p><p class="stats">{spans}</p></header>'
    )


# ---- delegation tree ----


def _verdict_line(node: NodeTrace) -> str:
    return " → ".join(v.decision for v in node.verdicts)


def _tree_item(node: NodeTrace, ids: Mapping[int, str]) -> str:
    title = f': <span class="title">{_e(node.title)}</span>' if node.title else ""
    verdicts = f" · {_e(_verdict_line(node))}" if node.verdicts else ""
    meta = f"{_e(node.model or 'no model call')} · {_money(node.total_cost_usd)} · {_seconds(node.seconds)}{verdicts}"
    button = (
        f'<button type="button" class="dnode" data-node="{ids[id(node)]}"><span class="agent">{_e(node.agent)}'
        f'</span>{title} {_badge(node.status)}<span class="meta">{meta}</span></button>'
    )
    children = "".join(_tree_item(child, ids) for child in node.children)
    return f"<li>{button}{f'<ul>{children}</ul>' if children else ''}</li>"


# ---- timeline ----


class _Scale:
    """Epoch seconds -> percent of the run's width."""

    def __init__(self, trace: Trace) -> None:
        self.start = trace.started
        self.width = max(trace.ended - trace.started, 1e-6)

    def at(self, epoch: float) -> float:
        return max(0.0, min(100.0, 100 * (epoch - self.start) / self.width))

    def style(self, start: float, end: float) -> str:
        left = self.at(start)
        return f"left:{left:.3f}%;width:{max(self.at(end) - left, 0.25):.3f}%"


def _bar(call: CallTrace, scale: _Scale) -> str:
    tip = f"step {call.step} · {call.purpose} · {call.agent} · {call.model} · {_seconds(call.seconds)}"
    style = scale.style(call.started, call.ended)
    return f'<div class="tl-bar {_e(call.purpose)}" style="{style}" title="{_e(tip)} · {_money(call.cost_usd)}"></div>'


def _tick(tool: ToolCallTrace, scale: _Scale) -> str:
    if tool.at is None:
        return ""
    return f'<div class="tl-tick" style="left:{scale.at(tool.at):.3f}%" title="{_e(tool.name)}"></div>'


def _mark(verdict: VerdictTrace, scale: _Scale) -> str:
    if verdict.at is None:
        return ""
    tip = f"round {verdict.round}: {verdict.decision} - {verdict.feedback}"
    kind = "approve" if verdict.decision == "approve" else "revise"
    return f'<div class="tl-mark {kind}" style="left:{scale.at(verdict.at):.3f}%" title="{_e(tip[:300])}"></div>'


def _row(node: NodeTrace, key: str, scale: _Scale) -> str:
    label = f"{node.agent}: {node.title}" if node.title else f"{node.agent} (top)"
    indent = f"padding-left:{8 * node.depth}px"
    parts = [f'<div class="tl-span" style="{scale.style(node.started, node.ended or node.started)}"></div>']
    parts += [_bar(call, scale) for call in node.calls]
    parts += [_tick(tool, scale) for tool in node.tools] + [_mark(v, scale) for v in node.verdicts]
    return (
        f'<div class="tl-row" data-node="{key}"><div class="tl-label" style="{indent}" title="{_e(label)}">'
        f'{_e(label)}</div><div class="tl-track">{"".join(parts)}</div></div>'
    )


def _axis(scale: _Scale) -> str:
    ticks = [0, 25, 50, 75, 100]
    return '<div class="tl-axis">' + "".join(
        f'<span style="left:{t}%">{scale.width * t / 100:.2f} s</span>' for t in ticks
    ) + "</div>"  # fmt: skip


_LEGEND = (
    '<div class="legend"><span><i style="background:#e8ecf2"></i>context alive</span>'
    '<span><i style="background:#2f6fdb"></i>model turn</span><span><i style="background:#8e44ad"></i>review</span>'
    '<span><i style="background:#37474f;width:3px"></i>tool call</span>'
    '<span><i style="background:#2e7d32"></i>approve</span><span><i style="background:#ef6c00"></i>revise</span></div>'
)


def _timeline(trace: Trace, ids: Mapping[int, str]) -> str:
    scale = _Scale(trace)
    rows = "".join(_row(node, ids[id(node)], scale) for node in trace.nodes())
    return f"{_axis(scale)}{rows}{_LEGEND}"


# ---- details of one node ----


def _message(message: MessageView) -> str:
    head = message.role + (f" · {message.name}" if message.name else "") + (
        f" · {message.status}" if message.status and message.status != "success" else ""
    )  # fmt: skip
    body = _payload(message.text, collapsed=message.role == "system") if message.text else ""
    calls = "".join(
        f"<div>→ <code>{_e(r.name)}</code>{_payload(json.dumps(dict(r.args), ensure_ascii=False, indent=1))}</div>"
        for r in message.tool_calls
    )
    return f'<div class="msg role-{_e(message.role)}"><div class="role">{_e(head)}</div>{body}{calls}</div>'


def _call(call: CallTrace) -> str:
    summary = (
        f"step {call.step} · {_e(call.purpose)} · {_e(call.agent)} · {_e(call.model)} · "
        f"{call.tokens.describe()} · {_money(call.cost_usd)} · {_seconds(call.seconds)}"
    )
    facts = _facts([
        ("tools offered", _e(", ".join(call.tools) or "none")),
        ("tool choice", _e(call.tool_choice or "auto")),
        ("request hash", f"<code>{_e(call.record.request_hash)}</code>"),
        ("started", _e(_when(call.started))),
    ])  # fmt: skip
    last = _message(call.messages[-1]) if call.messages else ""
    return (
        f'<details class="call"><summary>{summary}</summary>{facts}<h4>Last message of the request</h4>{last}'
        f"<h4>Reply</h4>{_message(call.reply)}</details>"
    )


def _tool(tool: ToolCallTrace) -> str:
    mark = "✓" if tool.ok else "?" if tool.ok is None else "✗"
    args = json.dumps(dict(tool.args), ensure_ascii=False, indent=1)
    result = _payload(tool.result) if tool.result is not None else '<p class="muted">no result recorded</p>'
    return f"<li>{mark} <code>{_e(tool.name)}</code> (step {tool.step}){_payload(args)}{result}</li>"


def _verdict(verdict: VerdictTrace) -> str:
    by = " (by the evidence check)" if verdict.by == "evidence" else ""
    return f"<li>round {verdict.round}: {_badge(verdict.decision)}{_e(by)} {_payload(verdict.feedback)}</li>"


def _conversation(node: NodeTrace) -> str:
    """The context as its last turn saw it, plus that turn's reply: every message once."""
    turns = [c for c in node.calls if c.purpose == "turn"]
    if not turns:
        return '<p class="muted">no model turn recorded</p>'
    last = turns[-1]
    return "".join(_message(m) for m in [*last.messages, last.reply])


def _node_facts(node: NodeTrace) -> str:
    rows = [
        ("status", _badge(node.status)), ("model", _e(node.model or "none")),
        ("tokens", _e(node.tokens.describe())),
        ("cost", _e(f"{_money(node.cost_usd)} own, {_money(node.total_cost_usd)} with its delegations")),
        ("duration", _e(_seconds(node.seconds))), ("started", _e(_when(node.started))),
    ]  # fmt: skip
    if node.id:
        rows.append(("Task call", f"<code>{_e(node.id)}</code> (from step {_e(node.issued_by)})"))
    if node.merge is not None:
        rows.append(("branch", _e(f"{node.merge}; {node.changes} file(s) added, modified or deleted")))
    return _facts(rows)


def _panel(node: NodeTrace, key: str) -> str:
    title = f"{node.agent}: {node.title}" if node.title else f"{node.agent} (top agent)"
    parts = [f"<h3>{_e(title)}</h3>", _node_facts(node), f"<h4>{'Brief' if node.id else 'Task'}</h4>"]
    parts.append(_payload(node.brief))
    if node.error:
        parts.append(f'<h4>Error</h4><pre class="bad">{_e(node.error)}</pre>')
    if node.verdicts:
        parts.append(f'<h4>Review verdicts</h4><ol class="verdicts">{"".join(map(_verdict, node.verdicts))}</ol>')
    if node.tools:
        parts.append(f'<h4>Tool calls</h4><ul class="tools">{"".join(map(_tool, node.tools))}</ul>')
    parts.append(f"<h4>Model calls ({len(node.calls)})</h4>{''.join(map(_call, node.calls))}")
    parts.append(f"<h4>Messages</h4>{_conversation(node)}")
    return f'<article class="panel" id="panel-{key}" hidden>{"".join(parts)}</article>'


def _outcome(trace: Trace) -> str:
    if trace.error:
        return f'<h4>Run error</h4><pre class="bad">{_e(trace.error)}</pre>'
    return f"<h4>Final answer</h4>{_payload(trace.final)}" if trace.final else ""


def render_html(trace: Trace) -> str:
    """The whole page; open it from disk, no server and no network needed."""
    nodes = trace.nodes()
    ids = {id(node): f"n{i}" for i, node in enumerate(nodes)}
    panels = "".join(_panel(node, ids[id(node)]) for node in nodes)
    body: list[Any] = [
        _header(trace), "<main>",
        f'<section class="tree-panel"><h2>Delegation tree</h2><ul class="dtree">{_tree_item(trace.root, ids)}</ul>'
        f"{_outcome(trace)}</section>",
        f'<section class="timeline-panel"><h2>Timeline</h2>{_timeline(trace, ids)}</section>',
        f'<section class="details-panel"><h2>Details <span class="muted">(click a node)</span></h2>{panels}</section>',
        "</main>",
    ]  # fmt: skip
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>orchestrate run {_e(trace.run_id)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}<script>{_JS}</script></body></html>\n"
    )
