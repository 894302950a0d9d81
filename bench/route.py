"""Benchmark the router: accuracy, per-class precision/recall, calibration, latency and cost.

    .venv/bin/python bench/route.py           # committed weights on the held-out test sets
    .venv/bin/python bench/route.py --json    # the same figures as one JSON object
    .venv/bin/python bench/route.py --dev     # tuning loop: fit on train, score on calib (never test)
    .venv/bin/python bench/route.py --many    # also: held-out corpus agents (bench/route_many.py), by meaning
                                              # and by words; needs `orchestrate models pull router`

Latency is timed on one pinned core (`--cores 2`: two), `Router.route` per task (no model calls), after
one warm-up pass.
Cost assumes the prices and token counts printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.agent_spec import AgentSpec
from orchestrator.loader import bundled_agents_dir, parse_agent_file
from orchestrator.routing import DEFAULT_THRESHOLD, MAX_TASK_CHARS, Router, build_router
from orchestrator.routing.data import (
    JUNIOR,
    SENIOR,
    AgentSuite,
    LabelledTask,
    load_agent_suite,
    load_labelled,
)
from orchestrator.routing.train import fit_weights
from orchestrator.routing.weights import Weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
import route_many

ROOT = Path(__file__).resolve().parent.parent
TEST_TASKS = ROOT / "tests" / "data" / "routing" / "test.jsonl"
TEST_AGENTS = ROOT / "tests" / "data" / "routing" / "agents_test.json"
STRESS_TASKS = ROOT / "tests" / "data" / "routing" / "stress.jsonl"
"""Adversarial phrasing (junior work worded with "design", "review", "why"; senior work with "write",
"fix", "add"), written after the test figures were in and never tuned on."""

PRICES = {"opus": (5.0, 25.0), "sonnet": (3.0, 15.0), "haiku": (1.0, 5.0)}
"""USD per million input / output tokens: Claude Opus 4.x, Sonnet 4.x, Haiku 4.5."""
TASK_TOKENS = (40_000, 4_000)
"""Assumed input / output tokens one agent spends on one task (a few tool-using turns)."""
TIEBREAK_TOKENS = (800, 60)
"""One Haiku tie-break call: prompt with two descriptions, one forced tool call."""
REPEATS = 20
ASSUMPTIONS = {"prices_usd_per_mtok": PRICES, "task_tokens": TASK_TOKENS, "tiebreak_tokens": TIEBREAK_TOKENS}
DEV_DATA = "dev: fit on train, scored on calib (+ dev agent suite, in-sample)"


@dataclass(frozen=True)
class Outcome:
    label: str
    best: str
    confidence: float
    routed: str
    method: str


def task_cost(model: str, tokens: tuple[int, int] = TASK_TOKENS) -> float:
    price_in, price_out = PRICES[model]
    return (tokens[0] * price_in + tokens[1] * price_out) / 1e6


def bundled_agents() -> dict[str, AgentSpec]:
    """The shipped agent files (not the user's search path: the bench must be reproducible)."""
    specs = [parse_agent_file(p)[0] for p in sorted(bundled_agents_dir().glob("*.md"))]
    return {s.name: s for s in specs}


def with_suite(agents: Mapping[str, AgentSpec], suite: AgentSuite) -> dict[str, AgentSpec]:
    extra = {a.name: AgentSpec(name=a.name, description=a.description, prompt="") for a in suite.agents}
    return {**agents, **extra}


def run(router: Router, tasks: Sequence[LabelledTask]) -> list[Outcome]:
    outcomes = []
    for t in tasks:
        scores, decision = router.scores(t.task), router.route(t.task)
        best = scores.best
        outcomes.append(Outcome(t.label, best, scores.probs[best], decision.agent, decision.method))
    return outcomes


def ece(outcomes: Sequence[Outcome], bins: int = 10) -> float:
    """Expected calibration error of the argmax confidence, equal-width bins."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        chunk = [o for o in outcomes if lo < o.confidence <= hi or (b == 0 and o.confidence == 0)]
        if chunk:
            acc = sum(o.best == o.label for o in chunk) / len(chunk)
            conf = sum(o.confidence for o in chunk) / len(chunk)
            total += len(chunk) / len(outcomes) * abs(acc - conf)
    return total


def precision_recall(outcomes: Sequence[Outcome], agent: str) -> tuple[float, float]:
    predicted = [o for o in outcomes if o.routed == agent]
    actual = [o for o in outcomes if o.label == agent]
    hits = sum(o.label == agent for o in predicted)
    return hits / max(len(predicted), 1), hits / max(len(actual), 1)


def latency_ms(router: Router, tasks: Sequence[str]) -> tuple[float, float]:
    """p50 and p99 of single `route` calls, in milliseconds."""
    return route_many.latency(router, tasks, REPEATS)


def cost_saving(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Saving vs sending everything to the senior; a senior task routed to the junior pays for both."""
    opus, sonnet = task_cost("opus"), task_cost("sonnet")
    everything_senior = opus * len(outcomes)
    routed = sum(_routed_cost(o, opus, sonnet) for o in outcomes)
    oracle = sum(opus if o.label == SENIOR else sonnet for o in outcomes)
    deferred = sum(o.method == "default" for o in outcomes)
    return {
        "saving_router_offline": 1 - routed / everything_senior,
        "saving_perfect_routing": 1 - oracle / everything_senior,
        "tiebreak_calls_share": deferred / len(outcomes),
        "tiebreak_cost_per_call_usd": task_cost("haiku", TIEBREAK_TOKENS),
        "task_cost_opus_usd": opus,
        "task_cost_sonnet_usd": sonnet,
    }


def _routed_cost(o: Outcome, opus: float, sonnet: float) -> float:
    if o.routed != JUNIOR:
        return opus
    return sonnet + (opus if o.label == SENIOR else 0.0)


def pair_report(router: Router, tasks: Sequence[LabelledTask], *, timed: bool = True) -> dict[str, Any]:
    outcomes = run(router, tasks)
    confident = [o for o in outcomes if o.method != "default"]
    deferred = [o for o in outcomes if o.method == "default"]
    report: dict[str, Any] = {
        "tasks": len(outcomes),
        "accuracy_routed": _acc(outcomes, routed=True),
        "accuracy_argmax": _acc(outcomes, routed=False),
        "ece": ece(outcomes),
        "deferred_share": len(deferred) / len(outcomes),
        "accuracy_confident": _acc(confident, routed=True),
        "accuracy_argmax_on_deferred": _acc(deferred, routed=False),
    }
    for agent in (SENIOR, JUNIOR):
        report[f"precision_{agent}"], report[f"recall_{agent}"] = precision_recall(outcomes, agent)
    if timed:
        report["p50_ms"], report["p99_ms"] = latency_ms(router, [t.task for t in tasks])
        report.update(cost_saving(outcomes))
    return report


def suite_report(router: Router, ml_tasks: Sequence[LabelledTask], suite: AgentSuite) -> dict[str, Any]:
    """Routing with user-added agents loaded next to the bundled pair."""
    ml, other = run(router, ml_tasks), run(router, suite.tasks)
    return {
        "agents_added": len(suite.agents),
        "tasks": len(ml) + len(other),
        "accuracy_argmax_all": _acc(ml + other, routed=False),
        "accuracy_routed_added_agent_tasks": _acc(other, routed=True),
        "accuracy_argmax_added_agent_tasks": _acc(other, routed=False),
        "ml_tasks_taken_by_added_agent": sum(o.best not in (SENIOR, JUNIOR) for o in ml) / len(ml),
        "accuracy_routed_ml_tasks": _acc(ml, routed=True),
        "ece_all": ece(ml + other),
    }


def _acc(outcomes: Sequence[Outcome], *, routed: bool) -> float:
    if not outcomes:
        return float("nan")
    return sum((o.routed if routed else o.best) == o.label for o in outcomes) / len(outcomes)


def build_time_ms(agents: Mapping[str, AgentSpec], semantic: bool) -> float:
    start = time.perf_counter()
    build_router(agents, semantic=semantic)
    return (time.perf_counter() - start) * 1000


def max_size_ms(router: Router) -> float:
    """Median time to route a task at the size cap (the scorer reads its first ROUTED_CHARS)."""
    task = ("Design a retrieval pipeline for our docs and estimate what it would cost. " * 300)[:MAX_TASK_CHARS]
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        router.route(task)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(samples)


def data_sets(dev: bool) -> tuple[Weights | None, list[LabelledTask], AgentSuite]:
    """(weights, ML tasks, agent suite): committed weights on the held-out sets, or a train-only fit
    scored on calib for tuning."""
    if not dev:
        return None, load_labelled(TEST_TASKS), load_agent_suite(TEST_AGENTS)
    labelled = load_labelled()
    weights = fit_weights(labelled, load_agent_suite(), classifier_splits=("train",))
    return weights, [t for t in labelled if t.split == "calib"], load_agent_suite()


def measure(dev: bool, threshold: float, semantic: bool) -> dict[str, Any]:
    agents = bundled_agents()
    first_build = build_time_ms(agents, semantic)
    weights, tasks, suite = data_sets(dev)
    pair_router = build_router(agents, threshold=threshold, weights=weights, semantic=semantic)
    multi = build_router(with_suite(agents, suite), threshold=threshold, weights=weights, semantic=semantic)
    sections = {
        "pair": pair_report(pair_router, tasks),
        "with_added_agents": suite_report(multi, tasks, suite),
    }
    if not dev:
        sections["stress"] = pair_report(pair_router, load_labelled(STRESS_TASKS), timed=False)
    timing = {"build_ms_first": first_build, "build_ms_warm": build_time_ms(agents, semantic)}
    timing["max_size_task_ms"] = max_size_ms(pair_router)
    data = DEV_DATA if dev else "held-out test"
    scoring = "by meaning" if semantic else "by words"
    return {"data": data, "scoring": scoring, "threshold": threshold, **timing, **sections, "assumptions": ASSUMPTIONS}


def print_table(result: Mapping[str, Any]) -> None:
    print(f"router bench: {result['data']}; scoring {result['scoring']}; threshold {result['threshold']}; "
          f"{result['cores']} core(s)")  # fmt: skip
    first, warm = result["build_ms_first"], result["build_ms_warm"]
    print(f"  build_router: {first:.1f} ms first (loads weights), {warm:.2f} ms after")
    print(f"  route() of a task at the {MAX_TASK_CHARS:,}-character cap: {result['max_size_task_ms']:.2f} ms")
    for section in ("pair", "with_added_agents", "stress", "many_agents_by_meaning", "many_agents_by_words"):
        if section in result:
            print(f"[{section}]")
            _print_rows(result[section], "  ")
    a = result["assumptions"]
    print(f"assumptions: USD per Mtok in/out {a['prices_usd_per_mtok']};")
    print(f"  {a['task_tokens']} tokens in/out per task, {a['tiebreak_tokens']} per Haiku tie-break call;")
    print("  a senior task routed to the junior is charged twice (junior attempt + senior redo).")


def _print_rows(rows: Mapping[str, Any], indent: str) -> None:
    for key, value in rows.items():
        if isinstance(value, Mapping):
            print(f"{indent}{key}:")
            _print_rows(value, indent + "  ")
        else:
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            print(f"{indent}{key:<40} {shown}")


def _pin(cores: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dev", action="store_true", help="fit on train, score on calib (for tuning)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--words", action="store_true", help="score the pair sections by words (no routing model)")
    parser.add_argument("--many", action="store_true", help="add the held-out many-agent sections")
    parser.add_argument("--cores", type=int, default=1, help="cores the process may use (the encoder's threads)")
    parser.add_argument("--tiebreak", action="store_true", help="with --many: the local tie-break on unsure tasks")
    args = parser.parse_args(argv)
    _pin(args.cores)
    result = {"cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else args.cores}
    result |= measure(args.dev, args.threshold, semantic=not args.words)
    if args.many:
        bundled = bundled_agents()
        result["many_agents_by_meaning"] = route_many.measure(bundled, semantic=True, with_tiebreak=args.tiebreak)
        result["many_agents_by_words"] = route_many.measure(bundled, semantic=False)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
