"""The shipped MiniLM graph (orchestrator/data/minilm_graph.onnx) is what encoder_graph.py writes, and the
weights laid out for it have the names and shapes it declares. The vectors themselves are checked against
sentence-transformers' in tests/integration/test_semantic_router.py."""

from __future__ import annotations

import numpy as np
import onnx

from orchestrator.routing.data import data_file
from orchestrator.routing.encoder_graph import GRAPH_FILE, initializers, write_graph


def test_the_shipped_graph_is_what_the_writer_writes() -> None:
    assert data_file(GRAPH_FILE).read_bytes() == write_graph(), "run python -m orchestrator.routing.encoder_graph"


def test_the_graph_holds_no_weights_and_declares_every_initializer_the_encoder_supplies() -> None:
    graph = onnx.load_from_string(data_file(GRAPH_FILE).read_bytes()).graph
    external = {t.name: tuple(t.dims) for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert all(not t.raw_data for t in graph.initializer)
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
    supplied = initializers({name: np.zeros(shape, np.float32) for name, shape in upstream.items()})
    assert {name: array.shape for name, array in supplied.items()} == external
    assert all(array.flags.c_contiguous and array.dtype == np.float32 for array in supplied.values())
