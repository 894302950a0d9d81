"""Whole-file word matching: BM25 between a task and each agent's name, description and body.

A sentence vector blurs rare words ("Terraform", "tfstate", "HPA") and a description is too short to hold
them; an agent's body usually names them. BM25 (Okapi) scores the words a task shares with the whole
file, each weighted by how rare it is across published agent files: the document frequencies of the
training side of the agent corpus, shipped as orchestrator/data/routing_corpus_df.json (built by
train_semantic.py), so a word every agent file uses ("code", "team", "quality") counts for little
whatever agents a user loads. The score is divided by its best possible value for the task, so it lies in
[0, 1] and compares across tasks.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.agent_spec import AgentSpec
from orchestrator.routing.text import content_terms

__all__ = ["BODY_DF_FORMAT", "BodyIndex", "CorpusFrequencies", "agent_text"]

BODY_DF_FORMAT = 1
_K1 = 1.2
_B = 0.75
_MIN_DF = 2
"""Words fewer files use are left out of the shipped table (they count as unseen: the rarest)."""


def agent_text(name: str, spec: AgentSpec) -> str:
    """What an agent is matched on by words: its name's words, description and body."""
    return f"{name.replace('-', ' ').replace('_', ' ')}. {spec.description}\n{spec.prompt}"


@dataclass(frozen=True)
class CorpusFrequencies:
    """How many of `documents` agent files use each word (stemmed content terms), and their mean length."""

    documents: int
    mean_length: float
    df: Mapping[str, int]

    @classmethod
    def count(cls, texts: Iterable[str]) -> CorpusFrequencies:
        df: Counter[str] = Counter()
        n = total = 0
        for text in texts:
            terms = content_terms(text)
            n, total = n + 1, total + len(terms)
            df.update(set(terms))
        kept = {t: c for t, c in sorted(df.items()) if c >= _MIN_DF}
        return cls(n, total / max(n, 1), kept)

    def idf(self, term: str) -> float:
        df = self.df.get(term, 0)
        return math.log((self.documents - df + 0.5) / (df + 0.5) + 1.0)

    def to_json(self) -> str:
        body: dict[str, Any] = {"format": BODY_DF_FORMAT, "documents": self.documents,
                                "mean_length": round(self.mean_length, 3), "df": dict(self.df)}  # fmt: skip
        return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CorpusFrequencies:
        raw: dict[str, Any] = json.loads(text)
        if raw.get("format") != BODY_DF_FORMAT:
            raise ValueError(f"corpus word frequencies format {raw.get('format')!r}, expected {BODY_DF_FORMAT}")
        return cls(int(raw["documents"]), float(raw["mean_length"]), {str(k): int(v) for k, v in raw["df"].items()})


class BodyIndex:
    """BM25 of a task against a fixed set of agents; per agent, each word's saturated term frequency."""

    def __init__(self, frequencies: CorpusFrequencies, texts: Mapping[str, str]) -> None:
        self._freq = frequencies
        self._terms: dict[str, dict[str, float]] = {}
        for name, text in texts.items():
            counts = Counter(content_terms(text))
            norm = _K1 * (1 - _B + _B * sum(counts.values()) / frequencies.mean_length)
            self._terms[name] = {t: c * (_K1 + 1) / (c + norm) for t, c in counts.items()}

    def scores(self, task: str) -> dict[str, float]:
        """Each agent's BM25 score for the task's distinct words over its best possible score, in [0, 1]."""
        query = {t: self._freq.idf(t) for t in set(content_terms(task))}
        best = sum(query.values()) * (_K1 + 1)
        if not best:
            return dict.fromkeys(self._terms, 0.0)
        return {name: sum(w * terms[t] for t, w in query.items() if t in terms) / best
                for name, terms in self._terms.items()}  # fmt: skip
