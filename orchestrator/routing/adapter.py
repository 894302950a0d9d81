"""The task adapter: one linear map that turns a task's sentence vector toward its agent's description.

MiniLM was trained on symmetric similarity, two sentences that say the same thing. A user's task ("Add an
HPA to the checkout deployment") and the description of the agent that should take it ("Kubernetes
specialist: …") are different kinds of text. The map u = normalise(q + Δq) is fitted on the training tasks
(train_semantic.py): a softmax over every training agent's description vector, temperature `TEMPERATURE`,
with an L2 pull of Δ toward zero, since it is fitted on about a thousand tasks and must carry over to
agents it never saw. Cross-validated over held-out training agents, 20 loaded, it lifts the description
similarity's top-1 from 0.55 to 0.63 (README, routing).

Only the task side is mapped, and only to be compared with agents' profiles (semantic.py); a task is
compared with other tasks (the `ml` contrast) by its raw vector. Δ ships as float16 in
orchestrator/data/routing_task_adapter.npy (290 KB); applying it is one 384 x 384 product, ~16 µs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.routing.encoder import DIMENSION, Matrix

__all__ = ["ADAPTER_FILE", "TEMPERATURE", "TaskAdapter", "fit_adapter"]

ADAPTER_FILE = "routing_task_adapter.npy"
TEMPERATURE = 0.05
_L2 = 0.1
_STEPS = 1000
_LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class TaskAdapter:
    """u = normalise(q + delta @ q) for a unit task vector q."""

    delta: Matrix

    def __post_init__(self) -> None:
        if self.delta.shape != (DIMENSION, DIMENSION):
            raise ValueError(f"task adapter of shape {self.delta.shape}, expected {(DIMENSION, DIMENSION)}")

    def __call__(self, vec: Matrix) -> Matrix:
        mapped = vec + self.delta @ vec
        return np.asarray(mapped / np.linalg.norm(mapped), np.float32)

    @classmethod
    def identity(cls) -> TaskAdapter:
        """No adaptation (for ablations)."""
        return cls(np.zeros((DIMENSION, DIMENSION), np.float32))

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.save(handle, self.delta.astype(np.float16), allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> TaskAdapter:
        return cls(np.load(path, allow_pickle=False).astype(np.float32))


def fit_adapter(tasks: Matrix, targets: np.ndarray, agents: Matrix, *, steps: int = _STEPS) -> TaskAdapter:
    """Δ minimising the cross-entropy of softmax(cos(u_i, agents) / TEMPERATURE) at `targets[i]`, plus
    `_L2`/2 |Δ|²: unit task vectors (n, D), the index of each one's agent in `agents` (m, D, unit rows).
    Adam, full batch, from Δ = 0: deterministic."""
    q = np.asarray(tasks, np.float64)
    d = np.asarray(agents, np.float64)
    y = np.asarray(targets)
    rows = np.arange(len(y))
    delta = np.zeros((q.shape[1], q.shape[1]))
    m, v = np.zeros_like(delta), np.zeros_like(delta)
    for step in range(1, steps + 1):
        mapped = q + q @ delta.T
        norm = np.linalg.norm(mapped, axis=1, keepdims=True)
        unit = mapped / norm
        scores = unit @ d.T / TEMPERATURE
        p = np.exp(scores - scores.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[rows, y] -= 1.0
        grad_unit = p @ d / TEMPERATURE
        grad_mapped = (grad_unit - (grad_unit * unit).sum(1, keepdims=True) * unit) / norm
        grad = grad_mapped.T @ q / len(y) + _L2 * delta
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        delta -= _LEARNING_RATE * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return TaskAdapter(delta.astype(np.float32))
