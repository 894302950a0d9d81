"""Fit the scoring-by-meaning weights (semantic.py) and write orchestrator/data/routing_semantic.json.

    .venv/bin/python -m orchestrator.routing.train_semantic   # needs `orchestrate models pull router`

Training data, none of it from the held-out agents (tests/data/routing/corpus_split.json):

- `routing_corpus_tasks.jsonl`: 4 tasks for each of 80 agents drawn from the agent corpus
  (tests/data/agent-corpus), labelled with that agent;
- `routing_labelled.jsonl`, split "calib": our ML tasks, labelled senior-ml-engineer or ml-engineer (both
  are "the pair" here; the classifier splits them). Not the "train" split: those are the examples the `ml`
  feature compares with, and a task written in the same batch as its neighbours finds them closer than a
  user's task would, so fitting on them overrates `ml`;
- `routing_off_topic.jsonl`: greetings, chit-chat and non-engineering questions, labelled "none".

Each task becomes several episodes: the agents "loaded" are its own plus a random draw of other training
agents (4, 19, 49 or 79 of them; with or without our pair), so the weights are fitted for any number of
agents. Six numbers are fitted by maximum likelihood of a softmax over the episode's candidates and
"none" (a conditional logit, the softmax's temperature folded into the weights), which is what makes the
probabilities calibrated. Deterministic: a fixed seed and order.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.agent_spec import AgentSpec
from orchestrator.loader import bundled_agents_dir, parse_agent_file
from orchestrator.routing.data import JUNIOR, SEMANTIC_FILE, SENIOR, data_file, load_labelled
from orchestrator.routing.describe import TermIndex, agent_document
from orchestrator.routing.encoder import Encoder, Matrix, default_encoder
from orchestrator.routing.profiles import AgentProfile, build_profiles
from orchestrator.routing.semantic import NONE, Candidates, SemanticWeights, candidates, pair_examples
from orchestrator.routing.weights import Weights, load_weights

__all__ = ["Episode", "Task", "corpus_agents", "fit", "load_tasks", "main"]

ROOT = Path(__file__).resolve().parents[2]
CORPUS_SPLIT = ROOT / "tests" / "data" / "routing" / "corpus_split.json"
CORPUS_TASKS = "routing_corpus_tasks.jsonl"
OFF_TOPIC = "routing_off_topic.jsonl"
PAIR = (SENIOR, JUNIOR)
SEED = 19
OTHERS = (4, 19, 49, 79)
"""How many other training agents an episode loads beside the task's own."""
_STEPS = 3000
_LEARNING_RATE = 0.05
_L2 = 1e-3


@dataclass(frozen=True)
class Task:
    text: str
    label: str
    """An agent's name, SENIOR / JUNIOR (the pair), or NONE."""


@dataclass(frozen=True)
class Episode:
    features: Matrix
    is_pair: np.ndarray
    target: int
    """Index of the right candidate; len(features) for "none"."""


def corpus_agents(side: str, split: Path = CORPUS_SPLIT) -> dict[str, AgentSpec]:
    """The corpus agents of one side of the split ("train" or "heldout"), parsed from their files."""
    files: Mapping[str, str] = json.loads(split.read_text(encoding="utf-8"))[side]
    return {name: parse_agent_file(ROOT / path)[0] for name, path in files.items()}


def bundled_pair() -> dict[str, AgentSpec]:
    specs = [parse_agent_file(bundled_agents_dir() / f"{name}.md")[0] for name in PAIR]
    return {s.name: s for s in specs}


def load_tasks() -> list[Task]:
    """Every training task, in file order."""
    rows: list[Task] = []
    for name in (CORPUS_TASKS, OFF_TOPIC):
        with data_file(name).open(encoding="utf-8") as handle:
            rows += [Task(r["task"], r.get("label", NONE)) for r in map(json.loads, handle) if r]
    rows += [Task(t.task, t.label) for t in load_labelled() if t.split == "calib"]
    return rows


class Featurizer:
    """Features of a task against any subset of a fixed pool of agents (profiles encoded once)."""

    def __init__(self, agents: Mapping[str, AgentSpec], word_weights: Weights, encoder: Encoder) -> None:
        self.index = TermIndex(word_weights.idf, word_weights.idf_unseen)
        self.profiles: dict[str, AgentProfile] = build_profiles(agents, encoder.encode, None)
        self.documents = {n: self.index.vector(agent_document(n, s.description)) for n, s in agents.items()}

    def candidates(self, vec: Matrix, text: str, loaded: Sequence[str], examples: Matrix) -> Candidates:
        profiles = {n: self.profiles[n] for n in loaded}
        pair = tuple(n for n in PAIR if n in profiles)
        return candidates(vec, self.index.vector(text), profiles, self.documents, pair, examples)


def episodes(tasks: Sequence[Task], vectors: Matrix, featurizer: Featurizer, pool: Sequence[str],
             examples: Matrix, rng: random.Random) -> list[Episode]:  # fmt: skip
    out = []
    for task, vec in zip(tasks, vectors, strict=True):
        own = [] if task.label in (NONE, *PAIR) else [task.label]
        for others in OTHERS:
            drawn = rng.sample([n for n in pool if n not in own], others)
            with_pair = task.label in PAIR or rng.random() < 0.5
            loaded = own + drawn + (list(PAIR) if with_pair else [])
            c = featurizer.candidates(vec, task.text, loaded, _without(examples, vec))
            target = len(c.names) if task.label == NONE else c.names.index(_candidate(task.label, c))
            out.append(Episode(c.features, np.array(c.is_pair), target))
    return out


def _without(examples: Matrix, vec: Matrix) -> Matrix:
    """The examples less the task itself (a pair task is one of them: it must not find itself)."""
    return examples[examples @ vec < 0.9999]


def _candidate(label: str, c: Candidates) -> str:
    if label in PAIR:
        return c.names[c.is_pair.index(True)]
    return label


def design(train: Sequence[Episode]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, mask, target): every episode's candidates as rows of (4 features, is-pair, is-none), padded."""
    width = max(len(e.features) for e in train) + 1
    x = np.zeros((len(train), width, 6))
    mask = np.zeros((len(train), width), bool)
    for i, e in enumerate(train):
        n = len(e.features)
        x[i, :n, :4] = e.features
        x[i, :n, 4] = e.is_pair
        x[i, n, 5] = 1.0
        mask[i, : n + 1] = True
    return x, mask, np.array([e.target if e.target < len(e.features) else len(e.features) for e in train])


def probabilities(theta: np.ndarray, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    scores = np.where(mask, x @ theta, -np.inf)
    p = np.exp(scores - scores.max(1, keepdims=True))
    return np.asarray(p / p.sum(1, keepdims=True))


def fit(train: Sequence[Episode], *, steps: int = _STEPS) -> np.ndarray:
    """θ = (4 feature weights, pair bias, none score) maximising the episodes' log-likelihood, with every
    label kind ("an agent", "the pair", "none") weighted equally (Adam, full batch)."""
    x, mask, target = design(train)
    rows = np.arange(len(train))
    kinds = ["none" if x[i, t, 5] else "pair" if x[i, t, 4] else "agent" for i, t in enumerate(target)]
    share = {k: kinds.count(k) for k in set(kinds)}
    weight = np.array([1.0 / (len(share) * share[k]) for k in kinds])
    theta = np.array([10.0, 10.0, 1.0, 1.0, 0.0, 3.0])
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for step in range(1, steps + 1):
        p = probabilities(theta, x, mask)
        expected = np.einsum("ec,ecf->ef", p, x)
        grad = -(weight[:, None] * (x[rows, target] - expected)).sum(0) + _L2 * theta * np.array([1, 1, 1, 1, 1, 0])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta -= _LEARNING_RATE * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return theta


def weights_from(theta: np.ndarray, trained_on: Mapping[str, int]) -> SemanticWeights:
    f = [float(x) for x in theta[:4]]
    return SemanticWeights((f[0], f[1], f[2], f[3]), float(theta[4]), float(theta[5]), dict(trained_on))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    encoder = default_encoder()
    word_weights = load_weights(data_file("routing_weights.json"))
    pool_agents = corpus_agents("train")
    featurizer = Featurizer({**pool_agents, **bundled_pair()}, word_weights, encoder)
    tasks = load_tasks()
    vectors = encoder.encode([t.text for t in tasks])
    examples = encoder.encode(pair_examples())
    train = episodes(tasks, vectors, featurizer, sorted(pool_agents), examples, random.Random(SEED))
    theta = fit(train)
    labels = [t.label for t in tasks]
    kinds = {"agent tasks": sum(label not in (NONE, *PAIR) for label in labels), "off-topic": labels.count(NONE),
             "pair tasks": sum(label in PAIR for label in labels), "agents": len(pool_agents),
             "episodes": len(train)}  # fmt: skip
    weights = weights_from(theta, kinds)
    data_file(SEMANTIC_FILE).write_text(weights.to_json(), encoding="utf-8")
    fitted = dict(zip(("description", "passages", "words", "ml", "pair", "none"), theta.round(3), strict=True))
    print(f"wrote {data_file(SEMANTIC_FILE)}: {fitted}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
