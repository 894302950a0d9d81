"""The shipped MiniLM graph (orchestrator/data/minilm_graph.onnx) is what encoder_graph.py writes, and the
weights laid out for it have the names and shapes it declares. The vectors themselves are checked against
sentence-transformers' in tests/integration/test_semantic_router.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from orchestrator.routing.data import data_file
from orchestrator.routing.encoder_graph import (
    DELTA_TARGETS,
    GRAPH_FILE,
    QUANTIZED,
    WEIGHT_BITS,
    initializers,
    load_delta,
    quantize,
    save_delta,
    write_graph,
)


def test_the_shipped_graph_is_what_the_writer_writes() -> None:
    assert data_file(GRAPH_FILE).read_bytes() == write_graph(), "run python -m orchestrator.routing.encoder_graph"


def _upstream() -> dict[str, tuple[int, ...]]:
    """The safetensors arrays' names and shapes."""
    upstream = {
        "embeddings.word_embeddings.weight": (30522, 384),
        "embeddings.position_embeddings.weight": (512, 384),
        "embeddings.token_type_embeddings.weight": (2, 384),
        "embeddings.LayerNorm.weight": (384,),
        "embeddings.LayerNorm.bias": (384,),
    }
    for i in range(6):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            upstream |= {f"{p}attention.self.{n}.weight": (384, 384), f"{p}attention.self.{n}.bias": (384,)}
        upstream |= {p + "attention.output.dense.weight": (384, 384), p + "intermediate.dense.weight": (1536, 384),
                     p + "intermediate.dense.bias": (1536,), p + "output.dense.weight": (384, 1536)}  # fmt: skip
        for n in ("attention.output.dense.bias", "output.dense.bias", "attention.output.LayerNorm.weight",
                  "attention.output.LayerNorm.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"):  # fmt: skip
            upstream[p + n] = (384,)
    return upstream


def test_the_graph_holds_no_weights_and_declares_every_initializer_the_encoder_supplies() -> None:
    graph = onnx.load_from_string(data_file(GRAPH_FILE).read_bytes()).graph
    external = {t.name: tuple(t.dims) for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert all(not t.raw_data for t in graph.initializer)
    supplied = initializers({name: np.zeros(shape, np.float32) for name, shape in _upstream().items()})
    assert {name: array.shape for name, array in supplied.items()} == external
    declared = {t.name: t.data_type for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    int8 = {name for name in supplied if name.startswith("layer") and name.rpartition(".")[2] in QUANTIZED}
    assert len(int8) == 6 * 3
    assert all(supplied[n].dtype == np.int8 and declared[n] == onnx.TensorProto.INT8 for n in int8)
    assert all(supplied[n].dtype == np.float32 and declared[n] == onnx.TensorProto.FLOAT for n in set(supplied) - int8)
    assert all(array.flags.c_contiguous for array in supplied.values())


def test_weights_are_quantized_per_column_to_seven_bits_and_come_back_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    matrix = (rng.standard_normal((384, 8)) * np.array([0.01, 0.1, 1, 10, 0.5, 2, 3, 0.001])).astype(np.float32)
    values, scales = quantize(matrix)
    assert values.dtype == np.int8 and scales.shape == (8,)
    assert np.all(np.abs(values).max(0) == 2 ** (WEIGHT_BITS - 1) - 1)  # each column's largest weight: full range
    assert np.all(np.abs(values.astype(np.float32) * scales - matrix) <= scales / 2 + 1e-7)
    zero_values, zero_scales = quantize(np.zeros((4, 2), np.float32))
    assert not zero_values.any() and np.all(zero_scales > 0)


def _delta(rng: np.random.Generator) -> dict[str, np.ndarray]:
    shapes = {"query": (384, 384), "key": (384, 384), "value": (384, 384), "out": (384, 384), "up": (384, 1536),
              "down": (1536, 384)}  # fmt: skip
    delta = {}
    for i in range(6):
        for target in DELTA_TARGETS:
            rows, cols = shapes[target]
            delta[f"layer{i}.{target}.a"] = (rng.standard_normal((rows, 8)) * 0.1).astype(np.float32)
            delta[f"layer{i}.{target}.b"] = (rng.standard_normal((8, cols)) * 0.1).astype(np.float32)
    return delta


def test_a_fine_tune_is_merged_into_each_matrix_before_the_matrix_is_quantized(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    weights = {name: (rng.standard_normal(shape) * 0.05).astype(np.float32) for name, shape in _upstream().items()}
    save_delta(tmp_path / "delta.npz", _delta(rng))
    delta = load_delta(tmp_path / "delta.npz")  # float16 on disk
    base, merged = initializers(weights), initializers(weights, delta)

    def added(layer: int, target: str) -> np.ndarray:
        return delta[f"layer{layer}.{target}.a"] @ delta[f"layer{layer}.{target}.b"]

    for i in range(6):
        qkv = np.concatenate([added(i, t) for t in ("query", "key", "value")], 1)
        assert np.allclose(merged[f"layer{i}.qkv"], base[f"layer{i}.qkv"] + qkv, atol=1e-5)
        for target, path in (("out", "attention.output.dense"), ("up", "intermediate.dense"), ("down", "output.dense")):
            name = f"layer{i}.{target}"
            want = weights[f"encoder.layer.{i}.{path}.weight"].T + added(i, target)
            got = merged[name].astype(np.float32) * merged[name + ".scale"]
            assert np.all(np.abs(got - want) <= merged[name + ".scale"] / 2 + 1e-6)
    assert np.array_equal(merged["word"], base["word"])


def test_a_delta_without_every_matrix_is_refused_naming_the_file(tmp_path: Path) -> None:
    delta = _delta(np.random.default_rng(2))
    del delta["layer3.up.b"]
    save_delta(tmp_path / "short.npz", delta)
    with pytest.raises(ValueError, match=r"short\.npz"):
        load_delta(tmp_path / "short.npz")
