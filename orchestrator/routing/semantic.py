"""Scoring by meaning: which of any number of loaded agents a task belongs to, or none of them.

Each candidate gets a score that is a weighted sum of four similarities between the task and the agent:

- `description`: cosine of their sentence vectors (encoder.py) with the agent's description;
- `passages`: the mean of its two best cosines with the passages of the agent's body (profiles.py);
- `words`: TF-IDF cosine with its name and description (describe.py): rare shared words ("Terraform",
  "CVAT") that a sentence vector blurs;
- `ml`: for the bundled pair only, the mean of its three best cosines with our labelled ML tasks
  (routing_labelled.jsonl, the classifier's training split), which say what the pair's work looks like
  far better than two descriptions can.

The bundled senior-ml-engineer and ml-engineer are one candidate (their features are the better of the
two's, plus `pair_bias`), split afterwards by the trained two-way classifier (score.py), which keeps the
senior/junior split it was measured on. One more candidate, "none", has a constant score: when no agent's
similarities beat it, most of the probability goes to "no loaded agent fits", so "hello" gets a low
confidence instead of a confident pick. A softmax over the candidates gives calibrated probabilities; all
the weights are fitted together on many-agent episodes drawn from training agents only
(train_semantic.py) and live in orchestrator/data/routing_semantic.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from orchestrator.agent_spec import AgentSpec
from orchestrator.routing.data import load_labelled
from orchestrator.routing.describe import TermIndex, agent_document, cosine
from orchestrator.routing.encoder import Encoder, Matrix
from orchestrator.routing.profiles import AgentProfile, ProfileCache, build_profiles
from orchestrator.routing.score import ROUTED_CHARS, Scorer, Scores
from orchestrator.routing.weights import Weights

__all__ = ["FEATURES", "NONE", "SEMANTIC_FORMAT", "Candidates", "SemanticScorer", "SemanticWeights", "candidates"]

FEATURES = ("description", "passages", "words", "ml")
NONE = "none"
SEMANTIC_FORMAT = 1
_PAIR = "ml pair"
_EXAMPLES = 3


@dataclass(frozen=True)
class SemanticWeights:
    """The fitted numbers (see the module docstring)."""

    feature: tuple[float, float, float, float]
    """Weights of `FEATURES`, in that order."""
    pair_bias: float
    none: float
    """The "no loaded agent fits" candidate's score."""
    trained_on: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"format": SEMANTIC_FORMAT, **asdict(self)}
        body["feature"] = [round(x, 6) for x in self.feature]
        body["pair_bias"], body["none"] = round(self.pair_bias, 6), round(self.none, 6)
        return json.dumps(body, sort_keys=True, indent=0) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SemanticWeights:
        raw: dict[str, Any] = json.loads(text)
        if raw.get("format") != SEMANTIC_FORMAT:
            raise ValueError(f"semantic routing weights format {raw.get('format')!r}, expected {SEMANTIC_FORMAT}")
        f = raw["feature"]
        return cls((f[0], f[1], f[2], f[3]), raw["pair_bias"], raw["none"], raw["trained_on"])


@dataclass(frozen=True)
class Candidates:
    """The similarities of one task to each candidate: `names[i]` has `features[i]`; the pair, when
    loaded, is `_PAIR`. `best_passage[i]` is the passage that matched best (for the reason)."""

    names: tuple[str, ...]
    features: Matrix
    best_passage: tuple[str, ...]
    is_pair: tuple[bool, ...]


def candidates(
    vec: Matrix, words: dict[str, float], profiles: Mapping[str, AgentProfile],
    documents: Mapping[str, dict[str, float]], pair: tuple[str, ...], examples: Matrix,
) -> Candidates:  # fmt: skip
    """The features of every candidate for one task vector (`vec`, unit) and its TF-IDF vector (`words`)."""
    rows: dict[str, tuple[np.ndarray, str]] = {}
    for name, profile in profiles.items():
        sims = profile.vectors @ vec
        body = np.sort(sims[1:])[::-1][:2] if len(sims) > 1 else sims[:1]
        best = int(np.argmax(sims))
        feats = np.array([sims[0], body.mean(), cosine(words, documents[name]), 0.0], np.float32)
        rows[name] = (feats, profile.passages[best])
    names, feats_out, passages, is_pair = [], [], [], []
    for name, (feats, passage) in rows.items():
        if name not in pair:
            names.append(name)
            feats_out.append(feats)
            passages.append(passage)
            is_pair.append(False)
    if pair:
        best_member = max(pair, key=lambda n: float(rows[n][0][:2].max()))
        merged = np.max([rows[n][0] for n in pair], axis=0)
        merged[3] = float(np.sort(examples @ vec)[-_EXAMPLES:].mean()) if len(examples) else 0.0
        names.append(_PAIR)
        feats_out.append(merged)
        passages.append(rows[best_member][1])
        is_pair.append(True)
    return Candidates(tuple(names), np.array(feats_out, np.float32), tuple(passages), tuple(is_pair))


def softmax_with_none(c: Candidates, w: SemanticWeights) -> tuple[np.ndarray, float]:
    """(P per candidate, P(none)): one softmax over the candidates' scores and the constant "none"."""
    scores = c.features @ np.array(w.feature, np.float32) + np.where(c.is_pair, w.pair_bias, 0.0)
    scores = np.append(scores, w.none)
    exps = np.exp(scores - scores.max())
    probs = exps / exps.sum()
    return probs[:-1], float(probs[-1])


def pair_examples() -> list[str]:
    """The labelled ML tasks the pair's `ml` feature compares with (the classifier's training split)."""
    return [t.task for t in load_labelled() if t.split == "train"]


class SemanticScorer:
    """Pure scoring for a fixed set of agents, built once (profiles are encoded, or read from the cache)."""

    by_meaning = True

    def __init__(
        self, weights: SemanticWeights, word_weights: Weights, agents: Mapping[str, AgentSpec], default_agent: str,
        encoder: Encoder, cache: ProfileCache | None = None,
    ) -> None:  # fmt: skip
        self._w = weights
        self._words = word_weights
        self._default = default_agent
        self._encoder = encoder
        self._index = TermIndex(word_weights.idf, word_weights.idf_unseen)
        self._pair = tuple(name for name in word_weights.labels if name in agents)
        self._profiles = build_profiles(agents, encoder.encode, cache)
        self._documents = {n: self._index.vector(agent_document(n, s.description)) for n, s in agents.items()}
        examples = pair_examples()
        self._examples = (
            (cache.vectors(examples, encoder.encode) if cache else encoder.encode(examples))
            if self._pair
            else np.zeros((0, 384), np.float32)
        )
        self._pair_scorer = (
            Scorer(word_weights, {n: agents[n] for n in self._pair}, default_agent) if self._pair else None
        )

    def score(self, task: str) -> Scores:
        task = task[:ROUTED_CHARS]
        vec = self._encoder.encode_one(task)
        c = candidates(vec, self._index.vector(task), self._profiles, self._documents, self._pair,
                       self._examples)  # fmt: skip
        probs, none = softmax_with_none(c, self._w)
        out: dict[str, float] = {}
        matched: dict[str, str] = {}
        split: Scores | None = None
        for name, p, passage, is_pair in zip(c.names, probs, c.best_passage, c.is_pair, strict=True):
            if is_pair:
                assert self._pair_scorer is not None
                split = self._pair_scorer.score(task)  # the two-way classifier alone: its split and its cues
                out.update({n: float(p) * q for n, q in split.probs.items()})
            else:
                out[name] = float(p)
                matched[name] = passage
        best = max(sorted(out), key=lambda name: (out[name], name == self._default))
        if split is not None and best in self._pair:
            return Scores(out, best, "classifier", split.cues, none=none)
        return Scores(out, best, "description", (), none=none, matched=matched[best])
