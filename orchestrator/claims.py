"""What a final answer claims about the run's work, checked against the records: who wrote which file,
whether a file exists, whether work was approved. A small model writes "I created the file x.md" when a
junior did, or calls unapproved work approved; these sentences are found here, the way the review's
evidence check finds a report's missing files (graphs/evidence.py).

Used by the local adapter (which drops such sentences from the senior's answer and states the
delegations' outcomes itself), by the end-to-end test, and by bench/local_models.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.file_mentions import mentioned_paths

__all__ = ["FalseClaim", "false_claims", "sentences"]

_I_MADE = re.compile(
    r"\bI(?:'ve| have)?\s+(?:\w+\s+)?(?:created|wrote|written|implemented|built|added|produced|generated|saved)\b",
    re.IGNORECASE,
)
_MADE = re.compile(
    r"\b(?:has been|have been|was|were|is now|are now)\s+(?:\w+\s+)?"
    r"(?:created|written|saved|produced|generated|added)\b",
    re.IGNORECASE,
)
_EXISTS = re.compile(r"\bexists?\b", re.IGNORECASE)
_APPROVED = re.compile(r"(?<!un)(?<!not )\bapproved\b", re.IGNORECASE)
_NOT_APPROVED = re.compile(r"\b(?:not|never|un)\s*approved\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class FalseClaim:
    sentence: str
    why: str


def sentences(text: str) -> list[str]:
    """The answer's sentences and lines (a bullet is a sentence)."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _by_others(delegations: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """file -> the agent whose delegation changed it."""
    return {path: str(d["agent"]) for d in delegations for path in d.get("files_changed") or ()}


def _claim(
    sentence: str, delegations: Sequence[Mapping[str, Any]], own: frozenset[str], workspace: Path | None
) -> str | None:
    by_others = _by_others(delegations)
    paths = mentioned_paths(sentence, workspace)
    if _I_MADE.search(sentence):
        for path in (p for p in paths if p not in own):
            return (
                f"{by_others[path]} wrote {path}, not the agent answering"
                if path in by_others
                else (f"no one in this run wrote {path}")
            )
        if not paths and not own and by_others and re.search(r"\bfiles?\b", sentence, re.IGNORECASE):
            return f"the files were written by {', '.join(sorted(set(by_others.values())))}"
    if _MADE.search(sentence):
        for path in (p for p in paths if p not in own and p not in by_others):
            if workspace is None or not (workspace / path).exists():
                return f"no one in this run wrote {path}"
    if workspace is not None and _EXISTS.search(sentence):
        for path in (p for p in paths if not (workspace / p).exists()):
            return f"{path} does not exist"
    if _APPROVED.search(sentence) and not _NOT_APPROVED.search(sentence):
        named = [d for d in delegations if _names(sentence, d)]
        for d in (d for d in named or delegations if d.get("status") != "approved"):
            return f"{d['agent']}'s work ({d['description']}) was {d['status']}"
    return None


def _names(sentence: str, delegation: Mapping[str, Any]) -> bool:
    """Whether the sentence is about this delegation: it names its description or a file it changed."""
    said = sentence.casefold()
    return str(delegation["description"]).casefold() in said or any(
        str(path).casefold() in said for path in delegation.get("files_changed") or ()
    )


def false_claims(
    answer: str,
    delegations: Sequence[Mapping[str, Any]],
    *,
    own_files: Sequence[str] = (),
    workspace: Path | None = None,
) -> list[FalseClaim]:
    """Sentences of `answer` that the records contradict: the run's delegations (DelegationRecord-shaped),
    the files the answering agent changed itself, and (when given) the workspace as it is now."""
    own = frozenset(own_files)
    found = ((s, _claim(s, delegations, own, workspace)) for s in sentences(answer))
    return [FalseClaim(s, why) for s, why in found if why is not None]
