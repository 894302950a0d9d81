"""Whole-file word matching (BM25 with the corpus's document frequencies) and the hubness correction of
sentence cosines: pure parts, no model needed."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.agent_spec import AgentSpec
from orchestrator.routing.body import BodyIndex, CorpusFrequencies, agent_text
from orchestrator.routing.data import BODY_DF_FILE, data_file
from orchestrator.routing.encoder import DIMENSION
from orchestrator.routing.semantic import FEATURES, PAIR_LABEL, SEMANTIC_FORMAT, Reference, SemanticWeights, hubness
from orchestrator.routing.train_semantic import count_corpus_words

FILES = [
    "Terraform modules, remote state and tfstate locking for our cloud infrastructure code.",
    "Kubernetes deployments, HPA autoscaling and Helm charts for our infrastructure code.",
    "React components, accessibility and CSS for our frontend code.",
    "Postgres query plans, indexes and vacuum tuning for our database code.",
]


def _index() -> BodyIndex:
    frequencies = CorpusFrequencies.count(FILES * 2)  # every word twice: none is dropped as too rare
    return BodyIndex(frequencies, {f"agent-{i}": text for i, text in enumerate(FILES)})


def test_a_rare_shared_word_outweighs_words_every_file_uses() -> None:
    scores = _index().scores("our tfstate is locked and the code will not apply")
    assert max(scores, key=scores.__getitem__) == "agent-0"
    assert scores["agent-0"] > 3 * max(v for k, v in scores.items() if k != "agent-0")


def test_scores_lie_in_zero_to_one_and_a_task_of_unknown_words_scores_zero() -> None:
    index = _index()
    for task in ("HPA autoscaling Helm charts Kubernetes deployments", "zxqv wibble", "", "the and of"):
        assert all(0.0 <= v <= 1.0 for v in index.scores(task).values()), task
    assert set(index.scores("zxqv wibble").values()) == {0.0}


def test_agent_text_is_the_names_words_the_description_and_the_body() -> None:
    spec = AgentSpec(name="terraform-engineer", description="Writes HCL.", prompt="Owns tfstate.")
    assert agent_text(spec.name, spec) == "terraform engineer. Writes HCL.\nOwns tfstate."


def test_the_shipped_frequencies_are_the_training_corpus_counted_again() -> None:
    shipped = data_file(BODY_DF_FILE).read_text(encoding="utf-8")
    assert count_corpus_words().to_json() == shipped, "run python -m orchestrator.routing.train_semantic"


def test_a_table_of_another_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="corpus word frequencies format 0, expected 1"):
        CorpusFrequencies.from_json('{"format": 0, "documents": 1, "mean_length": 1, "df": {}}')


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v, axis=-1, keepdims=True), np.float32)


def test_a_vector_near_every_task_is_a_hub_and_the_agents_own_tasks_do_not_count() -> None:
    rng = np.random.default_rng(0)
    tasks = _unit(rng.normal(size=(40, DIMENSION)) + 20.0 * np.eye(1, DIMENSION))  # all lean on axis 0
    reference = Reference(tasks, tuple("a" if i < 20 else "b" for i in range(40)))
    generic, specific = _unit(np.eye(1, DIMENSION)[0]), _unit(rng.normal(size=DIMENSION))
    hub = hubness(np.stack([generic, specific]), reference, own="none")
    assert hub[0] > hub[1] + 0.3
    # agent "a"'s hubness is measured on "b"'s tasks only: a copy of one of its own tasks is no hub
    copy = hubness(tasks[:1], reference, own="a")[0]
    assert copy < hubness(tasks[:1], reference, own="b")[0]


def test_the_ml_contrast_is_nearness_to_our_examples_less_nearness_to_other_agents_tasks() -> None:
    vectors = np.eye(8, DIMENSION, dtype=np.float32)
    labels = (PAIR_LABEL, PAIR_LABEL, PAIR_LABEL, "data-engineer", "data-engineer", "data-engineer", "x", "y")
    reference = Reference(vectors, labels)
    near_ours = _unit(vectors[0] + vectors[1] + vectors[2] + 0.5 * vectors[3])
    assert reference.ml_contrast(near_ours) == pytest.approx((3 - 0.5) / 3 / float(np.linalg.norm([1, 1, 1, 0.5])))
    assert reference.ml_contrast(_unit(vectors[3] + vectors[4])) < 0 < reference.ml_contrast(vectors[0])


def test_weights_name_their_features_and_refuse_another_set_or_format() -> None:
    weights = SemanticWeights(tuple(float(i) for i in range(len(FEATURES))), 1.0, 2.0, {"episodes": 3})
    assert SemanticWeights.from_json(weights.to_json()) == weights
    with pytest.raises(ValueError, match=r"semantic routing weights for \['description'\]"):
        SemanticWeights.from_json(f'{{"format": {SEMANTIC_FORMAT}, "feature": {{"description": 1}}, "pair_bias": 0,'
                                  ' "none": 0, "trained_on": {}}')  # fmt: skip
    with pytest.raises(ValueError, match=f"semantic routing weights format 2, expected {SEMANTIC_FORMAT}"):
        SemanticWeights.from_json(weights.to_json().replace(f'"format": {SEMANTIC_FORMAT}', '"format": 2'))
