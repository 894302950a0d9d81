"""Throughput of the local models on this machine: prompt processing and generation tokens/s, load
time, and the adapter's first-call and warm latencies for one agent turn; optionally the wall time of the
offline main job (route, delegate, junior tools, review, answer) on the real graph.

    .venv/bin/python bench/local_models.py [--models senior junior] [--prompt-tokens 400] [--gen-tokens 128]
    .venv/bin/python bench/local_models.py --main-job 3 [--task "design a RAG pipeline"] [--models]

Models must be pulled first (`orchestrate models pull`). Numbers are noisy on shared machines; each
throughput figure is the best of --repeat runs, with the KV cache reset before every measurement. Each
main-job run gets a fresh temporary workspace (its path is part of the prompt, so runs differ).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from orchestrator import Orchestrator, RunResult, load_agents
from orchestrator.local import LocalProvider
from orchestrator.local.gguf import MODELS, locate
from orchestrator.tools.permissions import PermissionPolicy

__all__ = ["JobRow", "Row", "main"]

FILLER = "The quick brown fox jumps over the lazy dog while the compiler checks every type annotation. "
TOOLS: list[dict[str, Any]] = [
    {
        "name": "Read",
        "description": "Reads a file from the local filesystem.",
        "input_schema": {
            "type": "object",
            "properties": {"file_path": {"type": "string", "description": "The path of the file to read."}},
            "required": ["file_path"],
        },
    },
    {
        "name": "Write",
        "description": "Writes a file to the local filesystem, overwriting it.",
        "input_schema": {
            "type": "object",
            "properties": {
                "file_path": {"type": "string", "description": "The path of the file to write."},
                "content": {"type": "string", "description": "The content to write to the file."},
            },
            "required": ["file_path", "content"],
        },
    },
]
TURN = [
    SystemMessage("You are a software engineer. Use the tools to act on files."),
    HumanMessage("Write hello world to hello.txt"),
]


@dataclass(frozen=True)
class Row:
    """One model's figures."""

    role: str
    load_s: float
    prompt_tps: float
    gen_tps: float
    first_turn_s: float
    warm_turn_s: float


def best(repeat: int, measure: Callable[[], float]) -> float:
    """The fastest of `repeat` timings (the least disturbed by other processes)."""
    return min(measure() for _ in range(repeat))


def timed(llama: Any, prompt: str, max_tokens: int) -> tuple[float, int]:
    """Seconds and completion tokens of one raw completion from an empty KV cache."""
    llama.reset()
    started = time.perf_counter()
    out = llama.create_completion(prompt, max_tokens=max_tokens, temperature=0.0)
    return time.perf_counter() - started, int(out["usage"]["completion_tokens"])


def prompt_tps(llama: Any, n_tokens: int, repeat: int) -> float:
    """Prompt processing: a long prompt with a single generated token."""
    prompt = FILLER * (n_tokens // 20 + 1)
    tokens = len(llama.tokenize(prompt.encode()))
    return tokens / best(repeat, lambda: timed(llama, prompt, 1)[0])


def gen_tps(llama: Any, n_tokens: int, repeat: int) -> float:
    """Generation: tokens after the first, over the time after a one-token baseline on the same prompt."""
    prompt = "# A long, well commented Python module implementing a binary search tree\n"

    def once() -> float:
        base, _ = timed(llama, prompt, 1)
        total, produced = timed(llama, prompt, n_tokens)
        return (total - base) / max(1, produced - 1)

    return 1.0 / best(repeat, once)


def turn_seconds(model: Any) -> float:
    started = time.perf_counter()
    asyncio.run(model.bind_tools(TOOLS).ainvoke(TURN))
    return time.perf_counter() - started


def measure(role: str, args: argparse.Namespace) -> Row:
    from llama_cpp import Llama

    from orchestrator.local.engine import load_llama

    path = locate(MODELS[role])
    started = time.perf_counter()
    llama = load_llama(path)
    load_s = time.perf_counter() - started
    assert isinstance(llama, Llama)
    p_tps, g_tps = (
        prompt_tps(llama, args.prompt_tokens, args.repeat),
        gen_tps(llama, args.gen_tokens, args.repeat),
    )
    del llama
    model = LocalProvider().chat_model(role)  # a fresh engine: the first turn includes loading the file
    first = turn_seconds(model)
    warm = best(args.repeat, lambda: turn_seconds(model))
    return Row(role, load_s, p_tps, g_tps, first, warm)


@dataclass(frozen=True)
class JobRow:
    """One run of the main job."""

    seconds: float
    status: str
    delegations: int
    verdicts: str
    junior_tools: str
    files: str
    final_chars: int
    rss_mb: int
    """Resident memory of this process after the run (models of finished runs should be freed)."""


def _rss_mb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


async def _main_job(task: str, workspace: Path) -> JobRow:
    orchestrator = Orchestrator(
        load_agents(cwd=workspace, home=workspace),
        provider=LocalProvider(),
        workspace=workspace,
        permissions=PermissionPolicy(mode="acceptEdits"),
        db=workspace / ".runs.db",
    )
    started = time.perf_counter()
    tools: list[str] = []
    result: RunResult | None = None
    async for item in orchestrator.astream(task):
        if isinstance(item, RunResult):
            result = item
        elif item.get("event") == "tool" and item.get("depth", 0) > 0:
            tools.append(str(item.get("detail")))
    assert result is not None
    verdicts = [v["decision"] for d in result.delegations for v in d["verdicts"]]
    files = [f for d in result.delegations for f in d["files_changed"]]
    return JobRow(
        time.perf_counter() - started,
        result.status,
        len(result.delegations),
        ",".join(verdicts) or "-",
        ",".join(tools) or "-",
        ",".join(files) or "-",
        len(result.final),
        _rss_mb(),
    )


def main_job(task: str, runs: int) -> Iterator[JobRow]:
    """Run the offline main job `runs` times, each in a fresh temporary workspace (models load once per run)."""
    for n in range(runs):
        with tempfile.TemporaryDirectory(prefix=f"orchestrate-bench-{n}-") as tmp:
            yield asyncio.run(_main_job(task, Path(tmp)))
        gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=None, choices=list(MODELS), help="(default: all)")
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--main-job", type=int, default=0, metavar="RUNS", help="also time the main job RUNS times")
    parser.add_argument("--task", default="design a RAG pipeline")
    args = parser.parse_args()
    models = list(MODELS) if args.models is None else args.models
    if models:
        rows = [measure(role, args) for role in models]
        header = ("model", "load s", "prompt tok/s", "gen tok/s", "first turn s", "warm turn s")
        print(f"{header[0]:<8}{header[1]:>8}{header[2]:>14}{header[3]:>11}{header[4]:>14}{header[5]:>13}")
        for r in rows:
            print(
                f"{r.role:<8}{r.load_s:>8.2f}{r.prompt_tps:>14.1f}{r.gen_tps:>11.1f}"
                f"{r.first_turn_s:>14.2f}{r.warm_turn_s:>13.2f}"
            )
    if args.main_job:
        print(f"\nmain job: {args.task!r}")
        print(f"{'run':<5}{'wall s':>8}{'RSS MB':>8}  {'status':<10}{'tasks':>6}  verdicts / tools / files / answer")
        for n, j in enumerate(main_job(args.task, args.main_job), 1):
            print(
                f"{n:<5}{j.seconds:>8.1f}{j.rss_mb:>8}  {j.status:<10}{j.delegations:>6}  "
                f"{j.verdicts} / {j.junior_tools} / {j.files} / {j.final_chars} chars",
                flush=True,
            )


if __name__ == "__main__":
    main()
