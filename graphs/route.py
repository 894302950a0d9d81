"""The `route` node: pick the agent for the task (unless the caller did) and open its conversation.

When the router is unsure it may ask a cheap model (`Settings.tiebreak_model`); that question goes through
the one model-call site like every other, so it is budgeted, priced, recorded and replayable.
"""

from __future__ import annotations

from typing import Any

import structlog
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from orchestrator.graphs.deps import Deps
from orchestrator.graphs.model_call import call_model
from orchestrator.graphs.progress import emit
from orchestrator.graphs.state import RouteInfo, RunState
from orchestrator.routing import Ask
from orchestrator.routing.tiebreak import TOOL_NAME

__all__ = ["ROUTER", "route_task", "tiebreak_ask"]

log = structlog.get_logger("orchestrator.route")

ROUTER = "router"
"""The name the tie-break's model call is recorded under (it is no agent's call)."""


def tiebreak_ask(deps: Deps) -> Ask | None:
    """How the router puts its question to the tie-break model: through `call_model`."""
    model = deps.settings.tiebreak_model
    if model is None:
        return None

    async def ask(messages: list[BaseMessage], tool: dict[str, Any]) -> AIMessage:
        chat = deps.provider.chat_model(model).bind_tools([tool], tool_choice=TOOL_NAME)
        with structlog.contextvars.bound_contextvars(agent=ROUTER, node="route"):
            return await call_model(chat, messages, deps=deps, agent=ROUTER, model=model, purpose="route")

    return ask


async def route_task(state: RunState, *, deps: Deps) -> dict[str, Any]:
    """Pick the agent (unless the caller already did) and open its conversation with the task."""
    route = state.get("route")
    if route is None:
        decision = await deps.router.aroute(state["task"], ask=tiebreak_ask(deps))
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
        "messages": [HumanMessage(state["task"])],
    }
