"""Fit the router's weights from the labelled data and write orchestrator/data/routing_weights.json.

    .venv/bin/python -m orchestrator.routing.train          # rewrite the committed weights
    .venv/bin/python -m orchestrator.routing.train --check  # exit 1 if they are stale

Committed rather than fitted at startup because fitting takes about a second in pure Python and loading
takes a few milliseconds. Deterministic (fixed seed, fixed order), so a test can check that the
committed file is what this script produces. Never reads the held-out test sets.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.routing.data import (
    JUNIOR,
    SENIOR,
    WEIGHTS_FILE,
    AgentSuite,
    LabelledTask,
    data_file,
    load_agent_suite,
    load_labelled,
)
from orchestrator.routing.describe import TermIndex, agent_document, cosine, document_frequencies
from orchestrator.routing.text import classifier_features
from orchestrator.routing.weights import Gate, Weights, classifier_logit, sigmoid, softmax

__all__ = ["Hyper", "fit_weights", "main"]

SEED = 20250611
FOLDS = 5
_CENTROID_MIN = 1e-3
_GATE_RIDGE = 0.01
_TEMPERATURES = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class Hyper:
    """Training settings, chosen by cross-validation on the train split (see bench/route.py --cv)."""

    epochs: int = 30
    l2: float = 1e-4
    learning_rate: float = 0.5


@dataclass(frozen=True)
class Example:
    feats: tuple[str, ...]
    y: float


def examples(tasks: Sequence[LabelledTask]) -> list[Example]:
    """Features and 0/1 target (1 = the senior) for each task, in a fixed order."""
    return [Example(tuple(sorted(classifier_features(t.task))), float(t.label == SENIOR)) for t in tasks]


def fit_logistic(data: Sequence[Example], hyper: Hyper, seed: int = SEED) -> tuple[float, dict[str, float]]:
    """L2-regularised logistic regression by AdaGrad SGD, scored exactly as `classifier_logit` scores."""
    coef: dict[str, float] = {f: 0.0 for ex in data for f in ex.feats}
    grad_sq = dict.fromkeys(coef, 1e-8)
    bias, bias_sq = 0.0, 1e-8
    order = list(range(len(data)))
    rng = random.Random(seed)
    for _ in range(hyper.epochs):
        rng.shuffle(order)
        for i in order:
            ex = data[i]
            g = sigmoid(classifier_logit(coef, bias, ex.feats)) - ex.y
            _adagrad_step(coef, grad_sq, ex.feats, g / math.sqrt(len(ex.feats)), hyper)
            bias_sq += g * g
            bias -= hyper.learning_rate * g / math.sqrt(bias_sq)
    return bias, coef


def _adagrad_step(
    coef: dict[str, float], grad_sq: dict[str, float], feats: Sequence[str], g: float, hyper: Hyper
) -> None:
    for f in feats:
        gf = g + hyper.l2 * coef[f]
        grad_sq[f] += gf * gf
        coef[f] -= hyper.learning_rate * gf / math.sqrt(grad_sq[f])


def cross_fitted_logits(data: Sequence[Example], hyper: Hyper, folds: int = FOLDS) -> list[float]:
    """Out-of-fold logits: every example scored by a model that never saw it (for calibration)."""
    order = list(range(len(data)))
    random.Random(SEED).shuffle(order)
    fold_of = {i: k % folds for k, i in enumerate(order)}
    logits = [0.0] * len(data)
    for fold in range(folds):
        bias, coef = fit_logistic([ex for i, ex in enumerate(data) if fold_of[i] != fold], hyper)
        for i, ex in enumerate(data):
            if fold_of[i] == fold:
                logits[i] = classifier_logit(coef, bias, ex.feats)
    return logits


def fit_platt(logits: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Platt scaling (with Platt's smoothed targets) by Newton's method: P = sigmoid(a * logit + b)."""
    pos = sum(ys)
    neg = len(ys) - pos
    targets = [(pos + 1) / (pos + 2) if y else 1 / (neg + 2) for y in ys]
    a, b = 1.0, 0.0
    for _ in range(50):
        a, b, step = _newton_step(a, b, logits, targets)
        if step < 1e-12:
            break
    return a, b


def _newton_step(a: float, b: float, xs: Sequence[float], ts: Sequence[float]) -> tuple[float, float, float]:
    """One Newton step on the 2-parameter log-loss (tiny ridge keeps the Hessian invertible)."""
    ga = gb = haa = hab = hbb = 0.0
    for x, t in zip(xs, ts, strict=True):
        p = sigmoid(a * x + b)
        d, w = p - t, max(p * (1 - p), 1e-12)
        ga, gb = ga + d * x, gb + d
        haa, hab, hbb = haa + w * x * x + 1e-9, hab + w * x, hbb + w + 1e-9
    det = haa * hbb - hab * hab
    da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
    return a - da, b - db, da * da + db * db


@dataclass(frozen=True)
class GateRow:
    """The gate's inputs for one task, and its similarity to each suite agent."""

    inputs: tuple[float, float, float]
    sims: dict[str, float]


def centroid(index: TermIndex, texts: Iterable[str]) -> dict[str, float]:
    """Unit-length sum of the texts' vectors, small entries dropped to keep the weights file small."""
    total: dict[str, float] = {}
    for text in texts:
        for term, w in index.vector(text).items():
            total[term] = total.get(term, 0.0) + w
    norm = math.sqrt(sum(w * w for w in total.values()))
    return {t: w / norm for t, w in total.items() if w / norm >= _CENTROID_MIN}


def gate_row(index: TermIndex, ml_centroid: dict[str, float], suite: AgentSuite, task: str) -> GateRow:
    vec = index.vector(task)
    sims = {a.name: cosine(vec, index.vector(agent_document(a.name, a.description))) for a in suite.agents}
    return GateRow((max(sims.values()), cosine(vec, ml_centroid), index.known_share(vec)), sims)


def fit_gate(
    index: TermIndex, ml_centroid: dict[str, float], suite: AgentSuite, ml_tasks: Sequence[LabelledTask]
) -> Gate:
    """Fit the gate on the dev suite's tasks (positive) against held-out ML tasks (negative)."""
    pos = [gate_row(index, ml_centroid, suite, t.task) for t in suite.tasks]
    neg = [gate_row(index, ml_centroid, suite, t.task) for t in ml_tasks]
    ys = [1.0] * len(pos) + [0.0] * len(neg)
    w_sim, w_ml, w_known, bias = _fit_small_logistic([r.inputs for r in pos + neg], ys)
    sims = [r.sims for r in pos]
    temperature = max(_TEMPERATURES, key=lambda t: _agent_log_likelihood(sims, suite.tasks, t))
    return Gate(sim=w_sim, ml=w_ml, known=w_known, bias=bias, temperature=temperature)


def _fit_small_logistic(xs: Sequence[Sequence[float]], ys: Sequence[float]) -> list[float]:
    """Logistic regression on a few dense features (weights, then bias) by Newton's method with a
    small ridge: a few hundred rows, so it is instant and exactly reproducible."""
    rows = [[*x, 1.0] for x in xs]
    k = len(rows[0])
    w = [0.0] * k
    for _ in range(30):
        grad = [_GATE_RIDGE * w[j] * (j < k - 1) for j in range(k)]
        hess = [[_GATE_RIDGE * (i == j and j < k - 1) + 1e-9 * (i == j) for j in range(k)] for i in range(k)]
        for x, y in zip(rows, ys, strict=True):
            p = sigmoid(sum(wj * xj for wj, xj in zip(w, x, strict=True)))
            for i in range(k):
                grad[i] += (p - y) * x[i]
                for j in range(k):
                    hess[i][j] += p * (1 - p) * x[i] * x[j]
        w = [wi - di for wi, di in zip(w, _solve(hess, grad), strict=True)]
    return w


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (k <= 4 here)."""
    n = len(b)
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    out = [0.0] * n
    for r in reversed(range(n)):
        out[r] = (m[r][n] - sum(m[r][c] * out[c] for c in range(r + 1, n))) / m[r][r]
    return out


def _agent_log_likelihood(sims: Sequence[dict[str, float]], tasks: Sequence[LabelledTask], temp: float) -> float:
    return sum(math.log(softmax(s, temp)[t.label] + 1e-12) for s, t in zip(sims, tasks, strict=True))


def fit_weights(
    labelled: Sequence[LabelledTask],
    suite: AgentSuite,
    hyper: Hyper | None = None,
    classifier_splits: tuple[str, ...] = ("train", "calib"),
) -> Weights:
    """The whole fit: the classifier on `classifier_splits` (the bench's --dev mode passes only "train"
    to score on calib), Platt on cross-fitted scores, IDF over train, the gate against calib."""
    hyper = hyper or Hyper()
    fit_on = [t for t in labelled if t.split in classifier_splits]
    data = examples(fit_on)
    bias, coef = fit_logistic(data, hyper)
    platt = fit_platt(cross_fitted_logits(data, hyper), [ex.y for ex in data])
    train = [t for t in labelled if t.split == "train"]
    idf, unseen = document_frequencies(t.task for t in train)
    index = TermIndex(idf, unseen)
    ml_centroid = centroid(index, (t.task for t in train))
    gate = fit_gate(index, ml_centroid, suite, [t for t in labelled if t.split == "calib"])
    counts = {"classifier": len(fit_on), "idf": len(train), "agent_tasks": len(suite.tasks)}
    return Weights((JUNIOR, SENIOR), bias, coef, platt, idf, unseen, ml_centroid, gate, counts)


def fitted_text() -> str:
    """The weights file this script would write, from the shipped data."""
    return fit_weights(load_labelled(), load_agent_suite()).to_json()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed weights are stale")
    args = parser.parse_args(argv)
    target = data_file(WEIGHTS_FILE)
    text = fitted_text()
    if args.check:
        stale = not target.exists() or target.read_text(encoding="utf-8") != text
        print(f"{target}: {'stale' if stale else 'up to date'}")
        return int(stale)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
