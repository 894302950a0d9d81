"""The orchestration graph wrapped so that it records its own runs, for servers that drive it themselves.

The CLI's runner records a run around the graph: its task and options, every progress event, and its
outcome. LangGraph Server has no such runner, so this graph does the same from inside: one `run` node
streams the orchestration graph as a subgraph (same thread, same checkpointer, same context), records and
forwards each progress event, and ends the record honestly: completed, incomplete (with issues), failed,
budget_exceeded, or interrupted while a permission ask waits for the client. The run id is the thread id,
so `orchestrate runs`, `show` and `replay` read server runs like any other.

START → run (records around: START → route → <agent> → END) → END
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.errors import GraphInterrupt
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from orchestrator.errors import RunError, internal_error
from orchestrator.graphs.context import RunContext, current_context, thread_id
from orchestrator.graphs.review import final_text
from orchestrator.graphs.route import async_only, read_task
from orchestrator.graphs.state import RunInput, RunState
from orchestrator.logs import get_logger
from orchestrator.run_events import issues_of, recordable, replayed
from orchestrator.run_store import RunStatus, RunStore, keep_lease
from orchestrator.secrets import mask_secrets

__all__ = ["WAITING", "recorded_graph"]

log = get_logger("orchestrator.recorded")

WAITING = "waiting for permission answers: resume the thread with allow, deny or always"
"""The error an interrupted server run is recorded with while a permission ask waits for the client."""


def recorded_graph(
    inner: CompiledStateGraph[Any, Any, Any, Any], store: RunStore, owner: str
) -> StateGraph[RunState, RunContext, RunInput, RunState]:
    """`inner` (the compiled orchestration graph, no checkpointer of its own) inside a recording node."""
    graph = StateGraph(RunState, context_schema=RunContext, input_schema=RunInput)
    graph.add_node("run", async_only(partial(run_recorded, inner=inner, store=store, owner=owner), name="run"))
    graph.add_edge(START, "run")
    graph.add_edge("run", END)
    return graph


async def run_recorded(
    state: RunState, config: RunnableConfig, *, inner: CompiledStateGraph[Any, Any, Any, Any], store: RunStore,
    owner: str,
) -> dict[str, Any]:  # fmt: skip
    run_id, context = thread_id(), current_context()
    task, _ = read_task(state)
    options = {"server": True, "context": context.model_dump(exclude_none=True)}
    await asyncio.to_thread(store.start_run, run_id, mask_secrets(task), options, owner)
    await asyncio.to_thread(store.claim, run_id, owner, force=True)  # a resumed thread runs again
    seen: set[str] = set()
    for _, event in await asyncio.to_thread(store.events, run_id):
        replayed(event, seen)
    values: dict[str, Any] = {}
    status: RunStatus = "failed"
    error: str | None = None
    writer = get_stream_writer()
    own = tuple(filter(None, str(config.get("configurable", {}).get("checkpoint_ns", "")).split("|")))
    try:
        with keep_lease(store, run_id, owner):
            stream = inner.astream(state, config, context=context, stream_mode=["custom", "values"], subgraphs=True)
            async for namespace, mode, chunk in stream:
                item = cast(dict[str, Any], chunk)
                if mode == "values" and namespace == own:  # the orchestration graph's own state, not a branch's
                    values = item
                elif mode == "custom" and not replayed(item, seen):
                    if recordable(item):
                        await asyncio.to_thread(store.add_event, run_id, item)
                    writer(item)
        status = "incomplete" if issues_of(await asyncio.to_thread(store.events, run_id)) else "completed"
        return values
    except GraphInterrupt:
        status, error = "interrupted", WAITING
        raise
    except RunError as exc:
        status, error = exc.status, mask_secrets(str(exc))
        raise
    except asyncio.CancelledError:  # the client cancelled the run
        status, error = "interrupted", "cancelled"
        raise
    except Exception as exc:  # the run's boundary: never leave the record "running"
        error = mask_secrets(internal_error(exc))
        raise
    finally:
        final = final_text(values.get("messages", [])) if status in ("completed", "incomplete") else None
        await asyncio.shield(asyncio.to_thread(store.finish_run, run_id, status, final=final, error=error))
        log.info("run_finished", run_id=run_id, status=status)
