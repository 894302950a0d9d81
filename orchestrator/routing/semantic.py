"""Scoring by meaning: which of any number of loaded agents a task belongs to, or none of them.

Each candidate gets a score that is a weighted sum of five similarities between the task and the agent:

- `description`: cosine of their sentence vectors (encoder.py) with the agent's description;
- `passages`: the mean of its two best cosines with the passages of the agent's body (profiles.py);
- `words`: TF-IDF cosine with its name and description (describe.py): rare shared words ("Terraform",
  "CVAT") that a sentence vector blurs;
- `body`: BM25 with the agent's whole file (body.py), where the rare words an agent works with are named;
- `ml`: for the bundled pair only, how much closer the task is to our labelled ML tasks than to the
  corpus agents' tasks (the mean of its three best cosines with each; routing_labelled.jsonl's "train"
  split and routing_corpus_tasks.jsonl), which says what the pair's work looks like far better than two
  descriptions can.

The task's vector is compared with profiles after the task adapter (adapter.py), a fitted linear map
that turns a task's vector toward its agent's description; with other tasks (`ml`) as it is encoded.
Sentence cosines are corrected for hubness (CSLS): a vector close to every task (a file's generic
"production-quality code with tests" line) would win tasks that are no agent's in particular, so each
agent vector's cosine is lowered by half its mean cosine with its ten nearest reference tasks of other
agents (CSLS's usual half; the task's own half is the same for every candidate, so it drops out).

The bundled senior-ml-engineer and ml-engineer are one candidate (their features are the better of the
two's, plus `pair_bias`), split afterwards by the trained two-way classifier (score.py), which keeps the
senior/junior split it was measured on. One more candidate, "none", has a constant score: when no agent's
similarities beat it, most of the probability goes to "no loaded agent fits", so "hello" gets a low
confidence instead of a confident pick. A softmax over the candidates gives calibrated probabilities; all
the weights are fitted together on many-agent episodes drawn from training agents only
(train_semantic.py) and live in orchestrator/data/routing_semantic.json.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from orchestrator.agent_spec import AgentSpec
from orchestrator.routing.adapter import ADAPTER_FILE, TaskAdapter
from orchestrator.routing.body import BodyIndex, CorpusFrequencies, agent_text
from orchestrator.routing.data import BODY_DF_FILE, CORPUS_TASKS_FILE, data_file, load_labelled
from orchestrator.routing.describe import TermIndex, Vector, agent_document, cosine
from orchestrator.routing.encoder import DIMENSION, Encoder, Matrix
from orchestrator.routing.profiles import AgentProfile, ProfileCache, build_profiles
from orchestrator.routing.score import ROUTED_CHARS, Scorer, Scores
from orchestrator.routing.weights import Weights

__all__ = [
    "FEATURES",
    "HUB_NEIGHBOURS",
    "NONE",
    "PAIR_LABEL",
    "SEMANTIC_FORMAT",
    "AgentMatch",
    "Candidates",
    "Reference",
    "SemanticScorer",
    "SemanticWeights",
    "candidates",
    "match_agents",
    "shipped_adapter",
]

FEATURES = ("description", "passages", "words", "body", "ml")
NONE = "none"
PAIR_LABEL = "ml pair"
"""The bundled pair as one candidate, and the label of its reference tasks."""
SEMANTIC_FORMAT = 3
"""3: the profile features compare the adapted task vector (adapter.py)."""
_EXAMPLES = 3
HUB_NEIGHBOURS = 10
_HUB_SHARE = 0.5


@dataclass(frozen=True)
class SemanticWeights:
    """The fitted numbers (see the module docstring)."""

    feature: tuple[float, ...]
    """Weights of `FEATURES`, in that order."""
    pair_bias: float
    none: float
    """The "no loaded agent fits" candidate's score."""
    trained_on: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.feature) != len(FEATURES):
            raise ValueError(f"{len(self.feature)} semantic feature weights, expected {len(FEATURES)}")

    def to_json(self) -> str:
        body = {"format": SEMANTIC_FORMAT, **asdict(self)}
        body["feature"] = dict(zip(FEATURES, (round(x, 6) for x in self.feature), strict=True))
        body["pair_bias"], body["none"] = round(self.pair_bias, 6), round(self.none, 6)
        return json.dumps(body, sort_keys=True, indent=0) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SemanticWeights:
        raw: dict[str, Any] = json.loads(text)
        if raw.get("format") != SEMANTIC_FORMAT:
            raise ValueError(f"semantic routing weights format {raw.get('format')!r}, expected {SEMANTIC_FORMAT}")
        feature = raw["feature"]
        if sorted(feature) != sorted(FEATURES):
            raise ValueError(f"semantic routing weights for {sorted(feature)}, expected {sorted(FEATURES)}")
        return cls(tuple(float(feature[f]) for f in FEATURES), raw["pair_bias"], raw["none"], raw["trained_on"])


@dataclass(frozen=True)
class Reference:
    """Labelled tasks, encoded: our ML tasks (label `PAIR_LABEL`) and the corpus agents' tasks."""

    vectors: Matrix
    labels: tuple[str, ...]

    def without(self, keep: np.ndarray) -> Reference:
        return Reference(self.vectors[keep], tuple(label for label, k in zip(self.labels, keep, strict=True) if k))

    @cached_property
    def _is_pair(self) -> np.ndarray:
        return np.array([label == PAIR_LABEL for label in self.labels], bool)

    def ml_contrast(self, vec: Matrix) -> float:
        """How much closer a task is to its nearest pair examples than to its nearest other agents' tasks."""
        sims = self.vectors @ vec
        return _top_mean(sims[self._is_pair], _EXAMPLES) - _top_mean(sims[~self._is_pair], _EXAMPLES)


@dataclass(frozen=True)
class AgentMatch:
    """What a task is compared with for one agent: its profile, each profile vector's hubness, and its
    description's TF-IDF vector."""

    profile: AgentProfile
    hubness: np.ndarray
    document: Vector


def hubness(vectors: Matrix, reference: Reference, own: str) -> np.ndarray:
    """Per agent vector, the mean cosine with its nearest reference tasks that are not the agent's own."""
    others = reference.vectors[np.array([label != own for label in reference.labels], bool)]
    if not len(others):
        return np.zeros(len(vectors), np.float32)
    sims = vectors @ others.T
    k = min(HUB_NEIGHBOURS, sims.shape[1])
    return np.asarray(-np.sort(-sims, axis=1)[:, :k].mean(1), np.float32)


def match_agents(profiles: Mapping[str, AgentProfile], index: TermIndex, agents: Mapping[str, AgentSpec],
                 pair: Sequence[str], reference: Reference) -> dict[str, AgentMatch]:  # fmt: skip
    out = {}
    for name, profile in profiles.items():
        own = PAIR_LABEL if name in pair else name
        document = index.vector(agent_document(name, agents[name].description))
        out[name] = AgentMatch(profile, hubness(profile.vectors, reference, own), document)
    return out


@dataclass(frozen=True)
class Candidates:
    """The similarities of one task to each candidate: `names[i]` has `features[i]`; the pair, when
    loaded, is `PAIR_LABEL`. `best_passage[i]` is the passage that matched best (for the reason)."""

    names: tuple[str, ...]
    features: Matrix
    best_passage: tuple[str, ...]
    is_pair: tuple[bool, ...]


def _top_mean(sims: np.ndarray, k: int) -> float:
    return float(np.sort(sims)[-k:].mean()) if len(sims) else 0.0


def candidates(
    vec: Matrix, mapped: Matrix, words: Vector, body: Mapping[str, float], agents: Mapping[str, AgentMatch],
    pair: tuple[str, ...], reference: Reference,
) -> Candidates:  # fmt: skip
    """The features of every candidate for one task: its unit sentence vector `vec` and that vector through
    the task adapter `mapped`, its TF-IDF vector `words` and BM25 scores `body` (by agent name)."""
    rows: dict[str, tuple[np.ndarray, str]] = {}
    for name, agent in agents.items():
        sims = agent.profile.vectors @ mapped - _HUB_SHARE * agent.hubness
        passages = np.sort(sims[1:])[::-1][:2] if len(sims) > 1 else sims[:1]
        best = int(np.argmax(sims))
        feats = np.array([sims[0], passages.mean(), cosine(words, agent.document), body[name], 0.0], np.float32)
        rows[name] = (feats, agent.profile.passages[best])
    names, feats_out, passages_out, is_pair = [], [], [], []
    for name, (feats, passage) in rows.items():
        if name not in pair:
            names.append(name)
            feats_out.append(feats)
            passages_out.append(passage)
            is_pair.append(False)
    if pair:
        best_member = max(pair, key=lambda n: float(rows[n][0][:2].max()))
        merged = np.max([rows[n][0] for n in pair], axis=0)
        merged[-1] = reference.ml_contrast(vec)
        names.append(PAIR_LABEL)
        feats_out.append(merged)
        passages_out.append(rows[best_member][1])
        is_pair.append(True)
    features = np.array(feats_out, np.float32).reshape(len(names), len(FEATURES))
    return Candidates(tuple(names), features, tuple(passages_out), tuple(is_pair))


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


def corpus_tasks() -> list[tuple[str, str]]:
    """(task, agent) for the corpus agents' training tasks (routing_corpus_tasks.jsonl)."""
    with data_file(CORPUS_TASKS_FILE).open(encoding="utf-8") as handle:
        return [(r["task"], r["label"]) for r in map(json.loads, handle) if r]


def reference_texts() -> tuple[list[str], tuple[str, ...]]:
    examples, corpus = pair_examples(), corpus_tasks()
    return [*examples, *(t for t, _ in corpus)], (*(PAIR_LABEL for _ in examples), *(label for _, label in corpus))


@functools.cache
def shipped_adapter() -> TaskAdapter:
    return TaskAdapter.load(data_file(ADAPTER_FILE))


def corpus_frequencies() -> CorpusFrequencies:
    return CorpusFrequencies.from_json(data_file(BODY_DF_FILE).read_text(encoding="utf-8"))


class SemanticScorer:
    """Pure scoring for a fixed set of agents, built once (profiles are encoded, or read from the cache)."""

    by_meaning = True

    def __init__(
        self, weights: SemanticWeights, word_weights: Weights, agents: Mapping[str, AgentSpec], default_agent: str,
        encoder: Encoder, cache: ProfileCache | None = None, adapter: TaskAdapter | None = None,
    ) -> None:  # fmt: skip
        self._w = weights
        self._adapter = adapter or shipped_adapter()
        self._words = word_weights
        self._default = default_agent
        self._encoder = encoder
        self._index = TermIndex(word_weights.idf, word_weights.idf_unseen)
        self._pair = tuple(name for name in word_weights.labels if name in agents)
        texts, labels = reference_texts()
        vectors = cache.vectors(texts, encoder.encode) if cache else encoder.encode(texts)
        self._reference = Reference(vectors.reshape(len(texts), DIMENSION), labels)
        profiles = build_profiles(agents, encoder.encode, cache)
        self._agents = match_agents(profiles, self._index, agents, self._pair, self._reference)
        self._body = BodyIndex(corpus_frequencies(), {n: agent_text(n, s) for n, s in agents.items()})
        self._pair_scorer = (
            Scorer(word_weights, {n: agents[n] for n in self._pair}, default_agent) if self._pair else None
        )

    def score(self, task: str) -> Scores:
        task = task[:ROUTED_CHARS]
        vec = self._encoder.encode_one(task)
        c = candidates(vec, self._adapter(vec), self._index.vector(task), self._body.scores(task), self._agents,
                       self._pair, self._reference)  # fmt: skip
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
            return Scores(out, best, "classifier", split.cues, none=none, passages=matched)
        return Scores(out, best, "description", (), none=none, passages=matched)
