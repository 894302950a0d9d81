"""The encoder's fine-tune (finetune.py) learns on the model the router runs: its JAX forward pass, with the
shipped delta, gives the vectors the shipped encoder gives (ONNX Runtime, the delta merged and quantized),
and fitting moves the delta from zero, the same way for the same seed."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from orchestrator.routing import finetune
from orchestrator.routing.data import data_file
from orchestrator.routing.encoder import Encoder, default_encoder
from orchestrator.routing.encoder_graph import DELTA_FILE, load_delta
from orchestrator.routing.sentence_model import model_files, pull_sentence_model

pytestmark = pytest.mark.slow

TEXTS = [
    "Add an HPA to the checkout deployment and make it scale on queue depth.",
    "kubernetes specialist: container orchestration, Helm charts and cluster operations",
    "Our nightly Airflow DAG loads duplicate rows into the warehouse; make the load idempotent.",
    "hello",
]


@pytest.fixture(scope="module", autouse=True)
def _routing_model() -> None:
    pull_sentence_model()


def _jax_vectors(lora: dict[str, np.ndarray]) -> np.ndarray:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    files = model_files()
    base = {k: jnp.asarray(v) for k, v in finetune._base(load_file(str(files["model.safetensors"]))).items()}
    ids, mask = finetune._Tokens(Tokenizer.from_file(str(files["tokenizer.json"])))(TEXTS)
    return np.asarray(finetune.encode(base, {k: jnp.asarray(v) for k, v in lora.items()}, ids, mask))


def test_the_trained_forward_pass_with_the_shipped_delta_is_the_shipped_encoder() -> None:
    tuned = _jax_vectors(load_delta(data_file(DELTA_FILE)))
    shipped = default_encoder().encode(TEXTS)
    assert (tuned * shipped).sum(1).min() > 0.98  # the same vectors but for the int8 matrices' error
    files = model_files()
    upstream = Encoder(files["model.safetensors"], files["tokenizer.json"]).encode(TEXTS)
    assert (upstream * shipped).sum(1).min() < 0.97  # and the delta is not a no-op


def test_a_fitting_step_moves_the_delta_from_zero_and_the_same_seed_fits_the_same_delta() -> None:
    agents = {f"agent-{i}": [f"agent {i}: works on subject number {i}", f"subject {i} in depth"] for i in range(20)}
    examples = [finetune.Example(f"a task about subject {i}", f"agent-{i}", f"agent-{i}") for i in range(20)]
    delta = finetune.fit_delta(examples, agents, epochs=1, log=False)
    assert any(np.abs(v).max() > 0 for k, v in delta.items() if k.endswith(".b"))  # B starts at zero
    again = finetune.fit_delta(examples, agents, epochs=1, log=False)
    assert all(np.array_equal(delta[k], again[k]) for k in delta)
