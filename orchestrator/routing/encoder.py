"""Sentences to unit vectors with all-MiniLM-L6-v2 on ONNX Runtime: no PyTorch, no network, ~3 ms a task.

The model is a six-layer BERT (hidden 384, 12 heads); a sentence's vector is the mean of its last
layer's token states, L2-normalised, exactly as sentence-transformers computes it (the test compares
with vectors that sentence-transformers produced). Tokenisation is Hugging Face `tokenizers` on the
model's own tokenizer.json, so the ids are upstream's.

The graph is shipped without weights (encoder_graph.py) and ONNX Runtime runs it on the verified
safetensors arrays, with our routing fine-tune (finetune.py: a low-rank delta of the matrices) added as
the encoder loads: the embeddings and the attention matrices float32, the feed-forward and attention
output matrices quantized to 7-bit int8 (30 ms; encoder_graph.py says why 7).
Its kernels pick the CPU's instructions when the process starts, not when the wheel was built. The
vectors are within a cosine of 0.985 of upstream's float32 ones. Each text is its own forward pass,
since the int8 products quantize their whole input with one scale: batched, a text's vector would depend
on its neighbours.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from orchestrator.routing.data import data_file
from orchestrator.routing.encoder_graph import DELTA_FILE, DIMENSION, GRAPH_FILE, initializers, load_delta
from orchestrator.routing.sentence_model import model_files

__all__ = ["DIMENSION", "MAX_TOKENS", "Encoder", "default_encoder", "shipped_encoding"]


MAX_TOKENS = 128
"""Tokens kept per text (the model allows 256): a task's request and an agent's lines fit in far fewer,
and attention costs grow with the square of the length."""
_THREADS = 2
"""At most: ONNX Runtime's default is a thread per core, which on a many-core box shared with a model
server buys little for a 30-token task; two take a fifth off it on a 2-core machine (2.6 vs 3.2 ms).
Fewer when the process may use fewer cores (taskset, a container's CPU set)."""

Matrix = NDArray[np.float32]


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Encoder:
    """all-MiniLM-L6-v2 sentence vectors. Load once (`default_encoder()`); `encode` is thread-safe."""

    def __init__(self, weights: Path, tokenizer: Path, delta: Path | None = None) -> None:
        import onnxruntime  # type: ignore[import-untyped]  # (no stubs; loaded only when routing by meaning)

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = min(_THREADS, _usable_cores()), 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep: no
        # core burnt beside the local model between tasks, for ~0.3 ms a task
        options.log_severity_level = 3  # warnings about the CPU's features are not the user's business
        merged = load_delta(delta) if delta else None
        self._weights = initializers(load_file(str(weights)), merged)  # ONNX Runtime reads these, uncopied
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
        """One unit row per text, (len(texts), 384); each text alone (see the module docstring)."""
        out = np.empty((len(texts), DIMENSION), np.float32)
        for row, encoding in enumerate(self._tokenizer.encode_batch(list(texts))):
            out[row] = self._forward(encoding.ids)
        return out

    def _forward(self, ids: list[int]) -> Matrix:
        states = self._session.run(None, {"ids": np.array([ids], np.int64)})[0][0]
        pooled = states.mean(0)
        out: Matrix = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        return out


@functools.cache
def shipped_encoding() -> str:
    """What `default_encoder()`'s vectors are (a cache of them is keyed on it): the fine-tune's hash too."""
    digest = hashlib.sha256(data_file(DELTA_FILE).read_bytes()).hexdigest()[:16]
    return f"all-MiniLM-L6-v2 + routing fine-tune {digest}, int8 feed-forward and attention output (7-bit)"


@functools.cache
def default_encoder() -> Encoder:
    """The pulled, verified model (`orchestrate models pull router`) with the shipped fine-tune merged in
    (finetune.py), loaded once per process."""
    files = model_files()
    return Encoder(files["model.safetensors"], files["tokenizer.json"], data_file(DELTA_FILE))
