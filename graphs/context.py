"""What a run tells every node, carried by LangGraph's runtime context (`context_schema=RunContext`).

The runner builds one per run and passes it to `astream(..., context=...)` (LangGraph Server builds the
same from an assistant's or a run's context). The delegate node hands its review branch a copy with the
delegation path extended, so every model call knows where in the delegation tree it happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from langgraph.runtime import get_runtime

from orchestrator.ledger import Budget

__all__ = ["RunContext", "current_context"]


@dataclass(frozen=True)
class RunContext:
    run_id: str = ""
    """The run the model calls are recorded and priced under; "" (a bare graph) records nothing."""
    budget: Budget = field(default_factory=Budget)
    """The caps checked before every model call."""
    delegation: str = ""
    """Task call ids from the top agent to the running context, each followed by "/" ("id1/id2/")."""

    def delegated(self, call_id: str) -> RunContext:
        """The context of the branch that runs Task call `call_id`."""
        return replace(self, delegation=f"{self.delegation}{call_id}/")


def current_context() -> RunContext:
    """The running graph's context; an empty one outside a graph or when the caller gave none."""
    try:
        context = get_runtime(RunContext).context
    except RuntimeError:  # not inside a runnable (e.g. `orchestrate route`'s tie-break)
        return RunContext()
    return context if isinstance(context, RunContext) else RunContext()
