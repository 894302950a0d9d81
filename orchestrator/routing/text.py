"""Text features for the router, shared by the training script and the runtime so they cannot drift.

Pure Python on purpose: routing must cost well under a millisecond per task on one core, and a
tokenizer plus a light suffix stripper is all a linear model over a few thousand features needs.
"""

from __future__ import annotations

import itertools
import re

__all__ = ["STOP_WORDS", "classifier_features", "content_terms", "stem", "surface_forms", "words"]

_WORD = re.compile(r"[a-z][a-z0-9]*|[0-9]+")
_CODE = re.compile(r"`|\w_\w|\.(?:py|ya?ml|json|jsonl|csv|md|txt|toml|ipynb)\b|\w/\w|(?:^|\s)--?\w")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ed", "es", "s")
_REPLACE = {"ies": "y"}
_KEEP_DOUBLE = frozenset("lsz")
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "to",
        "too",
        "us",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    }
)


def stem(word: str) -> str:
    """Strip one common English suffix so "plans", "planning" and "planned" share a feature."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + _REPLACE.get(suffix, "")
            break
    else:
        return word[:-1] if word.endswith("e") and len(word) > 4 else word
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in _KEEP_DOUBLE:
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens in order (digits kept: "p99", "8xa100" carry meaning)."""
    return [stem(w) for w in _WORD.findall(text.lower())]


def surface_forms(text: str) -> dict[str, str]:
    """Each stem's first spelling in the text, to quote the task's own words back in a reason."""
    lowered = text.lower()
    original = text if len(lowered) == len(text) else lowered  # a few letters change length when lowered
    forms: dict[str, str] = {}
    for match in _WORD.finditer(lowered):
        forms.setdefault(stem(match.group()), original[match.start() : match.end()])
    return forms


def content_terms(text: str) -> list[str]:
    """Stemmed tokens without stop words: what description matching compares."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS and len(w) > 1]


def _length_bucket(n: int) -> str:
    """Coarse length: terse commands and long briefs are routed differently."""
    for limit, name in ((6, "xs"), (14, "s"), (28, "m"), (60, "l")):
        if n <= limit:
            return name
    return "xl"


def classifier_features(text: str) -> set[str]:
    """Binary features for the senior/junior classifier: unigrams, bigrams, the opening words, shape."""
    toks = words(text)
    feats = {f"w:{t}" for t in toks}
    feats.update(f"b:{a} {b}" for a, b in itertools.pairwise(toks))
    if toks:
        feats.add(f"f:{toks[0]}")
        feats.add(f"f2:{' '.join(toks[:2])}")
    feats.add(f"len:{_length_bucket(len(toks))}")
    if "?" in text:
        feats.add("shape:question")
    if _CODE.search(text):
        feats.add("shape:code")
    return feats
