"""The run's delegation graph as a Mermaid flowchart (`show --format mermaid`)."""

from __future__ import annotations

from orchestrator.trace.model import NodeTrace, Trace
from orchestrator.trace.render_tree import short

__all__ = ["render_mermaid"]


def _mermaid_text(text: str) -> str:
    """Mermaid label text: every character that could end or format the label as an entity code."""
    return "".join(f"#{ord(ch)};" if ch in '#"<>&`[]{}()|' else ch for ch in text)


def _verdict_summary(node: NodeTrace) -> str:
    if not node.verdicts:
        return node.status
    return " → ".join(v.decision for v in node.verdicts) + f" ({node.status})"


def _mermaid_node(index: int, node: NodeTrace) -> str:
    title = f"{node.agent}: {short(node.title, 40)}" if node.title else f"{node.agent} (top)"
    lines = [title, f"{node.model or 'no model call'} · ${node.total_cost_usd:.4f}", _verdict_summary(node)]
    return f'    n{index}["{"<br/>".join(_mermaid_text(line) for line in lines)}"]'


_MERMAID_CLASSES = {
    "approved": "ok",
    "completed": "ok",
    "unapproved": "warn",
    "unreadable": "warn",
    "running": "warn",
    "unfinished": "warn",
}


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
