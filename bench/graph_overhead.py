"""Per-step overhead of the orchestration graph itself (models answer instantly from a script).

    .venv/bin/python bench/graph_overhead.py [--runs 30]

One run = route, senior turn with two parallel Task calls, two junior turns, two reviews, final senior
turn: 9 model calls. Reported: wall time per run and per model call (graph + checkpointer + our nodes),
with the in-memory checkpointer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator import FixedProvider, Orchestrator, load_agents
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


async def main(runs: int) -> None:
    workspace = Path(tempfile.mkdtemp())
    agents = load_agents(cwd=workspace, home=workspace)
    samples = []
    for _ in range(runs + 1):
        model = ScriptedModel(_script())
        orchestrator = Orchestrator(agents, provider=FixedProvider(model), workspace=workspace)
        started = time.perf_counter()
        result = await orchestrator.arun("bench", agent="senior-ml-engineer")
        samples.append(time.perf_counter() - started)
        model.assert_complete()
        assert result.final == "final"
    samples = samples[1:]  # first run pays imports and compilation
    median = statistics.median(samples)
    print(f"runs: {runs}; model calls per run: {len(_script())}")
    print(f"wall per run: median {median * 1000:.1f} ms, p90 {sorted(samples)[int(runs * 0.9) - 1] * 1000:.1f} ms")
    print(f"overhead per model call (graph, checkpointer, nodes): {median / len(_script()) * 1000:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    asyncio.run(main(parser.parse_args().runs))
