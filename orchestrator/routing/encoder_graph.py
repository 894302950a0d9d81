"""all-MiniLM-L6-v2 as an ONNX graph: the shipped orchestrator/data/minilm_graph.onnx, and its weights.

The graph file holds no weights (12 KB): each initializer is declared external, and `initializers` lays out
the verified safetensors arrays under the graph's names (Q, K and V fused, matrices transposed for
`x @ W`) for ONNX Runtime's `add_external_initializers`, which uses them without a copy. It uses ONNX
Runtime's fused BERT operators: `Attention` (one QKV product), `SkipLayerNormalization`
(residual, bias and norm in one pass) and `BiasGelu` (the exact, erf form).

Three of each layer's four matrices (attention output, feed-forward up and down: three quarters of the
multiply-adds) are int8, multiplied by `DynamicQuantizeMatMul`, which quantizes its input on the fly with
one scale for the whole input (so the encoder runs one text at a time: a text's vector must not depend on
what it is batched with). That halves a task's encoding time (2.6 vs 5.4 ms for a 30-token task on one
core). `quantize` makes them, symmetric per output column, with 7 bits: ONNX Runtime's advice for CPUs
without VNNI, whose AVX2 kernel sums pairs of products in 16 bits, which 8-bit weights can saturate. The
query, key and value matrices stay float32 inside `Attention`. The vectors are within a cosine of 0.985
of upstream's (tests/integration/test_semantic_router.py); the routing weights are fitted on these.

The file is written by `python -m orchestrator.routing.encoder_graph` with the `onnx` package, a
development dependency (its import alone costs half a second, which routing does not pay); a unit test
checks that the shipped file is what this module writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from orchestrator.routing.data import data_file

__all__ = [
    "DELTA_FILE",
    "DELTA_TARGETS",
    "GRAPH_FILE",
    "initializers",
    "layout",
    "load_delta",
    "save_delta",
    "write_graph",
]

GRAPH_FILE = "minilm_graph.onnx"
DELTA_FILE = "routing_encoder_delta.npz"
_MATRICES = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "out": "attention.output.dense",
    "up": "intermediate.dense",
    "down": "output.dense",
}
"""Each layer's matrices: the graph's name, upstream's (`encoder.layer.{i}.` + it + `.weight` / `.bias`)."""
_NORMS = {"norm1": "attention.output.LayerNorm", "norm2": "output.LayerNorm"}
DELTA_TARGETS = tuple(_MATRICES)
"""The per-layer matrices the fine-tune (finetune.py) adds a low-rank delta A @ B to: all of them."""
DIMENSION = 384
HEADS = 12
LAYERS = 6
INTERMEDIATE = 1536
VOCABULARY = 30522
POSITIONS = 512
EPS = 1e-12
_QKV = ("query", "key", "value")
QUANTIZED = ("out", "up", "down")
"""The per-layer matrices stored as int8 (`layer{i}.{name}`), each with its column scales (`.scale`)."""
WEIGHT_BITS = 7
Delta = Mapping[str, NDArray[np.float32]]
"""A fine-tune: `layer{i}.{target}.a` (in, rank) and `.b` (rank, out) for each of `DELTA_TARGETS`."""


def quantize(matrix: NDArray[np.float32]) -> tuple[NDArray[np.int8], NDArray[np.float32]]:
    """Symmetric per-column quantization of an `x @ W` matrix to `WEIGHT_BITS`: (int8 values, scales)."""
    top = 2 ** (WEIGHT_BITS - 1) - 1
    scale = np.maximum(np.abs(matrix).max(0), 1e-30) / top
    return np.clip(np.rint(matrix / scale), -top, top).astype(np.int8), scale.astype(np.float32)


def save_delta(path: Path, delta: Delta) -> None:
    """Write a fine-tune's delta (`layer{i}.{target}.a` and `.b`) as float16."""
    with path.open("wb") as handle:
        arrays: dict[str, Any] = {k: v.astype(np.float16) for k, v in sorted(delta.items())}
        np.savez(handle, **arrays)


def load_delta(path: Path) -> dict[str, NDArray[np.float32]]:
    """A delta that `save_delta` wrote, checked for the names and shapes the merge needs."""
    with np.load(path, allow_pickle=False) as stored:
        delta = {k: stored[k].astype(np.float32) for k in stored.files}
    wanted = {f"layer{i}.{t}.{part}" for i in range(LAYERS) for t in DELTA_TARGETS for part in "ab"}
    if set(delta) != wanted:
        raise ValueError(f"{path}: an encoder delta holds {sorted(wanted)[:2]}…, not {sorted(delta)[:2]}…")
    return delta


def _merged(x_w: NDArray[np.float32], delta: Delta | None, name: str) -> NDArray[np.float32]:
    """An `x @ W` matrix with the fine-tune's A @ B added."""
    if delta is None:
        return x_w
    return x_w + delta[name + ".a"] @ delta[name + ".b"]


def layout(w: Mapping[str, NDArray[np.float32]], delta: Delta | None = None) -> dict[str, NDArray[np.float32]]:
    """The model's safetensors arrays under the graph's names, float32, each matrix in `x @ W` layout with
    a fine-tune's `delta` (`load_delta`) added; Q, K and V apart (`initializers` fuses them). The
    fine-tune's JAX forward pass (finetune.py) runs on these too."""
    e = "embeddings."
    out = {
        "word": w[e + "word_embeddings.weight"],
        "position": w[e + "position_embeddings.weight"],
        "type0": w[e + "token_type_embeddings.weight"][0],
        "embeddings.norm.weight": w[e + "LayerNorm.weight"],
        "embeddings.norm.bias": w[e + "LayerNorm.bias"],
    }
    for i in range(LAYERS):
        p, q = f"encoder.layer.{i}.", f"layer{i}."
        for name, path in _MATRICES.items():
            out[q + name] = _merged(w[p + path + ".weight"].T, delta, q + name)
            out[q + name + ".bias"] = w[p + path + ".bias"]
        for name, path in _NORMS.items():
            out[q + name + ".weight"], out[q + name + ".bias"] = w[p + path + ".weight"], w[p + path + ".bias"]
    return out


def initializers(w: Mapping[str, NDArray[np.float32]], delta: Delta | None = None) -> dict[str, NDArray[Any]]:
    """The graph's weights by name, from the model's safetensors arrays (contiguous, ready to hand over),
    with a fine-tune's `delta` (`load_delta`) merged in before quantizing."""
    out = layout(w, delta)
    for i in range(LAYERS):
        q = f"layer{i}."
        out[q + "qkv"] = np.concatenate([out.pop(q + n) for n in _QKV], 1)
        out[q + "qkv.bias"] = np.concatenate([out.pop(q + n + ".bias") for n in _QKV])
    arrays: dict[str, NDArray[Any]] = {}
    for name, array in out.items():
        if _is_int8(name):
            arrays[name], arrays[name + ".scale"] = map(np.ascontiguousarray, quantize(array))
        else:
            arrays[name] = np.ascontiguousarray(array, np.float32)
    return arrays


def _shapes() -> dict[str, tuple[int, ...]]:
    d, ff = DIMENSION, INTERMEDIATE
    shapes: dict[str, tuple[int, ...]] = {"word": (VOCABULARY, d), "position": (POSITIONS, d), "type0": (d,)}
    shapes |= {"embeddings.norm.weight": (d,), "embeddings.norm.bias": (d,)}
    for i in range(LAYERS):
        q = f"layer{i}."
        shapes |= {q + "qkv": (d, 3 * d), q + "qkv.bias": (3 * d,), q + "out": (d, d), q + "out.bias": (d,)}
        shapes |= {q + "up": (d, ff), q + "up.bias": (ff,), q + "down": (ff, d), q + "down.bias": (d,)}
        shapes |= {q + f"norm{n}.{part}": (d,) for n in (1, 2) for part in ("weight", "bias")}
        shapes |= {q + f"{name}.scale": (shapes[q + name][1],) for name in QUANTIZED}
    return shapes


def _is_int8(name: str) -> bool:
    return name.startswith("layer") and name.rpartition(".")[2] in QUANTIZED


def write_graph() -> bytes:
    """The serialized graph: one text's `ids` (1, tokens) in, the last layer's token `states` out."""
    from onnx import NodeProto, TensorProto, helper

    tensors: list[TensorProto] = []
    for name, shape in _shapes().items():
        kind = TensorProto.INT8 if _is_int8(name) else TensorProto.FLOAT
        tensor = TensorProto(name=name, data_type=kind, dims=shape, data_location=TensorProto.EXTERNAL)
        tensor.external_data.add(key="location", value="supplied-by-the-encoder")
        tensors.append(tensor)
    tensors += [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("0", 0), ("1", 1), ("2", 2))]
    nodes: list[NodeProto] = []

    def op(kind: str, *inputs: str, ms: bool = False, **attributes: Any) -> str:
        out = f"{kind}_{len(nodes)}"
        nodes.append(helper.make_node(kind, list(inputs), [out], domain="com.microsoft" if ms else "", **attributes))
        return out

    def matmul(x: str, weights: str) -> str:
        return op("DynamicQuantizeMatMul", x, weights, weights + ".scale", ms=True)

    length = op("Slice", op("Shape", "ids"), "1", "2")
    x = op("Add", op("Gather", "word", "ids"), op("Slice", "position", "0", length, "0"))
    x = op("LayerNormalization", op("Add", x, "type0"), "embeddings.norm.weight", "embeddings.norm.bias", epsilon=EPS)
    for i in range(LAYERS):
        q = f"layer{i}."
        attention = op("Attention", x, q + "qkv", q + "qkv.bias", ms=True, num_heads=HEADS)
        attention = matmul(attention, q + "out")
        x = op("SkipLayerNormalization", attention, x, q + "norm1.weight", q + "norm1.bias", q + "out.bias",
               ms=True, epsilon=EPS)  # fmt: skip
        up = op("BiasGelu", matmul(x, q + "up"), q + "up.bias", ms=True)
        x = op("SkipLayerNormalization", matmul(up, q + "down"), x, q + "norm2.weight", q + "norm2.bias",
               q + "down.bias", ms=True, epsilon=EPS)  # fmt: skip
    nodes.append(helper.make_node("Identity", [x], ["states"]))
    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "tokens"])],
        [helper.make_tensor_value_info("states", TensorProto.FLOAT, [1, "tokens", DIMENSION])],
        tensors,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=9, producer_name="orchestrate")
    return bytes(model.SerializeToString())


def main() -> None:
    data_file(GRAPH_FILE).write_bytes(write_graph())
    print(f"wrote {data_file(GRAPH_FILE)}")


if __name__ == "__main__":
    main()
