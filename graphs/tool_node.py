"""Run an agent's non-Task tool calls and hand back results, evidence and file bookkeeping.

Each call is checked first (offered to this agent? valid arguments? permitted, or asked and approved?)
and only then are the permitted ones run, in order. Everything the model can fix (an unknown tool, a bad
argument, a refusal, a ToolError from inside a tool) becomes an error tool result it can act on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from pydantic import BaseModel, ValidationError

from orchestrator.agent_spec import AgentSpec
from orchestrator.errors import ToolError
from orchestrator.file_mentions import in_workspace
from orchestrator.graphs.context import current_context, thread_id
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.model_call import call_model
from orchestrator.graphs.permission_gate import check_permission, summarize_call
from orchestrator.graphs.progress import emit
from orchestrator.graphs.prompts import TASK_ALIASES
from orchestrator.graphs.state import AgentState, ToolEvent
from orchestrator.secrets import mask_secrets
from orchestrator.tools.base import ToolContext

__all__ = ["MAX_RESULT_CHARS", "cap_result", "run_tools"]

_EVIDENCE_CHARS = 200
MAX_RESULT_CHARS = 50_000
"""A tool result longer than this reaches the model cut in the middle, the cut marked (tools cap their own
output lower; this bounds whatever gets through)."""


def cap_result(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    """`text`, or its start and end around a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit // 2], text[-(limit // 2) :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut: the result exceeded {limit} ...]\n{tail}"


@dataclass(frozen=True)
class _Checked:
    """A tool call after the checks: its validated arguments, or why it will not run."""

    call: ToolCall
    args: BaseModel | None
    refusal: str | None
    denied: bool = False
    """The refusal is a permission's (not a mistake in the call): the run's outcome reports it."""


def _validation_text(name: str, exc: ValidationError) -> str:
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
    return f"Error: invalid arguments for {name}: {problems}"


async def check(call: ToolCall, spec: AgentSpec, depth: int, deps: Deps) -> _Checked:
    """Offered, valid and permitted? May interrupt the run to ask the user."""
    name = call["name"]
    if name not in deps.tools or (spec.tools is not None and name not in spec.tools):
        return _Checked(call, None, f"Error: tool {name!r} is not available to {spec.name}.")
    if not isinstance(call["args"], dict):
        return _Checked(
            call, None, f"Error: invalid arguments for {name}: expected a JSON object, got {call['args']!r:.80}"
        )
    try:
        args = deps.tools[name].args.model_validate(call["args"])
    except ValidationError as exc:
        return _Checked(call, None, _validation_text(name, exc))
    refusal = await check_permission(
        name, call["args"], agent=spec.name, depth=depth, call_id=str(call["id"]), deps=deps
    )
    return _Checked(call, args, refusal, denied=refusal is not None)


SIDE_EFFECTS = frozenset({"Bash", "Write", "Edit"})
"""Tools whose calls are journaled in the run store, so a resume never runs one twice."""
INTERRUPTED = (
    "Error: this {tool} call was already running when the run was stopped (a kill or a crash); it may have "
    "partly run. It was not run again: check what it did before you decide to run it once more."
)


async def execute(checked: _Checked, ctx: ToolContext, deps: Deps) -> tuple[str, bool]:
    """(result text, ok) of one checked call. A side-effecting call runs at most once per run: on resume
    its recorded result comes back, and one that was in flight at the stop is reported, not re-run."""
    if checked.args is None or checked.refusal is not None:
        return checked.refusal or "Error: not run.", False
    name, call_id, run_id = checked.call["name"], str(checked.call["id"]), thread_id()
    if deps.ledger is None or not run_id or name not in SIDE_EFFECTS:
        return await _run(checked, ctx, deps)
    store = deps.ledger.store
    journal = await asyncio.to_thread(store.tool_call, run_id, call_id)
    if journal is not None:
        return (journal.result, journal.ok) if journal.finished else (INTERRUPTED.format(tool=name), False)
    await asyncio.to_thread(store.tool_started, run_id, call_id)
    text, ok = await _run(checked, ctx, deps)
    await asyncio.to_thread(store.tool_finished, run_id, call_id, cap_result(mask_secrets(text)), ok)
    return text, ok


async def _run(checked: _Checked, ctx: ToolContext, deps: Deps) -> tuple[str, bool]:
    assert checked.args is not None
    try:
        return await deps.tools[checked.call["name"]].run(checked.args, ctx), True
    except ToolError as exc:
        return f"Error: {exc}", False
    except OSError as exc:  # the file system refused something the tool did not foresee: the model can adapt
        return f"Error: {checked.call['name']} failed: {exc.strerror or exc}", False


def summarizer(deps: Deps, agent: str) -> Callable[[str, str], Awaitable[str]]:
    """WebFetch's cheap-model step: answer the prompt from the fetched page."""

    async def summarize(page: str, prompt: str) -> str:
        system = SystemMessage("Answer the request using only the web page below. Be concise and concrete.")
        reply = await call_model(
            deps.chat_model("haiku"),
            [system, HumanMessage(f"{prompt}\n\n---\n{page}")],
            deps=deps,
            agent=agent,
            model="haiku",
            purpose="summarize",
        )
        return reply.text

    return summarize


def _event(call: ToolCall, text: str, ok: bool, workspace: Path) -> ToolEvent:
    args = ", ".join(f"{k}={str(v)[:60]!r}" for k, v in call["args"].items() if k != "content")
    event = ToolEvent(tool=call["name"], args=args, ok=ok, result=text[:_EVIDENCE_CHARS].replace("\n", " "))
    if isinstance(path := call["args"].get("file_path"), str):
        event["path"] = in_workspace(path, workspace)
    return event


def _context(state: AgentState, spec: AgentSpec, deps: Deps) -> ToolContext:
    seen, policy = state.get("files_read", {}), deps.run_policy()
    return ToolContext(
        workspace=deps.run_workspace(), files_read=set(seen), file_versions=dict(seen),
        provider=deps.provider.name, summarize=summarizer(deps, spec.name), sandbox=policy.sandbox,
        sandbox_network=policy.sandbox_network,
    )  # fmt: skip


async def run_tools(state: AgentState, *, deps: Deps) -> dict[str, Any]:
    spec = deps.agents[state["agent"]]
    last = state["messages"][-1]
    calls = [c for c in last.tool_calls if c["name"] not in TASK_ALIASES] if isinstance(last, AIMessage) else []
    if calls and (branch := current_context().branch) is not None:
        await branch.ready()  # a writing delegation's first tool call makes its branch (graphs/isolated.py)
    ctx = _context(state, spec, deps)
    messages, events = [], []
    with structlog.contextvars.bound_contextvars(agent=spec.name, node="tools"):
        checked = [await check(call, spec, state["depth"], deps) for call in calls]  # all asks before any run
        for item in checked:
            emit("tool", spec.name, depth=state["depth"], detail=item.call["name"], call_id=item.call["id"])
            if item.denied:
                what = summarize_call(item.call["name"], item.call["args"])
                emit("denied", spec.name, depth=state["depth"], detail=what, tool=item.call["name"],
                     reason=str(item.refusal), call_id=item.call["id"])  # fmt: skip
            text, ok = await execute(item, ctx, deps)
            text = cap_result(mask_secrets(text))
            status = "success" if ok else "error"
            messages.append(ToolMessage(text, tool_call_id=item.call["id"], name=item.call["name"], status=status))
            events.append(_event(item.call, text, ok, ctx.workspace))
    return {
        "messages": messages,
        "tool_log": events,
        "files_read": ctx.file_versions,
        "files_changed": ctx.files_changed,
    }
