"""The router's fitted numbers and the arithmetic that uses them, shared by training and runtime.

A logistic regression over sparse binary text features separates the two bundled agents; Platt scaling
turns its score into a probability that matches observed accuracy. A small logistic "gate" over
description similarity decides how likely a task is to belong to a user-added agent instead. Everything
is plain floats in one JSON file (orchestrator/data/routing_weights.json) that
`python -m orchestrator.routing.train` regenerates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "Gate", "Weights", "classifier_logit", "load_weights", "sigmoid", "softmax"]

FORMAT = 1
_DIGITS = 6


def sigmoid(z: float) -> float:
    """Logistic function that never overflows."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def softmax(scores: Mapping[str, float], temperature: float) -> dict[str, float]:
    """Normalised exp(score / temperature), shifted by the max so it cannot overflow."""
    top = max(scores.values())
    exps = {k: math.exp((v - top) / temperature) for k, v in scores.items()}
    total = sum(exps.values())
    return {k: v / total for k, v in exps.items()}


def classifier_logit(coef: Mapping[str, float], bias: float, feats: Iterable[str]) -> float:
    """Bias plus the known features' weights, scaled by 1/sqrt(count) so long tasks are not overconfident."""
    known = [coef[f] for f in feats if f in coef]
    if not known:
        return bias
    return bias + math.fsum(known) / math.sqrt(len(known))


@dataclass(frozen=True)
class Gate:
    """P(task belongs to a user-added agent), a logistic function of three similarities:

    - `sim`: the task's best cosine with a user-added agent's description (evidence for them);
    - `ml`: its cosine with the centroid of the labelled ML tasks (evidence for the bundled pair);
    - `known`: the share of its content words that the labelled ML tasks use.

    `temperature` spreads that probability over the user-added agents by description similarity."""

    sim: float
    ml: float
    known: float
    bias: float
    temperature: float

    def user_probability(self, best_similarity: float, ml_similarity: float, known_share: float) -> float:
        return sigmoid(self.sim * best_similarity + self.ml * ml_similarity + self.known * known_share + self.bias)


@dataclass(frozen=True)
class Weights:
    """Everything the router learned from its labelled data."""

    labels: tuple[str, str]
    """(negative, positive) class: the agent names the classifier separates."""
    bias: float
    coef: Mapping[str, float]
    platt: tuple[float, float]
    """(a, b): calibrated P(positive) = sigmoid(a * logit + b)."""
    idf: Mapping[str, float]
    """Inverse document frequency of content words over the training tasks."""
    idf_unseen: float
    centroid: Mapping[str, float]
    """Unit-length mean TF-IDF vector of the training tasks: what ML work looks like."""
    gate: Gate
    trained_on: Mapping[str, int]

    def positive_probability(self, feats: Iterable[str]) -> float:
        a, b = self.platt
        return sigmoid(a * classifier_logit(self.coef, self.bias, feats) + b)

    def to_json(self) -> str:
        """Stable text (sorted keys, rounded floats) so a regenerated file diffs cleanly."""
        body = {"format": FORMAT, **asdict(self)}
        return json.dumps(_rounded(body), sort_keys=True, indent=0, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Weights:
        raw: dict[str, Any] = json.loads(text)
        if raw.get("format", FORMAT) != FORMAT:
            raise ValueError(f"routing weights format {raw.get('format')!r}, expected {FORMAT}")
        return cls(
            labels=(raw["labels"][0], raw["labels"][1]),
            bias=raw["bias"],
            coef=raw["coef"],
            platt=(raw["platt"][0], raw["platt"][1]),
            idf=raw["idf"],
            idf_unseen=raw["idf_unseen"],
            centroid=raw["centroid"],
            gate=Gate(**raw["gate"]),
            trained_on=raw["trained_on"],
        )


def load_weights(path: Path) -> Weights:
    return Weights.from_json(path.read_text(encoding="utf-8"))


def _rounded(value: Any) -> Any:
    """Round floats for a file that is stable across platforms' last-bit differences."""
    if isinstance(value, float):
        return round(value, _DIGITS)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value
