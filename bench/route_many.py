"""The many-agent part of bench/route.py: held-out corpus agents, never used in training or tuning.

Data (tests/data/routing/): `corpus_split.json` (which corpus agents are held out; the "mix" is the
issue's 18), `corpus_heldout.jsonl` (tasks labelled with the agent a careful engineer would pick, set
"mix" with our two in a 20-agent scenario, set "heldout" for the other 32), `off_topic_test.jsonl`.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.agent_spec import AgentSpec
from orchestrator.routing import DEFAULT_THRESHOLD, Router, build_router
from orchestrator.routing.adapter import TaskAdapter
from orchestrator.routing.data import JUNIOR, SENIOR
from orchestrator.routing.encoder import default_encoder
from orchestrator.routing.profiles import ProfileCache
from orchestrator.routing.router import _shipped_semantic_weights, _shipped_weights
from orchestrator.routing.semantic import FEATURES, SemanticScorer
from orchestrator.routing.train_semantic import corpus_agents

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "routing"
SIZES = (2, 5, 20, 50)
DRAWS = 2
"""Random agent sets per task and size (the task's own agent is always among them)."""
REPEATS = 5


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _ece(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> float:
    total = 0.0
    for b in range(bins):
        chunk = [(c, ok) for c, ok in pairs if b / bins < c <= (b + 1) / bins or (b == 0 and c == 0)]
        if chunk:
            gap = statistics.mean(ok for _, ok in chunk) - statistics.mean(c for c, _ in chunk)
            total += len(chunk) / len(pairs) * abs(gap)
    return total


def scenario(router: Router, tasks: Sequence[dict[str, str]]) -> dict[str, Any]:
    """Top-1 / top-3 of the router's ranking, what `route` sends where, calibration and unsure share."""
    top1, top3, routed, calib, unsure = 0, 0, 0, [], 0
    for row in tasks:
        decision, scores = router.route(row["task"]), router.scores(row["task"])
        ranked = sorted(scores.probs, key=lambda n: -scores.probs[n])
        top1 += ranked[0] == row["label"]
        top3 += row["label"] in ranked[:3]
        routed += decision.agent == row["label"]
        unsure += decision.method == "default"
        calib.append((scores.probs[ranked[0]], ranked[0] == row["label"]))
    n = len(tasks)
    return {"tasks": n, "top1": top1 / n, "top3": top3 / n, "routed": routed / n, "unsure_share": unsure / n,
            "ece": _ece(calib)}  # fmt: skip


def latency(router: Router, texts: Sequence[str], repeats: int = REPEATS) -> tuple[float, float]:
    """p50 and p99 of single `route` calls, in milliseconds, after one warm-up pass; by meaning, each call
    encodes its task (the encoder's memo of recent tasks is emptied first)."""
    forget = default_encoder().encode_one.cache_clear if router.by_meaning else (lambda: None)
    for text in texts:
        router.route(text)
    samples = []
    for _ in range(repeats):
        for text in texts:
            forget()
            start = time.perf_counter_ns()
            router.route(text)
            samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def by_size(
    pool: Mapping[str, AgentSpec], tasks: Sequence[dict[str, str]], make: Callable[..., Router]
) -> dict[str, float]:
    """Top-1 accuracy with N agents loaded: the task's own plus N - 1 drawn from the held-out pool."""
    rng = random.Random(19)
    out = {}
    for size in SIZES:
        hits = total = 0
        for row in tasks:
            for _ in range(DRAWS):
                own = [SENIOR, JUNIOR] if row["label"] in (SENIOR, JUNIOR) else [row["label"]]
                rest = [n for n in pool if n not in own and n not in (SENIOR, JUNIOR)]
                others = rng.sample(rest, max(size - len(own), 0))
                router = make({n: pool[n] for n in own + others}, default_agent=own[0])
                hits += router.scores(row["task"]).best == row["label"]
                total += 1
        out[f"top1_{size}_agents"] = hits / total
    return out


def agent_not_loaded(pool: Mapping[str, AgentSpec], bundled: Mapping[str, AgentSpec],
                     tasks: Sequence[dict[str, str]], make: Callable[..., Router]) -> dict[str, float]:  # fmt: skip
    """Tasks whose agent is not loaded: our two plus 4 other agents of the pool (drawn per task), so the
    honest answer is "no loaded agent fits". How often `route` still takes a loaded agent with confidence
    (an adjacent agent may be a fair pick, so this is an upper bound on the harm), and how sure it is."""
    rng = random.Random(23)
    confident, confidence = [], []
    for row in tasks:
        for _ in range(DRAWS):
            others = rng.sample([n for n in pool if n != row["label"]], 4)
            decision = make({**bundled, **{n: pool[n] for n in others}}).route(row["task"])
            confident.append(decision.method != "default")
            confidence.append(decision.candidates[0][1])
    return {"tasks": len(tasks), "confident_share": statistics.mean(confident),
            "mean_confidence": statistics.mean(confidence)}  # fmt: skip


def measure(bundled: Mapping[str, AgentSpec], semantic: bool, with_tiebreak: bool = False) -> dict[str, Any]:
    split = json.loads((DATA / "corpus_split.json").read_text(encoding="utf-8"))
    heldout = corpus_agents("heldout")
    rows = _rows("corpus_heldout.jsonl")
    mix_rows = [r for r in rows if r["set"] == "mix"]
    mix_agents = {**bundled, **{n: heldout[n] for n in split["mix"]}}
    make = lambda agents, **kw: build_router(agents, semantic=semantic, **kw)  # noqa: E731
    mix = make(mix_agents)
    result: dict[str, Any] = {"mix_20_agents": scenario(mix, mix_rows)}
    pair_rows = [r for r in mix_rows if r["label"] in (SENIOR, JUNIOR)]
    result["mix_20_agents"]["senior_junior_split"] = scenario(mix, pair_rows)["top1"]
    everyone = {**bundled, **heldout}
    result["all_52_agents"] = scenario(make(everyone), rows)
    result["by_agents_loaded"] = by_size(everyone, rows, make)
    mix_pool = {n: heldout[n] for n in split["mix"]}
    others = [r for r in mix_rows if r["label"] not in (SENIOR, JUNIOR)]
    result["agent_not_loaded"] = agent_not_loaded(mix_pool, bundled, others, make)
    off = [r["task"] for r in _rows("off_topic_test.jsonl")]
    for name, router in (("mix_20_agents", mix), ("pair_only", make(dict(bundled)))):
        confs = [max(router.scores(t).probs.values()) for t in off]
        result[f"off_topic_{name}"] = {"mean_confidence": statistics.mean(confs), "max_confidence": max(confs),
                                       "hello": max(router.scores("hello").probs.values())}  # fmt: skip
    result["mix_20_agents"]["p50_ms"], result["mix_20_agents"]["p99_ms"] = latency(mix, [r["task"] for r in mix_rows])
    if semantic:
        result["ablations_mix_top1"] = ablations(mix_agents, mix_rows)
    if with_tiebreak:
        result["tiebreak_local_mix"] = asyncio.run(tiebreak(mix, mix_rows, local_ask(mix_agents, mix)))
    return result


def ablations(agents: Mapping[str, AgentSpec], rows: Sequence[dict[str, str]]) -> dict[str, float]:
    """Mix top-1 with one feature's weight set to zero, or with the task adapter left out (the rest as
    fitted, not refitted)."""
    base = _shipped_semantic_weights()
    out = {}
    for i, name in enumerate(FEATURES):
        weights = replace(base, feature=tuple(0.0 if j == i else w for j, w in enumerate(base.feature)))
        out[f"without_{name}"] = scenario(build_router(agents, semantic=True, semantic_weights=weights), rows)["top1"]
    scorer = SemanticScorer(base, _shipped_weights(), agents, SENIOR, default_encoder(), ProfileCache(),
                            TaskAdapter.identity())  # fmt: skip
    out["without_task_adapter"] = scenario(Router(scorer, dict(agents), DEFAULT_THRESHOLD, SENIOR), rows)["top1"]
    return out


def local_ask(agents: Mapping[str, AgentSpec], router: Router) -> Any:
    """The tie-break as `orchestrate run` asks it offline: Settings' tie-break model on the local provider,
    through the one model-call site."""
    from orchestrator.config import Settings
    from orchestrator.graphs.deps import Deps
    from orchestrator.graphs.route import tiebreak_ask
    from orchestrator.local import LocalProvider

    deps = Deps(agents=agents, provider=LocalProvider(), router=router, tools={}, workspace=Path.cwd(),
                settings=Settings())  # fmt: skip
    return tiebreak_ask(deps)


async def tiebreak(router: Router, rows: Sequence[dict[str, str]], ask: Any) -> dict[str, Any]:
    """How often the router is unsure, and what the tie-break model does with those tasks."""
    unsure = right_before = right_after = flipped_right = flipped_wrong = failed = 0
    seconds = []
    for row in rows:
        if router.route(row["task"]).method != "default":
            continue
        unsure += 1
        before = router.scores(row["task"]).best == row["label"]
        start = time.perf_counter()
        decision = await router.aroute(row["task"], ask=ask)
        seconds.append(time.perf_counter() - start)
        after = decision.agent == row["label"]
        failed += decision.method != "tiebreak-model"
        right_before, right_after = right_before + before, right_after + after
        flipped_right += after and not before
        flipped_wrong += before and not after
    return {"unsure_tasks": unsure, "top1_on_unsure": right_before / max(unsure, 1),
            "tiebreak_right_on_unsure": right_after / max(unsure, 1), "flipped_to_right": flipped_right,
            "flipped_to_wrong": flipped_wrong, "no_usable_answer": failed,
            "median_s": statistics.median(seconds) if seconds else 0.0}  # fmt: skip
