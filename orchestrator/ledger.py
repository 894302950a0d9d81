"""The cost ledger: every model call priced and recorded, and budgets enforced before each call.

Budgets are checked *before* a call against what is already spent, so a run overshoots its cap by at
most the call that crossed it (per concurrently running branch). A delegation's spend is every call
whose delegation path starts with that delegation's, so nested work counts toward its parents' caps.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import RunError, UserError
from orchestrator.pricing import PriceTable, TokenCounts
from orchestrator.run_store import CallRecord, RunStore

__all__ = ["Budget", "BudgetExceeded", "Ledger", "delegation_cost", "summarize"]


class BudgetExceeded(RunError):
    """The next model call would exceed a cost cap; the run stops, resumable with a higher cap."""

    status = "budget_exceeded"


@dataclass(frozen=True)
class Budget:
    max_cost: float | None = None
    """USD for the whole run."""
    max_delegation_cost: float | None = None
    """USD for any one delegation, including what it delegates in turn."""

    def __post_init__(self) -> None:
        for name in ("max_cost", "max_delegation_cost"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UserError(f"Budget.{name} must be a positive, finite number of USD, not {value}")


@dataclass(frozen=True)
class Ledger:
    store: RunStore
    prices: PriceTable
    on_loop: bool = False
    """Record a call on the event loop itself, a SQLite write of tens of microseconds: for a local file
    whose checkpointer never holds the file's lock across an await (the Orchestrator's own). Otherwise
    (Postgres; a caller's checkpointer; a server's loop, which refuses blocking calls) in a worker thread."""

    async def acheck(self, run_id: str, delegation: str, budget: Budget) -> None:
        """`check`, where `on_loop` says; without a cap there is nothing to read."""
        if budget.max_cost is not None or budget.max_delegation_cost is not None:
            await self._store_work(self.check, run_id, delegation, budget)

    async def arecord(self, run_id: str, call: CallRecord) -> None:
        await self._store_work(self.store.add_call, run_id, call)

    async def _store_work(self, work: Callable[..., None], *args: Any) -> None:
        """`work` on the store, on the loop or in a worker thread, as `on_loop` says."""
        if self.on_loop:
            work(*args)
        else:
            await asyncio.to_thread(work, *args)

    def check(self, run_id: str, delegation: str, budget: Budget) -> None:
        """Raise BudgetExceeded if the run or an enclosing delegation (a path "id1/id2/") has used up its cap."""
        if budget.max_cost is not None and (spent := self.store.spent(run_id)) >= budget.max_cost:
            raise BudgetExceeded(
                f"run {run_id} spent ${spent:.4f} of its ${budget.max_cost:.4f} cap (--max-cost; on a server, max_cost)"
            )
        if budget.max_delegation_cost is None:
            return
        parts = delegation.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth]) + "/"
            if (spent := self.store.spent(run_id, prefix)) >= budget.max_delegation_cost:
                cap = budget.max_delegation_cost
                raise BudgetExceeded(
                    f"delegation {parts[depth - 1]} spent ${spent:.4f} of its ${cap:.4f} cap "
                    "(--max-delegation-cost; on a server, max_delegation_cost)"
                )

    def cost(self, model_id: str, tokens: TokenCounts) -> float:
        return self.prices.cost(model_id, tokens)


def _add(total: dict[str, float], call: CallRecord) -> None:
    for key in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd"):
        total[key] = total.get(key, 0) + getattr(call, key)


def summarize(calls: list[CallRecord], prices: PriceTable | None = None) -> dict[str, object]:
    """Totals of a run's calls, with the same totals per agent and per model; with `prices`, `unpriced`
    lists the models the table has no price for (their calls count $0)."""
    total: dict[str, float] = {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0}
    total["cost_usd"] = 0.0
    by_agent: dict[str, dict[str, float]] = {}
    by_model: dict[str, dict[str, float]] = {}
    for call in calls:
        _add(total, call)
        _add(by_agent.setdefault(call.agent, {}), call)
        _add(by_model.setdefault(call.model, {}), call)
    unpriced = sorted(m for m in by_model if prices is not None and not prices.priced(m))
    return {**total, "calls": len(calls), "by_agent": by_agent, "by_model": by_model, "unpriced": unpriced}


def delegation_cost(calls: list[CallRecord], call_id: str) -> float:
    """What one delegation cost, including what it delegated in turn."""
    return sum(c.cost_usd for c in calls if f"{call_id}/" in c.delegation)
