"""The encoder's fine-tune (finetune.py) learns on the model the router runs: its JAX forward pass, with the
shipped delta, gives the vectors the shipped encoder gives (ONNX Runtime, the delta merged and quantized),
and fitting moves the delta from zero, the same way for the same seed. JAX runs in a process of its own
(tests/support/finetune_probe.py): it warns at every fork of the process that imported it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from orchestrator.routing.encoder import Encoder, default_encoder
from orchestrator.routing.sentence_model import model_files, pull_sentence_model

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "Add an HPA to the checkout deployment and make it scale on queue depth.",
    "kubernetes specialist: container orchestration, Helm charts and cluster operations",
    "Our nightly Airflow DAG loads duplicate rows into the warehouse; make the load idempotent.",
    "hello",
]


@pytest.fixture(scope="module", autouse=True)
def _routing_model() -> None:
    pull_sentence_model()


def _probe(tmp_path: Path, *args: str) -> dict[str, np.ndarray]:
    out = tmp_path / "probe.npz"
    subprocess.run([sys.executable, "-m", "tests.support.finetune_probe", args[0], str(out), *args[1:]],
                   cwd=ROOT, check=True, timeout=600)  # fmt: skip
    with np.load(out) as stored:
        return {k: stored[k] for k in stored.files}


def test_the_trained_forward_pass_with_the_shipped_delta_is_the_shipped_encoder(tmp_path: Path) -> None:
    tuned = _probe(tmp_path, "vectors", *TEXTS)["vectors"]
    shipped = default_encoder().encode(TEXTS)
    assert (tuned * shipped).sum(1).min() > 0.98  # the same vectors but for the int8 matrices' error
    files = model_files()
    upstream = Encoder(files["model.safetensors"], files["tokenizer.json"]).encode(TEXTS)
    assert (upstream * shipped).sum(1).min() < 0.97  # and the delta is not a no-op


def test_fitting_moves_the_delta_from_zero_and_the_same_seed_fits_the_same_delta(tmp_path: Path) -> None:
    fits = _probe(tmp_path, "fit")
    first = {k.removeprefix("first/"): v for k, v in fits.items() if k.startswith("first/")}
    assert any(np.abs(v).max() > 0 for k, v in first.items() if k.endswith(".b"))  # B starts at zero
    assert all(np.array_equal(v, fits[f"second/{k}"]) for k, v in first.items())
