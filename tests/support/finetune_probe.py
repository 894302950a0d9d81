"""Runs finetune.py's JAX code in a process of its own, for tests/integration/test_routing_finetune.py.

JAX starts threads and warns at every later os.fork(), so it must not be imported into the pytest process,
whose other tests fork. Usage, writing a .npz to OUT:

    python -m tests.support.finetune_probe vectors OUT TEXT...   # JAX vectors with the shipped delta
    python -m tests.support.finetune_probe fit OUT               # two fits of a toy set, same seed
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def _vectors(out: Path, texts: list[str]) -> None:
    import jax.numpy as jnp
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from orchestrator.routing import finetune
    from orchestrator.routing.data import data_file
    from orchestrator.routing.encoder_graph import DELTA_FILE, layout, load_delta
    from orchestrator.routing.sentence_model import model_files

    files = model_files()
    base = {k: jnp.asarray(v) for k, v in layout(load_file(str(files["model.safetensors"]))).items()}
    ids, mask = finetune._Tokens(Tokenizer.from_file(str(files["tokenizer.json"])))(texts)
    lora = {k: jnp.asarray(v) for k, v in load_delta(data_file(DELTA_FILE)).items()}
    np.savez(out, vectors=np.asarray(finetune.encode(base, lora, ids, mask)))


def _fit(out: Path) -> None:
    from orchestrator.routing import finetune

    agents = {f"agent-{i}": [f"agent {i}: works on subject number {i}", f"subject {i} in depth"] for i in range(20)}
    examples = [finetune.Example(f"a task about subject {i}", f"agent-{i}", f"agent-{i}") for i in range(20)]
    first, second = (finetune.fit_delta(examples, agents, log=False) for _ in range(2))
    np.savez(out, **{f"first/{k}": v for k, v in first.items()}, **{f"second/{k}": v for k, v in second.items()})


if __name__ == "__main__":
    mode, target, *rest = sys.argv[1:]
    if mode == "vectors":
        _vectors(Path(target), rest)
    else:
        _fit(Path(target))
