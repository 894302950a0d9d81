"""The `route` node: read the task, pick the agent (unless the caller did) and open its conversation.

The task is the input's `task`, or, for chat clients (LangGraph Studio, Agent Chat UI), the last human
message of `messages`. The run's workspace directory is created here, before any agent works in it.

When the router is unsure it may ask a cheap model (`Settings.tiebreak_model`); that question goes through
the one model-call site like every other, so it is budgeted, priced, recorded and replayable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.runnables import RunnableLambda

from orchestrator.errors import UserError
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.forced_tool import call_forced_tool
from orchestrator.graphs.progress import emit
from orchestrator.graphs.state import RouteInfo, RunState
from orchestrator.logs import get_logger
from orchestrator.routing import Ask
from orchestrator.routing.tasks import check_task
from orchestrator.routing.tiebreak import TOOL_NAME

__all__ = ["ROUTER", "SYNC_REFUSED", "async_only", "read_task", "route_task", "tiebreak_ask"]

log = get_logger("orchestrator.route")

ROUTER = "router"
"""The name the tie-break's model call is recorded under (it is no agent's call)."""


def tiebreak_ask(deps: Deps) -> Ask | None:
    """How the router puts its question to the tie-break model: through `call_model`."""
    model = deps.settings.tiebreak_model
    if model is None:
        return None

    async def ask(messages: list[BaseMessage], tool: dict[str, Any]) -> AIMessage:
        with structlog.contextvars.bound_contextvars(agent=ROUTER, node="route"):
            args = await call_forced_tool(messages, tool, deps=deps, agent=ROUTER, model=model, purpose="route")
        calls = [] if args is None else [ToolCall(name=TOOL_NAME, args=args, id="tiebreak")]
        return AIMessage("", tool_calls=calls)  # no call: the router says it could not read one

    return ask


SYNC_REFUSED = (
    "the orchestration graph is async (its nodes run concurrently): use ainvoke or astream, with an async "
    "checkpointer (AsyncSqliteSaver, AsyncPostgresSaver, InMemorySaver), or Orchestrator.run for a blocking call"
)


def async_only(
    node: Callable[..., Awaitable[dict[str, Any]]], *, name: str = "route"
) -> RunnableLambda[Any, dict[str, Any]]:
    """The first node of a graph, refusing the sync API (`invoke`, `stream`) with a message saying why."""

    def refuse(state: Any) -> dict[str, Any]:
        raise UserError(SYNC_REFUSED)

    return RunnableLambda(refuse, afunc=node, name=name)


def read_task(state: RunState) -> tuple[str, list[AnyMessage]]:
    """The task, and the messages that open the conversation with it: a chat client's last human message
    is already in `messages`; a `task` is added as one."""
    messages = state.get("messages", [])
    if messages and isinstance(messages[-1], HumanMessage):
        return check_task(messages[-1].text, "messages[-1]"), []
    task = check_task(state.get("task", ""), "task")
    return task, [HumanMessage(task)]


async def route_task(state: RunState, *, deps: Deps) -> dict[str, Any]:
    """Pick the agent (unless the caller already did) and open its conversation with the task."""
    task, opening = read_task(state)
    await asyncio.to_thread(deps.run_workspace().mkdir, parents=True, exist_ok=True)
    route = state.get("route")
    if route is None:
        decision = await deps.router.aroute(task, ask=tiebreak_ask(deps))
        route = RouteInfo(
            agent=decision.agent, confidence=decision.confidence, reason=decision.reason, method=decision.method
        )
    spec = deps.agents[route["agent"]]
    log.info("routed", agent=spec.name, confidence=round(route["confidence"], 4), method=route["method"])
    emit("route", spec.name, depth=0, confidence=route["confidence"], detail=route["reason"], method=route["method"])
    return {
        "route": route,
        "agent": spec.name,
        "depth": 0,
        "briefs": [],
        "model": deps.resolve_model(spec, deps.settings.default_model),
        "task": task,
        "messages": opening,
    }
