"""The trace as a rich tree (`show`, the default on a terminal): route, each context's calls with their
tools, delegations and verdicts. Every label is a `Text`, so nothing a model wrote is read as markup."""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from orchestrator.pricing import PriceTable, load_prices
from orchestrator.trace.model import CallTrace, NodeTrace, ToolCallTrace, Trace, VerdictTrace

__all__ = ["render_tree", "short"]


def short(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _duration(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.2f} s"


_STATUS_STYLE = {"completed": "green", "approved": "green", "approve": "green", "revise": "yellow"}


def _styled(status: str) -> tuple[str, str]:
    return status, _STATUS_STYLE.get(status, "red" if status in ("failed", "error", "refused") else "yellow")


def _call_label(call: CallTrace) -> Text:
    tokens = call.tokens.describe()
    said = call.reply.text or ", ".join(r.name for r in call.reply.tool_calls)
    return Text.assemble(
        (f"step {call.step} ", "bold"), f"{call.purpose} ", (call.agent, "cyan"), f"  {call.model}  {tokens}  ",
        f"${call.cost_usd:.4f}  {_duration(call.seconds)}  ", (short(said, 80), "dim"),
    )  # fmt: skip


def _tool_label(tool: ToolCallTrace) -> Text:
    args = ", ".join(f"{k}={short(str(v), 40)}" for k, v in tool.args.items() if k != "content")
    mark = ("✓", "green") if tool.ok else ("?", "yellow") if tool.ok is None else ("✗", "red")
    return Text.assemble(mark, " ", (tool.name, "bold"), f"({args})  ", (short(tool.result or "", 80), "dim"))


def _verdict_label(verdict: VerdictTrace) -> Text:
    by = " (evidence check)" if verdict.by == "evidence" else ""
    return Text.assemble(f"verdict round {verdict.round}: ", _styled(verdict.decision), f"{by} {verdict.feedback}")


_MERGE_STYLE = {"merged": "green", "conflict": "bold red", "not merged": "yellow"}


def _node_label(node: NodeTrace) -> Text:
    head = Text.assemble(("↳ " if node.id else "", ""), (node.agent, "bold cyan"))
    if node.title:
        head.append(f": {node.title}")
    head.append("  ")
    head.append(*_styled(node.status))
    if node.merge is not None:
        files = f"{node.changes} file{'s' * (node.changes != 1)}"
        head.append(f"  {node.merge} ({files})", _MERGE_STYLE.get(node.merge, ""))
    tokens = node.tokens.describe()
    head.append(f"  {node.model}  {tokens}  ${node.total_cost_usd:.4f}  {_duration(node.seconds)}", "dim")
    return head


def _add_call(branch: Tree, node: NodeTrace, call: CallTrace) -> None:
    leaf = branch.add(_call_label(call))
    for note in call.reply.policy:
        leaf.add(Text.assemble(("policy ", "magenta"), (note.rule, "bold"), f": {short(note.detail, 120)}"))
    for tool in (t for t in node.tools if t.step == call.step):
        leaf.add(_tool_label(tool))
    for verdict in (v for v in node.verdicts if v.step == call.step):
        leaf.add(_verdict_label(verdict))
    for child in (c for c in node.children if c.issued_by == call.step):
        _add_node(branch, child)


def _add_node(parent: Tree, node: NodeTrace) -> None:
    branch = parent.add(_node_label(node))
    if node.id:
        branch.add(Text.assemble(("brief: ", "bold"), short(node.brief, 300)))
    if node.error:
        branch.add(Text(f"error: {short(node.error, 300)}", "red"))
    for call in node.calls:
        _add_call(branch, node, call)
    steps = {c.step for c in node.calls}
    for child in (c for c in node.children if c.issued_by not in steps):
        _add_node(branch, child)
    for verdict in (v for v in node.verdicts if v.step is None):
        branch.add(_verdict_label(verdict))


def render_tree(trace: Trace, prices: PriceTable | None = None) -> Tree:
    """The run as a rich tree: route, each context's calls with their tools, delegations and verdicts; the
    models `prices` (default: the bundled table) has no price for are named as unpriced."""
    prices = prices or load_prices()
    calls = trace.calls()
    head = Text.assemble(("run ", "bold"), trace.run_id, "  ", _styled(trace.status))
    head.append(f"  ${trace.cost_usd:.4f}  {trace.tokens.describe()}  {len(calls)} calls  ")
    head.append(_duration(trace.ended - trace.started))
    if unpriced := sorted({c.model for c in calls if not prices.priced(c.model)}):
        head.append(f"  unpriced (counted $0): {', '.join(unpriced)}", "yellow")
    tree = Tree(head)
    tree.add(Text.assemble(("task: ", "bold"), short(trace.task, 200)))
    if trace.route:
        r = trace.route
        tree.add(Text(f"route → {r.agent} (confidence {r.confidence:.4f}, {r.method or '?'}): {short(r.reason)}"))
    _add_node(tree, trace.root)
    if trace.final:
        tree.add(Text.assemble(("final: ", "bold green"), short(trace.final, 300)))
    if trace.error:
        tree.add(Text(f"error: {trace.error}", "red"))
    return tree
