"""Per-step overhead of the orchestration graph itself (models answer instantly from a script).

    .venv/bin/python bench/graph_overhead.py [--runs 30] [--db postgresql://…] [--postgres]

One run = route, senior turn with two parallel Task calls, two junior turns, two reviews, final senior
turn: 6 model calls. In the second scenario each junior first writes a file of its own, so its branch is
made, committed, diffed, merged and removed: 8 model calls. Reported: wall time per run and per model call
(graph, checkpoints, run records, ledger, tools, our nodes) of one orchestrator that runs them all (its
graphs compile once, in the first run, which is not counted), with the default SQLite persistence and, for
comparison, in-memory checkpoints, and for the writing juniors SQLite without branches (each junior in
the main workspace: what a branch per writing delegation costs) and in a git repository (each branch a
git worktree: a checkout of the repository, as in most users' projects); `--db TARGET` adds a row for that
database (e.g. a postgresql:// URL), `--postgres` one for a throwaway local PostgreSQL server with default
durability (needs the Debian package, like the tests).

Then where a SQLite run's time goes, in each scenario: each part is the wall time spent inside its
functions, timed by wrapping them for an extra set of runs (a part's time inside another part counts once,
for the outer one). The two junior branches run in parallel, so the parts can add up to more than the run;
"the rest" is the run's time outside every part (LangGraph's own work and our nodes' code).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import inspect
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from langgraph.checkpoint.memory import InMemorySaver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator import Orchestrator, Settings, load_agents
from orchestrator.run_store_pg import redact_url
from orchestrator.tools.permissions import PermissionPolicy
from tests.support.postgres_server import SKIP_REASON, PostgresServer, find_bindir
from tests.support.scripted_model import Call, Reply, ScriptedModel, ai, tool_call


def _script(writes: bool = False) -> list[Reply]:
    """The run's replies; `writes`: each junior first writes a file of its own (so its branch is made,
    committed, diffed, merged and removed), then reports."""

    def senior(call: Call) -> bool:
        return call.agent == "senior-ml-engineer" and call.purpose == "turn"

    def junior(name: str, *, wrote: bool) -> Callable[[Call], bool]:
        return lambda c: c.agent == "ml-engineer" and name in c.first_human and bool(c.tool_results) == wrote

    brief = {"subagent_type": "ml-engineer", "description": "d"}
    names = ("alpha", "beta")
    juniors = [Reply(ai("done"), when=junior(name, wrote=writes)) for name in names]
    if writes:
        write = {name: tool_call("Write", {"file_path": f"{name}.txt", "content": name}) for name in names}
        juniors += [Reply(ai("", call), when=junior(name, wrote=False)) for name, call in write.items()]
    return [
        Reply(
            ai("", *(tool_call("Task", {**brief, "prompt": f"subtask {name}"}) for name in names)),
            when=lambda c: senior(c) and not c.tool_results,
        ),
        *juniors,
        *[
            Reply(
                ai("", tool_call("Verdict", {"decision": "approve", "feedback": "ok"})),
                when=lambda c: c.purpose == "review",
            )
            for _ in names
        ],
        Reply(ai("final"), when=lambda c: senior(c) and bool(c.tool_results)),
    ]


@dataclass
class _OneModelForAllRuns:
    """The provider of one orchestrator used for every run, as a pipeline uses it (its graphs compile once):
    one model, as providers cache theirs, given a new script per run."""

    model: ScriptedModel
    name: str = "custom"
    errors: tuple[type[BaseException], ...] = ()

    def chat_model(self, model: str) -> ScriptedModel:
        return self.model

    def model_id(self, model: str) -> str:
        return model


def _git_repository(workspace: Path) -> None:
    """Make `workspace` a git repository with one commit (a README), as a user's project is."""
    (workspace / "README.md").write_text("a project\n")
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q"], ["add", "README.md"], [*identity, "commit", "-q", "-m", "start"]):
        subprocess.run(["git", *args], cwd=workspace, check=True, capture_output=True)


async def measure(
    runs: int,
    *,
    db: str | None = None,
    in_memory: bool = False,
    isolation: bool = True,
    writes: bool = False,
    in_git: bool = False,
) -> list[float]:
    workspace, data = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())  # the database lives outside, as by default
    if in_git:  # branches are git worktrees of it, not snapshots of a plain directory
        _git_repository(workspace)
    agents = load_agents(cwd=workspace, home=workspace)
    provider = _OneModelForAllRuns(ScriptedModel(_script(writes)))
    checkpointer = InMemorySaver() if in_memory else None
    orchestrator = Orchestrator(agents, provider=provider, workspace=workspace, db=db or data / "runs.sqlite",
                                checkpointer=checkpointer, settings=Settings.from_env(isolation=isolation),
                                permissions=PermissionPolicy(mode="acceptEdits"))  # fmt: skip
    samples = []
    for _ in range(runs + 1):
        for written in workspace.glob("*.txt"):
            written.unlink()  # each run writes its files anew
        provider.model.restart(_script(writes))
        started = time.perf_counter()
        result = await orchestrator.arun("bench", agent="senior-ml-engineer")
        samples.append(time.perf_counter() - started)
        provider.model.assert_complete()
        assert result.final == "final"
    orchestrator.store.close()
    return samples[1:]  # the first run pays imports, the graphs' compilation and table setup


_STORE_METHODS = ("add_event", "add_call", "tool_started", "tool_finished", "start_run", "finish_run", "claim", "beat",
                  "run", "calls", "events")  # fmt: skip


def _parts() -> dict[str, list[tuple[Any, str]]]:
    """Each part of a run's overhead: the (owner, attribute) of the functions that do it."""
    from orchestrator.graphs import agent_loop, builder, delegation, isolated, model_call, review, tool_node
    from orchestrator.ledger import Ledger
    from orchestrator.run_store import RunStore
    from orchestrator.sqlite_checkpoints import LoopSqliteSaver

    return {
        "checkpoint writes (SQLite)": [(LoopSqliteSaver, "aput"), (LoopSqliteSaver, "aput_writes")],
        "run records (events, calls, tool journal)": [(RunStore, name) for name in _STORE_METHODS],
        "ledger (budget check, pricing)": [(Ledger, "acheck"), (Ledger, "arecord")],
        "request fingerprint (replay)": [(model_call, "request_fingerprint")],
        "model call (langchain message conversion, scripted model)": [(model_call, "_streamed")],
        "tool schemas offered": [(agent_loop, "offered_tools")],
        "review evidence": [(review, "review_request"), (review, "missing_work"), (review, "contradicted_claims")],
        "branch workspaces (copy, git init, commits, diff, merge, removal)": [
            (delegation, "plan_for"),
            (isolated, "open_branch"),
            (isolated, "_merge"),
            (isolated, "_unmerged"),
            (delegation, "close_branch"),  # its removal runs in the background: not counted
            (review, "commit_round"),
            (review, "_round_diff"),
        ],
        "tool calls (permission check, Write)": [(tool_node, "check"), (tool_node, "_run")],
        "routing": [(builder, "route_task")],
    }


_INSIDE: contextvars.ContextVar[str | None] = contextvars.ContextVar("inside", default=None)


@contextmanager
def timed_parts() -> Iterator[dict[str, float]]:
    """Wrap every part's functions; yields part -> seconds spent inside, filled as runs go."""
    spent: dict[str, float] = defaultdict(float)
    undo: list[tuple[Any, str, Any]] = []

    def wrap(part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                if _INSIDE.get() is not None:
                    return await fn(*args, **kwargs)
                token, started = _INSIDE.set(part), time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    spent[part] += time.perf_counter() - started
                    _INSIDE.reset(token)

            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if _INSIDE.get() is not None:
                return fn(*args, **kwargs)
            token, started = _INSIDE.set(part), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - started
                _INSIDE.reset(token)

        return timed

    for part, targets in _parts().items():
        for owner, name in targets:
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            undo.append((owner, name, original))
            setattr(owner, name, wrap(part, original))
    try:
        yield spent
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


async def breakdown(runs: int, *, writes: bool = False) -> None:
    with timed_parts() as spent:
        samples = await measure(runs, writes=writes)
    total = sum(samples)
    calls = len(_script(writes)) * runs
    what = "juniors writing a file" if writes else "juniors answering"
    print(f"\nwhere a SQLite run's time goes, {what} ({runs} runs, {total / runs * 1000:.1f} ms/run with the timers):")
    for part, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {part:58} {seconds / calls * 1000:6.2f} ms/model call")
    rest = total - sum(spent.values())
    shown = f"{rest / calls * 1000:6.2f} ms/model call" if rest > 0 else "n/a: the parallel branches' parts overlap"
    print(f"  {'the rest (LangGraph, our nodes)':58} {shown}")


def report(label: str, samples: list[float], *, writes: bool = False) -> None:
    median = statistics.median(samples)
    p90 = sorted(samples)[int(len(samples) * 0.9) - 1]
    calls = len(_script(writes))
    print(f"{label:>28}: {median * 1000:6.1f} ms/run (p90 {p90 * 1000:.1f}), {median / calls * 1000:.2f} ms/model call")


async def main(runs: int, db: str | None, postgres: bool) -> None:
    calls = f"{len(_script())}, {len(_script(True))} where juniors write"
    print(f"runs: {runs}; model calls per run: {calls} (scripted, instant)")
    report("SQLite (default, WAL+NORMAL)", await measure(runs))
    report("in-memory checkpoints", await measure(runs, in_memory=True))
    report("SQLite, juniors write a file", await measure(runs, writes=True), writes=True)
    report("... and no branches", await measure(runs, writes=True, isolation=False), writes=True)
    report("... in a git repository", await measure(runs, writes=True, in_git=True), writes=True)
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
    await breakdown(runs)
    await breakdown(runs, writes=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--db", help="also measure this database: a SQLite file or a postgresql:// URL")
    parser.add_argument("--postgres", action="store_true", help="also measure a throwaway local PostgreSQL")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(args.runs, args.db, args.postgres))
