"""Sentences to unit vectors with all-MiniLM-L6-v2, in numpy: no PyTorch, no network, ~2 ms a task.

The model is a six-layer BERT (hidden 384, 12 heads); a sentence's vector is the mean of its last
layer's token states, L2-normalised, exactly as sentence-transformers computes it (the test compares
with vectors that sentence-transformers produced). Tokenisation is Hugging Face `tokenizers` on the
model's own tokenizer.json, so the ids are upstream's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from orchestrator.routing.sentence_model import model_files

__all__ = ["DIMENSION", "MAX_TOKENS", "Encoder", "default_encoder"]

DIMENSION = 384
MAX_TOKENS = 128
"""Tokens kept per text (the model allows 256): a task's request and an agent's lines fit in far fewer,
and attention costs grow with the square of the length."""
_HEADS = 12
_LAYERS = 6
_EPS = 1e-12
_BATCH = 32

Matrix = NDArray[np.float32]


def _layer_norm(x: Matrix, weight: Matrix, bias: Matrix) -> Matrix:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Matrix = (x - mean) / np.sqrt(var + _EPS) * weight + bias
    return out


def _erf(x: Matrix) -> Matrix:
    """Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7): BERT's GELU is the exact, erf form."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    out: Matrix = sign * (1.0 - poly * np.exp(-a * a))
    return out


def _gelu(x: Matrix) -> Matrix:
    return 0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))


class Encoder:
    """all-MiniLM-L6-v2 sentence vectors. Load once (`default_encoder()`); `encode` is thread-safe."""

    def __init__(self, weights: Path, tokenizer: Path) -> None:
        w = load_file(str(weights))
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [self._layer(w, f"encoder.layer.{i}.") for i in range(_LAYERS)]
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()

    @staticmethod
    def _layer(w: dict[str, Matrix], p: str) -> tuple[Matrix, ...]:
        """One layer's matrices, transposed once for `x @ W`; Q, K and V fused into one product."""
        qkv = np.concatenate([w[f"{p}attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
        qkv_b = np.concatenate([w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")])
        return (
            np.ascontiguousarray(qkv), qkv_b,
            np.ascontiguousarray(w[f"{p}attention.output.dense.weight"].T), w[f"{p}attention.output.dense.bias"],
            w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"],
            np.ascontiguousarray(w[f"{p}intermediate.dense.weight"].T), w[f"{p}intermediate.dense.bias"],
            np.ascontiguousarray(w[f"{p}output.dense.weight"].T), w[f"{p}output.dense.bias"],
            w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"],
        )  # fmt: skip

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
        mask = np.zeros((n, length), np.float32)
        for row, ids in enumerate(batch):
            tokens[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        x = self._word[tokens] + self._position[:length] + self._type0
        x = _layer_norm(x, *self._ln)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # padding takes no attention
        head = DIMENSION // _HEADS
        for qkv, qkv_b, o, o_b, ln1_w, ln1_b, up, up_b, down, down_b, ln2_w, ln2_b in self._layers:
            q, k, v = np.split((x @ qkv + qkv_b).reshape(n, length, 3 * _HEADS, head).transpose(0, 2, 1, 3), 3, 1)
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = (scores / scores.sum(-1, keepdims=True)) @ v
            x = _layer_norm(x + attn.transpose(0, 2, 1, 3).reshape(n, length, DIMENSION) @ o + o_b, ln1_w, ln1_b)
            x = _layer_norm(x + _gelu(x @ up + up_b) @ down + down_b, ln2_w, ln2_b)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out


@functools.cache
def default_encoder() -> Encoder:
    """The pulled, verified model (`orchestrate models pull router`), loaded once per process."""
    files = model_files()
    return Encoder(files["model.safetensors"], files["tokenizer.json"])
