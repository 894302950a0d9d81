"""Fine-tune the router's encoder on the training agents: a low-rank delta of MiniLM's matrices (LoRA).

    .venv/bin/python -m orchestrator.routing.finetune   # the `finetune` extra (JAX, optax); ~25 min, 2 cores

MiniLM was trained to match sentences that say the same thing; a router matches a task ("Add an HPA to
the checkout deployment") with the agent that should take it ("Kubernetes specialist: …"), two different
kinds of text. The fine-tune teaches it that: in-batch contrastive learning (InfoNCE, temperature
`TEMPERATURE`) of each training task toward its agent's description and toward one of the agent's body
passages (profiles.py), against the other agents of the batch (`BATCH` tasks of distinct agents; our pair
counts as one agent there, since the router scores it as one candidate). One pass over the tasks
(`EPOCHS`): held-out training agents peak there and fall after it.

Only a delta is learnt: for Q, K, V, the attention output and the feed-forward up and down matrices of
the six layers, W + A @ B with A (in, `RANK`) and B (`RANK`, out), B starting at zero, so the model
starts as upstream's. It ships as float16 in orchestrator/data/routing_encoder_delta.npz (~0.7 MB), and
encoder_graph.py merges it into the weights before quantizing them: the graph, its speed and the 7-bit
weights stay as they were.

The forward pass is encoder_graph.py's (exact GELU, eps 1e-12, mean pooling) in float32, in JAX, whose
gradients this needs. It also writes `FOLDS` fold deltas to build/routing-folds/, each fitted without one
fold of the training agents (train_semantic.py's folds), so that train_semantic.py can see every training
task through an encoder that never saw its agent. Deterministic: a fixed seed and order.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from orchestrator.routing.data import data_file, load_labelled
from orchestrator.routing.encoder import MAX_TOKENS
from orchestrator.routing.encoder_graph import DELTA_FILE, DELTA_TARGETS, EPS, HEADS, LAYERS, layout, save_delta
from orchestrator.routing.profiles import agent_passages
from orchestrator.routing.semantic import corpus_tasks
from orchestrator.routing.sentence_model import model_files

__all__ = ["FOLD_DIR", "Example", "fit_delta", "main", "training_examples"]

RANK = 8
TEMPERATURE = 0.05
BATCH = 32
EPOCHS = 1
LEARNING_RATE = 5e-4
SEED = 19
FOLD_DIR = Path(__file__).resolve().parents[2] / "build" / "routing-folds"
_BUCKETS = (16, 32, 64, MAX_TOKENS)
"""Padded lengths: each is compiled once."""
_PAIR_GROUP = "ml pair"


@dataclass(frozen=True)
class Example:
    task: str
    agent: str
    group: str
    """Tasks of one group never share a batch (the pair's two agents are one group)."""


def training_examples(agents: Mapping[str, Any], held_out: frozenset[str] = frozenset()) -> list[Example]:
    """The corpus agents' tasks and our pair's classifier tasks ("train" split), their agents not held out."""
    rows = [Example(t, a, a) for t, a in corpus_tasks() if a in agents and a not in held_out]
    rows += [Example(t.task, t.label, _PAIR_GROUP) for t in load_labelled() if t.split == "train"]
    return rows


def encode(base: Mapping[str, Any], lora: Mapping[str, Any], ids: Any, mask: Any) -> Any:
    """Unit sentence vectors (batch, 384) of padded `ids` (batch, tokens) with `mask` 1.0 on real tokens;
    `base` is encoder_graph's `layout` of the weights, `lora` a delta's A and B by name."""
    import jax
    import jax.numpy as jnp

    def norm(x: Any, name: str) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + EPS) * base[name + ".weight"] + base[name + ".bias"]

    def dense(x: Any, name: str) -> Any:
        y = x @ base[name] + base[name + ".bias"]
        if name + ".a" in lora:
            y = y + (x @ lora[name + ".a"]) @ lora[name + ".b"]
        return y

    batch, length = ids.shape
    x = norm(base["word"][ids] + base["position"][:length] + base["type0"], "embeddings.norm")
    blocked = (1.0 - mask)[:, None, None, :] * -1e9
    width = x.shape[-1] // HEADS
    for i in range(LAYERS):
        q = f"layer{i}."

        def heads(y: Any) -> Any:
            return y.reshape(batch, length, HEADS, width).transpose(0, 2, 1, 3)

        qs, ks, vs = (heads(dense(x, q + n)) for n in ("query", "key", "value"))
        weights = jax.nn.softmax(qs @ ks.transpose(0, 1, 3, 2) / math.sqrt(width) + blocked, axis=-1)
        attended = (weights @ vs).transpose(0, 2, 1, 3).reshape(batch, length, -1)
        x = norm(dense(attended, q + "out") + x, q + "norm1")
        x = norm(dense(jax.nn.gelu(dense(x, q + "up"), approximate=False), q + "down") + x, q + "norm2")
    pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return pooled / jnp.linalg.norm(pooled, axis=-1, keepdims=True)


class _Tokens:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()

    def __call__(self, texts: Sequence[str]) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        encoded = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        length = next(b for b in _BUCKETS if b >= max(map(len, encoded)))
        ids = np.zeros((len(encoded), length), np.int32)
        mask = np.zeros((len(encoded), length), np.float32)
        for row, e in enumerate(encoded):
            ids[row, : len(e)], mask[row, : len(e)] = e, 1.0
        return ids, mask


def _batches(examples: Sequence[Example], rng: random.Random) -> list[list[Example]]:
    """One pass: shuffled, each batch `BATCH` examples of distinct groups (a clash waits for the next)."""
    waiting = list(examples)
    rng.shuffle(waiting)
    batches: list[list[Example]] = []
    while True:
        batch: list[Example] = []
        groups: set[str] = set()
        rest: list[Example] = []
        for example in waiting:
            if len(batch) < BATCH and example.group not in groups:
                batch.append(example)
                groups.add(example.group)
            else:
                rest.append(example)
        if len(batch) < BATCH // 2:  # a thin tail (a few big groups left) teaches little
            return batches
        batches.append(batch)
        waiting = rest


def fit_delta(examples: Sequence[Example], passages: Mapping[str, Sequence[str]], *, seed: int = SEED,
              epochs: int = EPOCHS, log: bool = True) -> dict[str, NDArray[np.float32]]:  # fmt: skip
    """The LoRA delta (name.a, name.b per `DELTA_TARGETS` matrix) fitted on `examples`; `passages[agent]`
    is the agent's description then its body passages."""
    import jax
    import jax.numpy as jnp
    import optax  # type: ignore[import-untyped]

    files = model_files()
    base = {k: jnp.asarray(v) for k, v in layout(load_file(str(files["model.safetensors"]))).items()}
    tokens = _Tokens(Tokenizer.from_file(str(files["tokenizer.json"])))
    key = jax.random.PRNGKey(seed)
    lora: dict[str, Any] = {}
    for i in range(LAYERS):
        for name in DELTA_TARGETS:
            key, sub = jax.random.split(key)
            rows, cols = base[f"layer{i}.{name}"].shape
            lora[f"layer{i}.{name}.a"] = jax.random.normal(sub, (rows, RANK)) / math.sqrt(rows)
            lora[f"layer{i}.{name}.b"] = jnp.zeros((RANK, cols))
    optimizer = optax.adamw(LEARNING_RATE)
    state = optimizer.init(lora)

    def loss_fn(params: Any, task: Any, target: Any) -> Any:
        queries = encode(base, params, *task)
        loss = 0.0
        for ids, mask in target:
            logits = queries @ encode(base, params, ids, mask).T / TEMPERATURE
            loss += optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(len(ids))).mean()
        return loss / len(target)

    @jax.jit
    def step(params: Any, opt_state: Any, task: Any, target: Any) -> tuple[Any, Any, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(params, task, target)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = random.Random(seed)
    started = time.monotonic()
    for epoch in range(epochs):
        for n, batch in enumerate(_batches(examples, rng)):
            body = [passages[e.agent][1:] or passages[e.agent][:1] for e in batch]
            task = tokens([e.task for e in batch])
            target = (tokens([passages[e.agent][0] for e in batch]), tokens([rng.choice(b) for b in body]))
            lora, state, loss = step(lora, state, task, target)
            if log:
                print(f"  epoch {epoch + 1} step {n + 1}: loss {float(loss):.3f} ({time.monotonic() - started:.0f} s)")
    return {k: np.asarray(v, np.float32) for k, v in lora.items()}


def main(argv: Sequence[str] | None = None) -> int:
    from orchestrator.routing.train_semantic import FOLDS, agent_folds, bundled_pair, corpus_agents

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-folds", action="store_true", help="only the shipped delta")
    args = parser.parse_args(argv)
    agents = {**corpus_agents("train"), **bundled_pair()}
    passages = {name: agent_passages(name, spec) for name, spec in agents.items()}
    folds = agent_folds(sorted(corpus_agents("train")))
    runs: list[tuple[Path, frozenset[str]]] = [(data_file(DELTA_FILE), frozenset())]
    if not args.no_folds:
        FOLD_DIR.mkdir(parents=True, exist_ok=True)
        runs += [(FOLD_DIR / f"fold{k}.npz", frozenset(a for a, f in folds.items() if f == k)) for k in range(FOLDS)]
    for path, held_out in runs:
        examples = training_examples(agents, held_out)
        print(f"{path.name}: {len(examples)} tasks, {len(held_out)} agents held out")
        save_delta(path, fit_delta(examples, passages))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
