"""Fit routing by meaning (the task adapter, then semantic.py's weights) and write them to orchestrator/data/.

    .venv/bin/python -m orchestrator.routing.train_semantic   # after finetune.py; ~3 min

Training data, none of it from the held-out agents (tests/data/routing/corpus_split.json):

- `routing_corpus_tasks.jsonl`: 959 tasks for 120 agents drawn from the agent corpus
  (tests/data/agent-corpus; 4 + 5 for each of the first 80, 6 for each of the 40 drawn later), labelled
  with that agent;
- `routing_labelled.jsonl`, split "calib": our ML tasks, labelled senior-ml-engineer or ml-engineer (both
  are "the pair" here; the classifier splits them). Not the "train" split: those are the examples the `ml`
  feature compares with, and a task written in the same batch as its neighbours finds them closer than a
  user's task would, so fitting on them overrates `ml`;
- `routing_off_topic.jsonl`: 106 greetings, chit-chat and non-engineering questions, labelled "none"
  (none within a cosine of 0.7 of the held-out off-topic inputs).

It writes the task adapter first (adapter.py: fitted on the agent and pair tasks through the shipped
encoder), then the weights, on features that see each task as a new agent's task will be seen: through
the encoder fine-tuned without its agent (finetune.py's fold deltas, build/routing-folds/) and an adapter
fitted without it (`FOLDS` folds over the training agents).

It also writes orchestrator/data/routing_corpus_df.json, the word document frequencies of the corpus
files on the training side (body.py).

Each task becomes several episodes: the agents "loaded" are its own plus a random draw of other training
agents (4, 19, 49 or 79 of them; with or without our pair), so the weights are fitted for any number of
agents. The task is compared as a new one would be: it and its own agent's tasks are left out of the
reference tasks (hubness and the `ml` contrast). Seven numbers (five feature weights, the pair's bias,
the "none" score) are fitted by maximum likelihood of a softmax over the episode's candidates and "none"
(a conditional logit, the softmax's temperature folded into the weights), which is what makes the
probabilities calibrated. The off-topic episodes weigh a third of the fit together, the pair's a sixth
and the corpus agents' the rest; within each group every episode weighs the same. Deterministic: a fixed
seed and order.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from orchestrator.agent_spec import AgentSpec
from orchestrator.loader import bundled_agents_dir, parse_agent_file
from orchestrator.routing.adapter import ADAPTER_FILE, TaskAdapter, fit_adapter
from orchestrator.routing.body import BodyIndex, CorpusFrequencies, agent_text
from orchestrator.routing.data import (
    BODY_DF_FILE,
    CORPUS_TASKS_FILE,
    JUNIOR,
    SEMANTIC_FILE,
    SENIOR,
    data_file,
    load_labelled,
)
from orchestrator.routing.describe import TermIndex
from orchestrator.routing.encoder import Encoder, Matrix, default_encoder
from orchestrator.routing.finetune import FOLD_DIR
from orchestrator.routing.profiles import build_profiles
from orchestrator.routing.semantic import (
    FEATURES,
    HUB_NEIGHBOURS,
    NONE,
    PAIR_LABEL,
    Candidates,
    Reference,
    SemanticWeights,
    candidates,
    corpus_frequencies,
    match_agents,
    reference_texts,
)
from orchestrator.routing.sentence_model import model_files
from orchestrator.routing.weights import Weights, load_weights

__all__ = ["Episode", "Task", "corpus_agents", "fit", "load_tasks", "main"]

ROOT = Path(__file__).resolve().parents[2]
CORPUS_SPLIT = ROOT / "tests" / "data" / "routing" / "corpus_split.json"
CORPUS_DIR = ROOT / "tests" / "data" / "agent-corpus"
OFF_TOPIC = "routing_off_topic.jsonl"
PAIR = (SENIOR, JUNIOR)
SEED = 19
OTHERS = (4, 19, 49, 79)
"""How many other training agents an episode loads beside the task's own."""
FOLDS = 5
"""Folds over the training agents, for everything fitted on their tasks that the weights' features use (the
encoder's fine-tune, the task adapter): each task is seen through parts fitted without its agent."""
_STEPS = 3000
_LEARNING_RATE = 0.05
_L2 = 1e-3
_NONE_SHARE = 1 / 3
"""The off-topic episodes' share of the fit: they are few, and "no agent fits" must be learnt."""
_PAIR_SHARE = 1 / 6
"""The pair's episodes' share: a quarter of the engineering work, near the issue's mix (20 of 100 tasks).
Weighed by count instead, the pair's 114 tasks beside 959 agent tasks would be a tenth, and the fit
would trade the pair's ML tasks (our main job) away to "none" and to the corpus agents."""


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
    for name in (CORPUS_TASKS_FILE, OFF_TOPIC):
        with data_file(name).open(encoding="utf-8") as handle:
            rows += [Task(r["task"], r.get("label", NONE)) for r in map(json.loads, handle) if r]
    rows += [Task(t.task, t.label) for t in load_labelled() if t.split == "calib"]
    return rows


class Featurizer:
    """Features of a task against any subset of a fixed pool of agents (profiles encoded once).

    The reference tasks hold the training tasks themselves: a task is compared as a user's new task would
    be, with itself and its own agent's tasks left out of every agent's hubness and of the `ml` contrast."""

    def __init__(self, agents: Mapping[str, AgentSpec], word_weights: Weights, encoder: Encoder,
                 reference: Reference) -> None:  # fmt: skip
        self.index = TermIndex(word_weights.idf, word_weights.idf_unseen)
        self.reference = reference
        profiles = build_profiles(agents, encoder.encode, None)
        self.agents = match_agents(profiles, self.index, agents, PAIR, reference)
        self.body = BodyIndex(corpus_frequencies(), {n: agent_text(n, s) for n, s in agents.items()})
        self._labels = np.array(reference.labels)
        self._nearest: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, agent in self.agents.items():  # each vector's nearest other-agent tasks, one spare
            own = PAIR_LABEL if name in PAIR else name
            sims = np.where(self._labels[None, :] == own, -np.inf, agent.profile.vectors @ reference.vectors.T)
            order = np.argsort(-sims, axis=1)[:, : HUB_NEIGHBOURS + 1]
            self._nearest[name] = (order, np.take_along_axis(sims, order, 1))

    def candidates(self, vec: Matrix, mapped: Matrix, text: str, label: str,
                   loads: Sequence[Sequence[str]]) -> list[Candidates]:  # fmt: skip
        """The task's candidates for each set of loaded agents (what depends on the task alone, once)."""
        itself = self.reference.vectors @ vec > 0.9999
        own = PAIR_LABEL if label in PAIR else label
        reference = self.reference.without(~itself & ((self._labels != own) | (own == PAIR_LABEL)))
        words, body = self.index.vector(text), self.body.scores(text)
        agents = {n: replace(a, hubness=self._hubness(n, itself)) for n, a in self.agents.items()}
        out = []
        for loaded in loads:
            pair = tuple(n for n in PAIR if n in loaded)
            out.append(candidates(vec, mapped, words, body, {n: agents[n] for n in loaded}, pair, reference))
        return out

    def _hubness(self, name: str, itself: np.ndarray) -> np.ndarray:
        order, sims = self._nearest[name]
        if not itself.any():
            return np.asarray(sims[:, :HUB_NEIGHBOURS].mean(1), np.float32)
        skip = np.isin(order, np.flatnonzero(itself))
        kept = np.where(skip, np.nan, sims)
        first = np.argsort(np.isnan(kept), axis=1, kind="stable")[:, :HUB_NEIGHBOURS]
        return np.asarray(np.take_along_axis(kept, first, 1).mean(1), np.float32)


def episodes(tasks: Sequence[Task], vectors: Matrix, mapped: Matrix, featurizer: Featurizer, pool: Sequence[str],
             rng: random.Random) -> list[Episode]:  # fmt: skip
    out = []
    for task, vec, toward in zip(tasks, vectors, mapped, strict=True):
        own = [] if task.label in (NONE, *PAIR) else [task.label]
        loads = []
        for others in OTHERS:
            drawn = rng.sample([n for n in pool if n not in own], others)
            with_pair = task.label in PAIR or rng.random() < 0.5
            loads.append(own + drawn + (list(PAIR) if with_pair else []))
        for c in featurizer.candidates(vec, toward, task.text, task.label, loads):
            target = len(c.names) if task.label == NONE else c.names.index(_candidate(task.label, c))
            out.append(Episode(c.features, np.array(c.is_pair), target))
    return out


def adapter_targets(tasks: Sequence[Task], featurizer: Featurizer, pool: Sequence[str]) -> tuple[Matrix, np.ndarray]:
    """What the task adapter maps toward: the pair's and every pool agent's description vector (the pair's
    two summed), and each task's index among them (-1 for the off-topic tasks, which it does not see)."""
    description = {n: a.profile.vectors[0] for n, a in featurizer.agents.items()}
    pair = description[PAIR[0]] + description[PAIR[1]]
    agents = np.array([pair / np.linalg.norm(pair), *(description[n] for n in pool)], np.float32)
    names = [PAIR_LABEL, *pool]
    target = np.array([names.index(PAIR_LABEL if t.label in PAIR else t.label) if t.label != NONE else -1
                       for t in tasks])  # fmt: skip
    return agents, target


def task_folds(tasks: Sequence[Task], pool: Sequence[str]) -> np.ndarray:
    """Each task's fold: its agent's (`agent_folds`); the pair's and the off-topic tasks, which no fold's
    fit sees, dealt round."""
    agent_fold = agent_folds(pool)
    return np.array([agent_fold.get(t.label, i % FOLDS) for i, t in enumerate(tasks)])


def held_out_adapter(vectors: Matrix, agents: Matrix, target: np.ndarray, seen: np.ndarray) -> TaskAdapter:
    """The adapter fitted on the `seen` tasks alone; agents none of them belongs to are not in its softmax."""
    present = np.unique(target[seen])
    return fit_adapter(vectors[seen], np.searchsorted(present, target[seen]), agents[present])


def agent_folds(pool: Sequence[str]) -> dict[str, int]:
    """Each training agent's fold: a seeded shuffle of `pool`, dealt round."""
    order = list(pool)
    random.Random(SEED).shuffle(order)
    return {n: i % FOLDS for i, n in enumerate(order)}


def _candidate(label: str, c: Candidates) -> str:
    if label in PAIR:
        return c.names[c.is_pair.index(True)]
    return label


_WIDTH = len(FEATURES) + 2


def design(train: Sequence[Episode]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, mask, target): every episode's candidates as rows of (features, is-pair, is-none), padded."""
    width = max(len(e.features) for e in train) + 1
    x = np.zeros((len(train), width, _WIDTH))
    mask = np.zeros((len(train), width), bool)
    for i, e in enumerate(train):
        n = len(e.features)
        x[i, :n, : len(FEATURES)] = e.features
        x[i, :n, -2] = e.is_pair
        x[i, n, -1] = 1.0
        mask[i, : n + 1] = True
    return x, mask, np.array([e.target if e.target < len(e.features) else len(e.features) for e in train])


def probabilities(theta: np.ndarray, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    scores = np.where(mask, x @ theta, -np.inf)
    p = np.exp(scores - scores.max(1, keepdims=True))
    return np.asarray(p / p.sum(1, keepdims=True))


def fit(train: Sequence[Episode], *, steps: int = _STEPS) -> np.ndarray:
    """θ = (feature weights, pair bias, none score) maximising the episodes' log-likelihood, each
    group of episodes weighted by its share (see the module docstring; Adam, full batch; L2 on all but the
    none score)."""
    x, mask, target = design(train)
    rows = np.arange(len(train))
    is_none, is_pair = x[rows, target, -1] == 1.0, x[rows, target, -2] == 1.0
    is_agent = ~is_none & ~is_pair
    weight = np.select([is_none, is_pair], [_NONE_SHARE / is_none.sum(), _PAIR_SHARE / is_pair.sum()],
                       (1 - _NONE_SHARE - _PAIR_SHARE) / is_agent.sum())  # fmt: skip
    theta = np.array([10.0, 10.0, 1.0, 1.0, 1.0, 0.0, 3.0])
    penalty = _L2 * np.append(np.ones(_WIDTH - 1), 0.0)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for step in range(1, steps + 1):
        p = probabilities(theta, x, mask)
        expected = np.einsum("ec,ecf->ef", p, x)
        grad = -(weight[:, None] * (x[rows, target] - expected)).sum(0) + penalty * theta
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta -= _LEARNING_RATE * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return theta


def weights_from(theta: np.ndarray, trained_on: Mapping[str, int]) -> SemanticWeights:
    n = len(FEATURES)
    return SemanticWeights(tuple(float(x) for x in theta[:n]), float(theta[n]), float(theta[n + 1]), dict(trained_on))


def count_corpus_words(split: Path = CORPUS_SPLIT) -> CorpusFrequencies:
    """Word document frequencies over the agent corpus's files, the held-out agents' left out."""
    heldout = {ROOT / p for p in json.loads(split.read_text(encoding="utf-8"))["heldout"].values()}
    texts = []
    for path in sorted(CORPUS_DIR.rglob("*.md")):
        if path in heldout or path.name == "README.md":
            continue
        spec = parse_agent_file(path)[0]
        texts.append(agent_text(spec.name, spec))
    return CorpusFrequencies.count(texts)


def fold_encoder(fold: int, directory: Path = FOLD_DIR) -> Encoder:
    """The encoder fine-tuned without `fold`'s agents (finetune.py wrote its delta)."""
    path = directory / f"fold{fold}.npz"
    if not path.is_file():
        raise SystemExit(f"{path}: no fold encoder; run `python -m orchestrator.routing.finetune` first")
    files = model_files()
    return Encoder(files["model.safetensors"], files["tokenizer.json"], path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    frequencies = count_corpus_words()
    data_file(BODY_DF_FILE).write_text(frequencies.to_json(), encoding="utf-8")
    print(f"wrote {data_file(BODY_DF_FILE)}: {frequencies.documents} files, {len(frequencies.df)} words")
    word_weights = load_weights(data_file("routing_weights.json"))
    pool_agents = corpus_agents("train")
    pool, agents = sorted(pool_agents), {**pool_agents, **bundled_pair()}
    texts, labels = reference_texts()
    tasks = load_tasks()
    task_texts = [t.text for t in tasks]

    def view(encoder: Encoder) -> tuple[Featurizer, Matrix]:
        reference = Reference(encoder.encode(texts), labels)
        return Featurizer(agents, word_weights, encoder, reference), encoder.encode(task_texts)

    featurizer, vectors = view(default_encoder())
    targets, target = adapter_targets(tasks, featurizer, pool)
    adapter = fit_adapter(vectors[target >= 0], target[target >= 0], targets)
    adapter.save(data_file(ADAPTER_FILE))
    print(f"wrote {data_file(ADAPTER_FILE)}: |delta| {np.linalg.norm(adapter.delta):.2f}")
    fold, rng, train = task_folds(tasks, pool), random.Random(SEED), []
    for k in range(FOLDS):  # each task through an encoder and an adapter that never saw its agent's tasks
        featurizer, vectors = view(fold_encoder(k))
        targets, target = adapter_targets(tasks, featurizer, pool)
        held = held_out_adapter(vectors, targets, target, (target >= 0) & (fold != k))
        mine = np.flatnonzero(fold == k)
        mapped = np.array([held(v) for v in vectors[mine]])
        train += episodes([tasks[i] for i in mine], vectors[mine], mapped, featurizer, pool, rng)
        print(f"fold {k}: {len(mine)} tasks")
    theta = fit(train)
    task_labels = [t.label for t in tasks]
    kinds = {"agent tasks": sum(label not in (NONE, *PAIR) for label in task_labels),
             "off-topic": task_labels.count(NONE), "pair tasks": sum(label in PAIR for label in task_labels),
             "agents": len(pool_agents), "episodes": len(train)}  # fmt: skip
    weights = weights_from(theta, kinds)
    data_file(SEMANTIC_FILE).write_text(weights.to_json(), encoding="utf-8")
    fitted = dict(zip((*FEATURES, "pair", "none"), theta.round(3), strict=True))
    print(f"wrote {data_file(SEMANTIC_FILE)}: {fitted}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
