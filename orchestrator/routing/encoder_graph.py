"""all-MiniLM-L6-v2 as an ONNX graph: the shipped orchestrator/data/minilm_graph.onnx, and its weights.

The graph file holds no weights (10 KB): each initializer is declared external, and `initializers` lays out
the verified safetensors arrays under the graph's names (Q, K and V fused, matrices transposed for
`x @ W`) for ONNX Runtime's `add_external_initializers`, which uses them without a copy. It uses ONNX
Runtime's fused BERT operators: `Attention` (one QKV product, the padding mask), `SkipLayerNormalization`
(residual, bias and norm in one pass) and `BiasGelu` (the exact, erf form).

The file is written by `python -m orchestrator.routing.encoder_graph` with the `onnx` package, a
development dependency (its import alone costs half a second, which routing does not pay); a unit test
checks that the shipped file is what this module writes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from orchestrator.routing.data import data_file

__all__ = ["GRAPH_FILE", "initializers", "write_graph"]

GRAPH_FILE = "minilm_graph.onnx"
DIMENSION = 384
HEADS = 12
LAYERS = 6
INTERMEDIATE = 1536
VOCABULARY = 30522
POSITIONS = 512
EPS = 1e-12
_QKV = ("query", "key", "value")


def initializers(w: dict[str, NDArray[np.float32]]) -> dict[str, NDArray[np.float32]]:
    """The graph's weights by name, from the model's safetensors arrays (contiguous, ready to hand over)."""
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
        out |= {
            q + "qkv": np.concatenate([w[f"{p}attention.self.{n}.weight"] for n in _QKV]).T,
            q + "qkv.bias": np.concatenate([w[f"{p}attention.self.{n}.bias"] for n in _QKV]),
            q + "out": w[p + "attention.output.dense.weight"].T,
            q + "out.bias": w[p + "attention.output.dense.bias"],
            q + "norm1.weight": w[p + "attention.output.LayerNorm.weight"],
            q + "norm1.bias": w[p + "attention.output.LayerNorm.bias"],
            q + "up": w[p + "intermediate.dense.weight"].T,
            q + "up.bias": w[p + "intermediate.dense.bias"],
            q + "down": w[p + "output.dense.weight"].T,
            q + "down.bias": w[p + "output.dense.bias"],
            q + "norm2.weight": w[p + "output.LayerNorm.weight"],
            q + "norm2.bias": w[p + "output.LayerNorm.bias"],
        }
    return {name: np.ascontiguousarray(array, np.float32) for name, array in out.items()}


def _shapes() -> dict[str, tuple[int, ...]]:
    d, ff = DIMENSION, INTERMEDIATE
    shapes: dict[str, tuple[int, ...]] = {"word": (VOCABULARY, d), "position": (POSITIONS, d), "type0": (d,)}
    shapes |= {"embeddings.norm.weight": (d,), "embeddings.norm.bias": (d,)}
    for i in range(LAYERS):
        q = f"layer{i}."
        shapes |= {q + "qkv": (d, 3 * d), q + "qkv.bias": (3 * d,), q + "out": (d, d), q + "out.bias": (d,)}
        shapes |= {q + "up": (d, ff), q + "up.bias": (ff,), q + "down": (ff, d), q + "down.bias": (d,)}
        shapes |= {q + f"norm{n}.{part}": (d,) for n in (1, 2) for part in ("weight", "bias")}
    return shapes


def write_graph() -> bytes:
    """The serialized graph: `ids` and `mask` (batch, tokens) in, the last layer's token `states` out."""
    from onnx import NodeProto, TensorProto, helper

    tensors: list[TensorProto] = []
    for name, shape in _shapes().items():
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape, data_location=TensorProto.EXTERNAL)
        tensor.external_data.add(key="location", value="supplied-by-the-encoder")
        tensors.append(tensor)
    tensors += [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("0", 0), ("1", 1), ("2", 2))]
    nodes: list[NodeProto] = []

    def op(kind: str, *inputs: str, ms: bool = False, **attributes: Any) -> str:
        out = f"{kind}_{len(nodes)}"
        nodes.append(helper.make_node(kind, list(inputs), [out], domain="com.microsoft" if ms else "", **attributes))
        return out

    length = op("Slice", op("Shape", "ids"), "1", "2")
    x = op("Add", op("Gather", "word", "ids"), op("Slice", "position", "0", length, "0"))
    x = op("LayerNormalization", op("Add", x, "type0"), "embeddings.norm.weight", "embeddings.norm.bias", epsilon=EPS)
    for i in range(LAYERS):
        q = f"layer{i}."
        attention = op("Attention", x, q + "qkv", q + "qkv.bias", "mask", ms=True, num_heads=HEADS)
        attention = op("MatMul", attention, q + "out")
        x = op("SkipLayerNormalization", attention, x, q + "norm1.weight", q + "norm1.bias", q + "out.bias",
               ms=True, epsilon=EPS)  # fmt: skip
        up = op("BiasGelu", op("MatMul", x, q + "up"), q + "up.bias", ms=True)
        x = op("SkipLayerNormalization", op("MatMul", up, q + "down"), x, q + "norm2.weight", q + "norm2.bias",
               q + "down.bias", ms=True, epsilon=EPS)  # fmt: skip
    nodes.append(helper.make_node("Identity", [x], ["states"]))
    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", "tokens"])],
        [helper.make_tensor_value_info("states", TensorProto.FLOAT, ["batch", "tokens", DIMENSION])],
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
