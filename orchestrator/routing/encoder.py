"""Sentences to unit vectors with all-MiniLM-L6-v2 on ONNX Runtime: no PyTorch, no network, ~4 ms a task.

The model is a six-layer BERT (hidden 384, 12 heads); a sentence's vector is the mean of its last
layer's token states, L2-normalised, exactly as sentence-transformers computes it (the test compares
with vectors that sentence-transformers produced). Tokenisation is Hugging Face `tokenizers` on the
model's own tokenizer.json, so the ids are upstream's.

The graph is shipped without weights (encoder_graph.py) and ONNX Runtime runs it on the verified
safetensors arrays, uncopied. It beats the hand-written numpy pass it replaced: its kernels pick the
CPU's instructions when the process starts, not when the wheel was built, and its fused BERT operators
take half numpy's time on a 31-token task. The weights stay float32, so the vectors are upstream's on
every CPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from orchestrator.routing.data import data_file
from orchestrator.routing.encoder_graph import DIMENSION, GRAPH_FILE, initializers
from orchestrator.routing.sentence_model import model_files

__all__ = ["DIMENSION", "MAX_TOKENS", "Encoder", "default_encoder"]

MAX_TOKENS = 128
"""Tokens kept per text (the model allows 256): a task's request and an agent's lines fit in far fewer,
and attention costs grow with the square of the length."""
_BATCH = 32
_THREADS = 2
"""At most: ONNX Runtime's default is a thread per core, which on a many-core box shared with a model
server buys little for a 30-token task; two halve its time on a 2-core machine. Fewer when the process
may use fewer cores (taskset, a container's CPU set)."""

Matrix = NDArray[np.float32]


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Encoder:
    """all-MiniLM-L6-v2 sentence vectors. Load once (`default_encoder()`); `encode` is thread-safe."""

    def __init__(self, weights: Path, tokenizer: Path) -> None:
        import onnxruntime  # type: ignore[import-untyped]  # (no stubs; loaded only when routing by meaning)

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = min(_THREADS, _usable_cores()), 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep: no
        # core burnt beside the local model between tasks, for ~0.3 ms a task
        options.log_severity_level = 3  # warnings about the CPU's features are not the user's business
        self._weights = initializers(load_file(str(weights)))  # ONNX Runtime reads these arrays, uncopied
        names = list(self._weights)
        options.add_external_initializers(
            names, [onnxruntime.OrtValue.ortvalue_from_numpy(self._weights[n]) for n in names]
        )
        self._session = onnxruntime.InferenceSession(
            data_file(GRAPH_FILE).read_bytes(), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()

    @functools.lru_cache(maxsize=1024)  # noqa: B019  (one encoder per process: it lives as long as the cache)
    def encode_one(self, text: str) -> Matrix:
        """One text's vector, remembered: `route` and `scores` of the same task encode it once."""
        vector: Matrix = self.encode([text])[0]
        vector.flags.writeable = False
        return vector

    def encode(self, texts: Sequence[str]) -> Matrix:
        """One unit row per text, (len(texts), 384). Texts are batched by similar length."""
        if not texts:
            return np.zeros((0, DIMENSION), np.float32)
        ids = [enc.ids for enc in self._tokenizer.encode_batch(list(texts))]
        out = np.empty((len(texts), DIMENSION), np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            out[chunk] = self._forward([ids[i] for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> Matrix:
        n, length = len(batch), max(len(ids) for ids in batch)
        tokens = np.zeros((n, length), np.int64)
        mask = np.zeros((n, length), np.int32)
        for row, ids in enumerate(batch):
            tokens[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        states = self._session.run(None, {"ids": tokens, "mask": mask})[0]
        pooled = (states * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out


@functools.cache
def default_encoder() -> Encoder:
    """The pulled, verified model (`orchestrate models pull router`), loaded once per process."""
    files = model_files()
    return Encoder(files["model.safetensors"], files["tokenizer.json"])
