"""Routing by meaning with the real routing model (all-MiniLM-L6-v2, pulled by `make test`), at the entry
points a user touches: `orchestrate route --json` on an --agents-dir of corpus agents, and build_router.

Accuracy over the held-out agents is a benchmark (bench/route.py); here: the encoder computes what
sentence-transformers computes, and the decisions carry readable reasons, candidates and an honest
confidence.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from orchestrator.graphs.deps import Deps
from orchestrator.graphs.route import tiebreak_ask
from orchestrator.loader import bundled_agents_dir, parse_agent_file
from orchestrator.providers import FixedProvider
from orchestrator.routing import build_router
from orchestrator.routing.encoder import Encoder, default_encoder
from orchestrator.routing.sentence_model import model_files, pull_sentence_model
from orchestrator.routing.tiebreak import TOOL_NAME
from tests.support.scripted_model import Reply, ScriptedModel, ai, tool_call

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"
MIX = ["terraform-engineer", "data-engineer", "seo-specialist", "legal-advisor", "kubernetes-specialist"]


@pytest.fixture(scope="module", autouse=True)
def _routing_model() -> None:
    pull_sentence_model()  # a no-op when `orchestrate models pull` ran


def _corpus_file(name: str) -> Path:
    split = json.loads((DATA / "routing" / "corpus_split.json").read_text())
    return Path(__file__).resolve().parents[2] / split["heldout"][name]


def test_the_encoder_computes_sentence_transformers_vectors_within_its_int8_error() -> None:
    reference = json.loads((DATA / "routing" / "minilm_reference.json").read_text())
    files = model_files()
    vectors = Encoder(files["model.safetensors"], files["tokenizer.json"]).encode(reference["texts"])  # upstream's
    cosines = (vectors * np.array(reference["vectors"])).sum(1)
    assert cosines.min() > 0.98 and cosines.mean() > 0.99
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_a_text_gets_the_same_vector_alone_or_among_others() -> None:
    texts = ["Add an HPA to the checkout deployment.", "hello", "A much longer request " * 20]
    encoder = default_encoder()
    together = encoder.encode(texts)
    for text, row in zip(texts, together, strict=True):
        assert np.array_equal(encoder.encode([text])[0], row)


def test_route_json_names_the_agent_its_matching_passage_and_the_top_three(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    agents_dir.mkdir()
    for name in MIX:
        shutil.copy(_corpus_file(name), agents_dir / f"{name}.md")
    task = "terraform plan wants to destroy and recreate the prod VPC whenever someone renames a subnet variable"
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "route", "--json", "--agents-dir", str(agents_dir), task],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["agent"] == "terraform-engineer" and row["method"] == "description"
    assert row["reason"].startswith("Matches terraform-engineer's \"")
    names = [c["agent"] for c in row["candidates"]]
    probabilities = [c["probability"] for c in row["candidates"]]
    assert len(names) == 3 and names[0] == "terraform-engineer" and probabilities == sorted(probabilities, reverse=True)
    assert probabilities[0] == pytest.approx(row["confidence"], abs=1e-4)


def test_a_greeting_gets_a_low_confidence_and_says_no_agent_fits() -> None:
    pair = {s.name: s for s in (parse_agent_file(p)[0] for p in sorted(bundled_agents_dir().glob("*.md")))}
    router = build_router(pair, semantic=True)
    decision = router.route("hello")
    assert decision.confidence < 0.5
    assert decision.method == "default" and decision.reason.startswith("No loaded agent fits this task")
    ml = router.route("Add early stopping with patience 5 to train.py and a test for it.")
    assert ml.agent == "ml-engineer" and ml.confidence >= 0.6


async def test_the_tiebreak_sees_each_candidates_closest_line_and_names_the_subject_first() -> None:
    agents = {s.name: s for s in (parse_agent_file(_corpus_file(n))[0] for n in MIX)}
    pair = {s.name: s for s in (parse_agent_file(p)[0] for p in sorted(bundled_agents_dir().glob("*.md")))}
    agents |= pair
    router = build_router(agents, semantic=True, threshold=1.0)  # every task is "unsure"
    task = "Import the hand-made RDS instance into our terraform state without recreating it."
    scores = router.scores(task)
    model = ScriptedModel([Reply(ai("", tool_call(TOOL_NAME, {"reason": "Terraform state.", "agent": scores.best})))])
    deps = Deps(agents=agents, provider=FixedProvider(model), router=router, tools={}, workspace=Path())
    ask = tiebreak_ask(deps)
    assert ask is not None
    decision = await router.aroute(task, ask=ask)
    model.assert_complete()
    assert decision.method == "tiebreak-model" and decision.agent == scores.best == "terraform-engineer"
    [call] = model.calls
    assert f"- terraform-engineer: {agents['terraform-engineer'].description[:40]}" in call.first_human
    assert f"Closest line of its file: {scores.passages['terraform-engineer'][:60]}" in call.first_human
    assert list(call.tools[0]["input_schema"]["properties"]) == ["reason", "agent"]
