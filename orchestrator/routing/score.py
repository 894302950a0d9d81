"""Scoring: one probability per loaded agent for a task, plus the words that drove the winner.

Two sources, mixed by the gate:

- the bundled pair (senior-ml-engineer / ml-engineer), when loaded, share the probability that the task
  is ML engineering work, split by the calibrated classifier trained on our labelled data;
- every other agent shares the gate's probability that the task is someone else's, split by a softmax
  over description similarity.

With neither bundled agent loaded, description similarity alone decides among all agents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.agent_spec import AgentSpec
from orchestrator.routing.describe import TermIndex, Vector, agent_document, cosine
from orchestrator.routing.text import STOP_WORDS, classifier_features, surface_forms
from orchestrator.routing.weights import Weights, softmax

__all__ = ["ROUTED_CHARS", "Scorer", "Scores"]

_MAX_CUES = 3
ROUTED_CHARS = 4000


@dataclass(frozen=True)
class Scores:
    """The router's belief about one task."""

    probs: Mapping[str, float]
    """Calibrated probability, per loaded agent, that it is the right one (sums to 1)."""
    best: str
    method: Literal["classifier", "description"]
    cues: tuple[str, ...]
    """Up to three of the task's own words or phrases that pointed to `best`."""
    none: float = 0.0
    """Probability that no loaded agent fits (scoring by meaning only; `probs` then sums to 1 - none)."""
    passages: Mapping[str, str] = field(default_factory=dict)
    """Per user agent, the passage of its file that the task matched best (scoring by meaning)."""


class Scorer:
    """Pure, precomputed scoring for a fixed set of agents."""

    by_meaning = False

    def __init__(self, weights: Weights, agents: Mapping[str, AgentSpec], default_agent: str) -> None:
        self._weights = weights
        self._default = default_agent
        self._index = TermIndex(weights.idf, weights.idf_unseen)
        self._pair = tuple(name for name in weights.labels if name in agents)
        self._profiles: dict[str, Vector] = {
            name: self._index.vector(agent_document(name, spec.description))
            for name, spec in agents.items()
            if name not in self._pair
        }

    def score(self, task: str) -> Scores:
        """Scores from the task's first `ROUTED_CHARS` characters: the request comes first, and pasted
        logs or context after it would only cost time (and add noise)."""
        task = task[:ROUTED_CHARS]
        vec = self._index.vector(task)
        sims = {name: cosine(vec, profile) for name, profile in self._profiles.items()}
        if not self._pair:
            return self._finish(task, vec, softmax(sims, self._weights.gate.temperature))
        feats = classifier_features(task)
        p_user = self._user_probability(vec, sims)
        probs = {name: (1.0 - p_user) * p for name, p in self._pair_probs(feats).items()}
        if sims:
            user = softmax(sims, self._weights.gate.temperature)
            probs.update({name: p_user * p for name, p in user.items()})
        return self._finish(task, vec, probs, feats)

    def _user_probability(self, vec: Vector, sims: Mapping[str, float]) -> float:
        if not sims:
            return 0.0
        ml = cosine(vec, self._weights.centroid)
        return self._weights.gate.user_probability(max(sims.values()), ml, self._index.known_share(vec))

    def _pair_probs(self, feats: set[str]) -> dict[str, float]:
        """The classifier's split between the bundled agents that are loaded."""
        if len(self._pair) == 1:
            return {self._pair[0]: 1.0}
        negative, positive = self._weights.labels
        p = self._weights.positive_probability(feats)
        return {positive: p, negative: 1.0 - p}

    def _finish(self, task: str, vec: Vector, probs: dict[str, float], feats: set[str] | None = None) -> Scores:
        best = max(sorted(probs), key=lambda name: (probs[name], name == self._default))
        if feats is not None and best in self._pair:
            return Scores(probs, best, "classifier", self._classifier_cues(task, feats, best))
        return Scores(probs, best, "description", self._description_cues(task, vec, best))

    def _classifier_cues(self, task: str, feats: set[str], best: str) -> tuple[str, ...]:
        """The features that pushed hardest towards `best`, in the task's own words."""
        sign = 1.0 if best == self._weights.labels[1] else -1.0
        coef = self._weights.coef
        ranked = sorted((f for f in feats if sign * coef.get(f, 0.0) > 0), key=lambda f: -sign * coef[f])
        return _render(ranked, surface_forms(task))

    def _description_cues(self, task: str, vec: Vector, best: str) -> tuple[str, ...]:
        """Shared words between the task and `best`'s description, heaviest first."""
        profile = self._profiles.get(best, {})
        shared = sorted((t for t in vec if t in profile), key=lambda t: -vec[t] * profile[t])
        return _render([f"w:{t}" for t in shared], surface_forms(task))


def _render(features: list[str], forms: Mapping[str, str]) -> tuple[str, ...]:
    """Turn feature keys back into the task's words: no shape features, no phrases made only of stop
    words, and no phrase that repeats (or is part of) one already quoted."""
    cues: list[str] = []
    for feature in features:
        kind, _, body = feature.partition(":")
        parts = body.split()
        if kind not in ("w", "b", "f", "f2") or all(p in STOP_WORDS for p in parts):
            continue
        text = " ".join(forms.get(part, part) for part in parts)
        if any(text in cue or cue in text for cue in cues):
            continue
        cues.append(text)
        if len(cues) == _MAX_CUES:
            break
    return tuple(cues)
