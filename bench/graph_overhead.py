"""Per-step overhead of the orchestration graph itself (models answer instantly from a script).

    .venv/bin/python bench/graph_overhead.py [--runs 30] [--db postgresql://…] [--postgres]

One run = route, senior turn with two parallel Task calls, two junior turns, two reviews, final senior
turn: 6 model calls. Reported: wall time per run and per model call (graph, checkpoints, run records,
ledger, our nodes), with the default SQLite persistence and, for comparison, in-memory checkpoints;
`--db TARGET` adds a row for that database (e.g. a postgresql:// URL), `--postgres` one for a throwaway
local PostgreSQL server with default durability (needs the Debian package, like the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog
from langgraph.checkpoint.memory import InMemorySaver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator import FixedProvider, Orchestrator, load_agents
from orchestrator.run_store_pg import redact_url
from tests.support.postgres_server import SKIP_REASON, PostgresServer, find_bindir
from tests.support.scripted_model import Call, Reply, ScriptedModel, ai, tool_call


def _script() -> list[Reply]:
    def senior(call: Call) -> bool:
        return call.agent == "senior-ml-engineer" and call.purpose == "turn"

    brief = {"subagent_type": "ml-engineer", "description": "d"}
    return [
        Reply(
            ai("", tool_call("Task", {**brief, "prompt": "a"}), tool_call("Task", {**brief, "prompt": "b"})),
            when=lambda c: senior(c) and not c.tool_results,
        ),
        *[Reply(ai("done"), when=lambda c: c.agent == "ml-engineer") for _ in range(2)],
        *[
            Reply(
                ai("", tool_call("Verdict", {"decision": "approve", "feedback": "ok"})),
                when=lambda c: c.purpose == "review",
            )
            for _ in range(2)
        ],
        Reply(ai("final"), when=lambda c: senior(c) and bool(c.tool_results)),
    ]


async def measure(runs: int, *, db: str | None = None, in_memory: bool = False) -> list[float]:
    workspace = Path(tempfile.mkdtemp())
    agents = load_agents(cwd=workspace, home=workspace)
    samples = []
    for _ in range(runs + 1):
        model = ScriptedModel(_script())
        checkpointer = InMemorySaver() if in_memory else None
        orchestrator = Orchestrator(agents, provider=FixedProvider(model), workspace=workspace,
                                    db=db or workspace / "runs.sqlite", checkpointer=checkpointer)  # fmt: skip
        started = time.perf_counter()
        result = await orchestrator.arun("bench", agent="senior-ml-engineer")
        samples.append(time.perf_counter() - started)
        orchestrator.store.close()
        model.assert_complete()
        assert result.final == "final"
    return samples[1:]  # the first run pays imports, compilation and table setup


def report(label: str, samples: list[float]) -> None:
    median = statistics.median(samples)
    p90 = sorted(samples)[int(len(samples) * 0.9) - 1]
    calls = len(_script())
    print(f"{label:>28}: {median * 1000:6.1f} ms/run (p90 {p90 * 1000:.1f}), {median / calls * 1000:.2f} ms/model call")


async def main(runs: int, db: str | None, postgres: bool) -> None:
    print(f"runs: {runs}; model calls per run: {len(_script())} (scripted, instant)")
    report("SQLite (default, WAL+NORMAL)", await measure(runs))
    report("in-memory checkpoints", await measure(runs, in_memory=True))
    if db:
        report(redact_url(db)[:28], await measure(runs, db=db))
    if postgres:
        bindir = find_bindir()
        if bindir is None:
            raise SystemExit(SKIP_REASON)
        server = PostgresServer.start(bindir, durable=True)
        try:
            report("local PostgreSQL (fsync on)", await measure(runs, db=server.create_database()))
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--db", help="also measure this database: a SQLite file or a postgresql:// URL")
    parser.add_argument("--postgres", action="store_true", help="also measure a throwaway local PostgreSQL")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(args.runs, args.db, args.postgres))
