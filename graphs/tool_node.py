"""Run an agent's non-Task tool calls and hand back results, evidence and file bookkeeping.

Everything the model can fix (an unknown tool, a bad argument, a ToolError from inside a tool) becomes
an error tool result it can read and act on; the run goes on.
"""

from __future__ import annotations

from typing import Any

import structlog
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from pydantic import ValidationError

from orchestrator.agent_spec import AgentSpec
from orchestrator.errors import ToolError
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.progress import emit
from orchestrator.graphs.prompts import TASK_ALIASES
from orchestrator.graphs.state import AgentState, ToolEvent
from orchestrator.tools.base import ToolContext

__all__ = ["run_tools"]

_EVIDENCE_CHARS = 200


def _allowed(spec: AgentSpec, name: str, deps: Deps) -> bool:
    return name in deps.tools and (spec.tools is None or name in spec.tools)


def _validation_text(name: str, exc: ValidationError) -> str:
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
    return f"Invalid arguments for {name}: {problems}"


async def run_one(call: ToolCall, spec: AgentSpec, ctx: ToolContext, deps: Deps) -> tuple[str, bool]:
    """Run one tool call; (result text, ok)."""
    name = call["name"]
    if not _allowed(spec, name, deps):
        return f"Error: tool {name!r} is not available to {spec.name}.", False
    tool = deps.tools[name]
    try:
        args = tool.args.model_validate(call["args"])
        return await tool.run(args, ctx), True
    except ValidationError as exc:
        return f"Error: {_validation_text(name, exc)}", False
    except ToolError as exc:
        return f"Error: {exc}", False


def _event(call: ToolCall, text: str, ok: bool) -> ToolEvent:
    args = ", ".join(f"{k}={str(v)[:60]!r}" for k, v in call["args"].items() if k != "content")
    return ToolEvent(tool=call["name"], args=args, ok=ok, result=text[:_EVIDENCE_CHARS].replace("\n", " "))


async def run_tools(state: AgentState, *, deps: Deps) -> dict[str, Any]:
    spec = deps.agents[state["agent"]]
    last = state["messages"][-1]
    calls = [c for c in last.tool_calls if c["name"] not in TASK_ALIASES] if isinstance(last, AIMessage) else []
    seen = state.get("files_read", {})
    ctx = ToolContext(
        workspace=deps.workspace, files_read=set(seen), file_versions=dict(seen), provider=deps.provider.name
    )
    messages, events = [], []
    with structlog.contextvars.bound_contextvars(agent=spec.name, node="tools"):
        for call in calls:
            emit("tool", spec.name, depth=state["depth"], detail=call["name"])
            text, ok = await run_one(call, spec, ctx, deps)
            status = "success" if ok else "error"
            messages.append(ToolMessage(text, tool_call_id=call["id"], name=call["name"], status=status))
            events.append(_event(call, text, ok))
    return {
        "messages": messages,
        "tool_log": events,
        "files_read": ctx.file_versions,
        "files_changed": ctx.files_changed,
    }
