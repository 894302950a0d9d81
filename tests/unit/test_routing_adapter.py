"""The task adapter (orchestrator/routing/adapter.py): what it learns, on vectors made for the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator.routing.adapter import ADAPTER_FILE, TaskAdapter, fit_adapter
from orchestrator.routing.data import data_file
from orchestrator.routing.encoder import DIMENSION


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _world(rng: np.random.Generator, agents: int, per_agent: int, style: np.ndarray) -> tuple[np.ndarray, ...]:
    """Agents' description vectors, and tasks written in another "style": each task is its agent's vector
    turned by one rotation that every task shares (keeping a tenth of the original), plus noise."""
    descriptions = _unit(rng.normal(size=(agents, DIMENSION)))
    target = np.repeat(np.arange(agents), per_agent)
    own = descriptions[target]
    tasks = _unit(0.1 * own + own @ style.T + _unit(rng.normal(size=(len(target), DIMENSION))))
    return descriptions, tasks, target


def _top1(descriptions: np.ndarray, tasks: np.ndarray, target: np.ndarray) -> float:
    return float(((tasks @ descriptions.T).argmax(1) == target).mean())


def test_the_adapter_learns_the_task_style_and_carries_it_to_agents_it_never_saw() -> None:
    rng = np.random.default_rng(0)
    style = np.linalg.qr(rng.normal(size=(DIMENSION, DIMENSION)))[0]
    seen = _world(rng, agents=60, per_agent=6, style=style)
    adapter = fit_adapter(seen[1], seen[2], seen[0], steps=300)
    descriptions, tasks, target = _world(rng, agents=20, per_agent=5, style=style)
    mapped = np.array([adapter(t) for t in tasks])
    assert _top1(descriptions, tasks, target) < 0.35  # as encoded, a task hardly points at its agent
    assert _top1(descriptions, mapped, target) > _top1(descriptions, tasks, target) + 0.15
    assert np.allclose(np.linalg.norm(mapped, axis=1), 1, atol=1e-5)


def test_the_identity_adapter_leaves_a_vector_as_it_is() -> None:
    vec = _unit(np.random.default_rng(1).normal(size=DIMENSION)).astype(np.float32)
    assert np.allclose(TaskAdapter.identity()(vec), vec, atol=1e-6)


def test_the_adapter_round_trips_through_its_file_within_float16(tmp_path: Path) -> None:
    delta = (0.01 * np.random.default_rng(2).normal(size=(DIMENSION, DIMENSION))).astype(np.float32)
    path = tmp_path / ADAPTER_FILE
    TaskAdapter(delta).save(path)
    assert np.allclose(TaskAdapter.load(path).delta, delta, rtol=1e-3, atol=1e-6)


def test_the_shipped_adapter_has_the_encoder_s_shape_and_moves_vectors_a_little() -> None:
    adapter = TaskAdapter.load(data_file(ADAPTER_FILE))
    vec = _unit(np.random.default_rng(3).normal(size=DIMENSION)).astype(np.float32)
    assert 0.5 < float(adapter(vec) @ vec) < 0.9999


def test_an_adapter_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        TaskAdapter(np.zeros((3, 3), np.float32))
