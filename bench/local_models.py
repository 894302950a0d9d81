"""Throughput of the local models on this machine: prompt processing and generation tokens/s, load
time, and the adapter's first-call and warm latencies for one agent turn; optionally the offline main job
(route, delegate, junior tools, review, answer) on the real graph, judged per run: wall time, whether a
concrete piece was delegated and produced, whether the reviews' statements match the files, whether the
final answer's claims match the records, whether the juniors' files are clean, and how much of the task's
checklist (bench/data/main_job_checklists.json) the answer covers.

    .venv/bin/python bench/local_models.py [--models senior junior] [--prompt-tokens 400] [--gen-tokens 128]
    .venv/bin/python bench/local_models.py --models --main-job 5 [--task "design a RAG pipeline" ...] [--answers DIR]

Models must be pulled first (`orchestrate models pull`). Numbers are noisy on shared machines; each
throughput figure is the best of --repeat runs, with the KV cache reset before every measurement. Each
main-job run gets a fresh temporary workspace (its path is part of the prompt, so runs differ).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from orchestrator import Orchestrator, load_agents
from orchestrator.claims import false_claims
from orchestrator.graphs.evidence import contradicted_claims
from orchestrator.local import LocalProvider
from orchestrator.local.gguf import MODELS, locate
from orchestrator.local.policy import is_orchestration_text
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


CHECKLISTS: dict[str, dict[str, list[str]]] = {
    task: parts
    for task, parts in json.loads((Path(__file__).parent / "data/main_job_checklists.json").read_text()).items()
    if not task.startswith("_")
}


@dataclass(frozen=True)
class JobRow:
    """One run of the main job, judged on what it produced."""

    seconds: float
    status: str
    piece: bool
    """It delegated a concrete piece (a code or config file named in the brief) and the junior produced it."""
    verdicts_match: bool
    """No review's last word about a file is contradicted by the file (graphs/evidence.py)."""
    claims_match: bool
    """No sentence of the final answer is contradicted by the records (orchestrator/claims.py)."""
    covered: tuple[str, ...]
    missing: tuple[str, ...]
    """The task's checklist parts found / not found in the answer's text (headings not counted)."""
    clean_files: bool
    """No file the juniors wrote contains orchestration text."""
    notes: str
    rss_mb: int
    answer: str
    """The final answer, as the user saw it (saved with --answers)."""


def _rss_mb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


_LABEL = re.compile(r"^\s*- \*\*[^*]*\*\*:")
"""A bullet's label: the guide's point it answers ("- **Top-k retrieval**: ..."), not the model's words."""


def coverage(task: str, answer: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(parts found, parts missing) of the task's checklist, in the answer without its heading lines and
    without the guide's labels on its bullets: only the model's own words count."""
    lines = (line for line in answer.lower().splitlines() if not line.lstrip().startswith("#"))
    body = "\n".join(_LABEL.sub("", line) for line in lines)
    parts = CHECKLISTS.get(task, {})
    found = tuple(part for part, words in parts.items() if any(w in body for w in words))
    return found, tuple(part for part in parts if part not in found)


_CODE = (".py", ".yaml", ".yml", ".json", ".toml", ".sh", ".cfg")


async def _main_job(task: str, workspace: Path) -> JobRow:
    orchestrator = Orchestrator(
        load_agents(cwd=workspace, home=workspace),
        provider=LocalProvider.from_env(),  # ORCHESTRATE_LOCAL_SONNET=senior: the 1.5B in both roles
        workspace=workspace,
        permissions=PermissionPolicy(mode="acceptEdits"),
        db=workspace / ".runs.db",
    )
    started = time.perf_counter()
    result = await orchestrator.arun(task)
    seconds = time.perf_counter() - started
    spent: dict[str, float] = {}
    for call in orchestrator.store.calls(result.run_id):
        key = f"{call.agent.split('-')[0]} {call.purpose}"
        spent[key] = spent.get(key, 0.0) + call.seconds
    orchestrator.close()
    written = [(workspace / f) for d in result.delegations for f in d["files_changed"]]
    piece = any(
        f.suffix in _CODE and f.is_file() and f.stat().st_size > 0 for f in written
    )  # fmt: skip
    misread = [
        c
        for d in result.delegations
        if d["verdicts"]
        for c in contradicted_claims(d["verdicts"][-1]["feedback"], workspace)
        if d["verdicts"][-1]["by"] != "evidence"
    ]
    wrong = false_claims(result.final, result.delegations, workspace=workspace)
    dirty = [f.name for f in written if f.is_file() and any(is_orchestration_text(line) for line in
             f.read_text(errors="replace").splitlines())]  # fmt: skip
    covered, missing = coverage(task, result.final)
    pieces = ", ".join(f"{d['description']} ({d['status']}, {d['rounds']} rounds)" for d in result.delegations)
    where = ", ".join(f"{k} {v:.0f} s" for k, v in spent.items())
    notes = "; ".join(filter(None, [pieces or "no delegation", where, *(f"claim: {c.why}" for c in wrong),
                                    *(f"misread: {m}" for m in misread), *(f"dirty: {d}" for d in dirty)]))  # fmt: skip
    return JobRow(
        seconds,
        result.status,
        piece,
        not misread,
        not wrong,
        covered,
        missing,
        not dirty,
        notes,
        _rss_mb(),
        result.final,
    )


def main_job(task: str, runs: int) -> Iterator[JobRow]:
    """Run the offline main job `runs` times, each in a fresh temporary workspace (models load once per run)."""
    for n in range(runs):
        with tempfile.TemporaryDirectory(prefix=f"orchestrate-bench-{n}-") as tmp:
            yield asyncio.run(_main_job(task, Path(tmp)))
        gc.collect()


def _report_job(task: str, rows: list[JobRow]) -> None:
    times = sorted(r.seconds for r in rows)
    parts = len(CHECKLISTS.get(task, {}))
    full = sum(not r.missing for r in rows)
    honest = sum(r.claims_match and r.verdicts_match for r in rows)
    print(f"  -> {task!r}: median {statistics.median(times):.0f} s, max {times[-1]:.0f} s; checklist covered in "
          f"{full}/{len(rows)} (of {parts} parts); no false claim or misread verdict in {honest}/{len(rows)}; "
          f"piece delegated and produced in {sum(r.piece for r in rows)}/{len(rows)}; clean files in "
          f"{sum(r.clean_files for r in rows)}/{len(rows)}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=None, choices=list(MODELS), help="(default: all)")
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--main-job", type=int, default=0, metavar="RUNS", help="also time the main job RUNS times")
    parser.add_argument("--task", action="append", help="a main-job task (repeatable; default: the checklists' three)")
    parser.add_argument("--answers", type=Path, metavar="DIR", help="save each main-job run's final answer in DIR")
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
        provider = LocalProvider.from_env()
        print(f"\nagents' models: opus -> {provider.role_for('opus')}, sonnet -> {provider.role_for('sonnet')}")
        for task in args.task or list(CHECKLISTS):
            print(f"\nmain job: {task!r}")
            print(f"{'run':<5}{'wall s':>8}{'RSS MB':>8}  {'status':<11}piece verdicts claims clean  covered  notes")
            rows = []
            for n, j in enumerate(main_job(task, args.main_job), 1):
                rows.append(j)
                if args.answers:
                    args.answers.mkdir(parents=True, exist_ok=True)
                    slug = "-".join(task.lower().split()[:4]).strip(":,'")
                    (args.answers / f"{slug}-{n}.md").write_text(j.answer + "\n", encoding="utf-8")
                flags = " ".join(
                    f"{'yes' if ok else 'NO':<{w}}"
                    for ok, w in ((j.piece, 5), (j.verdicts_match, 8), (j.claims_match, 6), (j.clean_files, 5))
                )
                missing = f" (missing: {', '.join(j.missing)})" if j.missing else ""
                covered = f"{len(j.covered)}/{len(j.covered) + len(j.missing)}{missing}"
                print(f"{n:<5}{j.seconds:>8.1f}{j.rss_mb:>8}  {j.status:<11}{flags}  {covered}  {j.notes}", flush=True)
            _report_job(task, rows)


if __name__ == "__main__":
    main()
