"""Claims a final answer makes about the run's work, checked against the records (orchestrator/claims.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.claims import false_claims
from orchestrator.graphs.evidence import contradicted_claims

CHUNKER = {"agent": "ml-engineer", "description": "chunker", "status": "unapproved", "files_changed": ["rag/chunk.py"]}
INDEX = {"agent": "ml-engineer", "description": "index", "status": "approved", "files_changed": ["rag/index.py"]}


@pytest.mark.parametrize(
    ("sentence", "why"),
    [
        ("I created the file `rag/chunk.py`.", "ml-engineer wrote rag/chunk.py, not the agent answering"),
        ("I have implemented rag/serve.py.", "no one in this run wrote rag/serve.py"),
        ("I wrote the files for this design.", "the files were written by ml-engineer"),
        ("The retriever in rag/retrieve.py was written.", "no one in this run wrote rag/retrieve.py"),
        ("The settings live in conf/app.yaml, which exists.", "conf/app.yaml does not exist"),
        ("All work was approved.", "ml-engineer's work (chunker) was unapproved"),
        ("The chunker was approved.", "ml-engineer's work (chunker) was unapproved"),
    ],
)
def test_a_claim_the_records_contradict_is_found(sentence: str, why: str, tmp_path: Path) -> None:
    [claim] = false_claims(sentence, [CHUNKER, INDEX], workspace=tmp_path)
    assert (claim.sentence, claim.why) == (sentence, why)


@pytest.mark.parametrize(
    "sentence",
    [
        "ml-engineer wrote rag/chunk.py; it was not approved.",
        "The index (rag/index.py) was approved in round 1.",
        "I wrote notes.md with the open questions.",  # the answering agent's own file
        "Chunks go to rag/store.py in milestone 2.",  # a plan, not a claim of work done
        "The chunker was NOT approved after 3 rounds.",
        "Embed with a 384-dimension model and index in FAISS.",
    ],
)
def test_true_or_plain_statements_pass(sentence: str, tmp_path: Path) -> None:
    assert false_claims(sentence, [CHUNKER, INDEX], own_files=["notes.md"], workspace=tmp_path) == []


def test_a_review_that_calls_a_file_with_content_empty_or_missing_is_contradicted(tmp_path: Path) -> None:
    (tmp_path / "design.md").write_text("# Design\n- chunking\n")
    (tmp_path / "empty.md").write_text("")
    feedback = "The file design.md exists but is empty. empty.md is empty. Also add a test. other.md is missing."
    assert contradicted_claims(feedback, tmp_path) == [
        "design.md exists, 20 bytes, 2 lines (the review said: The file design.md exists but is empty.)"
    ]
    assert contradicted_claims("Add retrieval evaluation to design.md.", tmp_path) == []
