"""Description matching: how well a task fits each agent's `description`, for any number of agents.

TF-IDF cosine between the task and "name + description". The IDF comes from the labelled ML tasks, so
words every ML task uses ("model", "data", "write") count for little and the words that make a
specialist special ("annotation", "CVAT", "GDPR") count for a lot.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.routing.text import content_terms

__all__ = ["TermIndex", "Vector", "agent_document", "cosine", "document_frequencies"]

Vector = dict[str, float]


def agent_document(name: str, description: str) -> str:
    """The text an agent is matched on: its name's words and its description."""
    return f"{name.replace('-', ' ').replace('_', ' ')}. {description}"


def document_frequencies(texts: Iterable[str]) -> tuple[dict[str, float], float]:
    """Smoothed IDF per content word over `texts`, and the IDF of a word they never use."""
    df: Counter[str] = Counter()
    n = 0
    for text in texts:
        n += 1
        df.update(set(content_terms(text)))
    idf = {term: math.log((n + 1) / (count + 1)) + 1.0 for term, count in df.items()}
    return idf, math.log(n + 1) + 1.0


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Dot product of two unit vectors (iterating the shorter one)."""
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b[t] for t, w in a.items() if t in b)


@dataclass(frozen=True)
class TermIndex:
    """IDF weights plus the two questions asked of a task: its vector and how familiar its words are."""

    idf: Mapping[str, float]
    unseen: float

    def vector(self, text: str) -> Vector:
        """Unit-length (1 + log tf) * idf vector of the text's content words."""
        counts = Counter(content_terms(text))
        vec = {t: (1.0 + math.log(c)) * self.idf.get(t, self.unseen) for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in vec.values()))
        return {t: w / norm for t, w in vec.items()} if norm else {}

    def known_share(self, vector: Mapping[str, float]) -> float:
        """Share of the task's distinct content words that the labelled ML tasks use."""
        if not vector:
            return 1.0
        return sum(1 for t in vector if t in self.idf) / len(vector)
