"""What actually happened in a run, as one tree: `orchestrate show` and the HTML trace read this.

`model` holds the frozen tree, `records` reads stored model calls into it, `fold` builds it from a run's
records (purely: no I/O but `load_trace`), and one module per renderer turns it into a rich tree, JSON,
Mermaid or a self-contained HTML page.
"""

from orchestrator.trace.fold import build_trace, load_trace
from orchestrator.trace.model import (
    CallTrace,
    EventTrace,
    MessageView,
    NodeTrace,
    RouteTrace,
    ToolCallTrace,
    ToolRequest,
    Trace,
    VerdictTrace,
)
from orchestrator.trace.render_html import render_html
from orchestrator.trace.render_json import render_json, trace_dict
from orchestrator.trace.render_mermaid import render_mermaid
from orchestrator.trace.render_tree import render_tree

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
    "render_html",
    "render_json",
    "render_mermaid",
    "render_tree",
    "trace_dict",
]
