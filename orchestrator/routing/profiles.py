"""What an agent is matched on: its description, and the passages of its body that say what it does.

An agent file's body is mostly lists under headings ("ETL/ELT development:" then "- Extract
strategies", "- Retry mechanisms", …). One passage is a heading with its items ("ETL/ELT development:
Extract strategies, Retry mechanisms, …") or one sentence of prose. The parts every agent file shares
(the "When invoked" steps, quality checklists, the communication protocol, the hand-off to other agents)
say nothing about which agent a task needs, so they are left out.

Encoding the passages is the slow part of building a router (~40 per agent); `ProfileCache` keeps each
agent's matrix on disk, keyed by the hash of its passages and the model, so a run pays it once per
version of an agent file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from orchestrator.agent_spec import AgentSpec
from orchestrator.routing.encoder import DIMENSION, Matrix, shipped_encoding

__all__ = ["MAX_PASSAGES", "AgentProfile", "ProfileCache", "agent_passages", "build_profiles"]

MAX_PASSAGES = 40
_MAX_WORDS = 40
_LONG_ITEM = 8
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+(.+?)\s*#*|\*\*(.+?)\*\*:?|([A-Z][^.!?]{2,80}):)\s*$")
_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+(.*)$")
_GENERIC = re.compile(
    r"checklist|when invoked|communication|protocol|progress|integration with|delivery|workflow|"
    r"best practices|excellence|behavioral traits|response approach|example|knowledge base|output|"
    r"deliverables|handoff|hand-off|coordination|context|tool|mcp|purpose|quality standards|"
    r"key principles|your role|approach|methodology|how you work|delegat|standards|answering",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_MARKUP = re.compile(r"[`*_]+|\[([^\]]*)\]\([^)]*\)")


def _plain(text: str) -> str:
    return " ".join(_MARKUP.sub(r"\1", text).split())


def _words(text: str, limit: int = _MAX_WORDS) -> str:
    return " ".join(text.split()[:limit])


def agent_passages(name: str, spec: AgentSpec) -> list[str]:
    """The description first (with the name's words), then up to `MAX_PASSAGES - 1` body passages."""
    passages = [_words(f"{name.replace('-', ' ')}: {_plain(spec.description)}", 80)]
    heading, generic = "", False
    items: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        label = f"{heading}: " if heading else ""
        if items and not generic:  # long items one by one, short ones ("- Retry mechanisms") together
            passages.extend(_words(label + i) for i in items if len(i.split()) >= _LONG_ITEM)
            short = [i for i in items if len(i.split()) < _LONG_ITEM]
            if short:
                passages.append(_words(label + ", ".join(short)))
        if prose and not generic:
            passages.extend(_words(s) for s in _SENTENCE.split(_plain(" ".join(prose))) if len(s.split()) >= 5)
        items.clear()
        prose.clear()

    in_code = False
    for raw in spec.prompt.splitlines():
        if raw.strip().startswith("```"):
            in_code = not in_code
            continue
        head, item = _HEADING.match(raw), _ITEM.match(raw)
        if in_code:
            continue
        if not raw.strip():
            flush()
        elif head and not item:
            flush()
            heading = _plain(next(g for g in head.groups() if g))
            generic = bool(_GENERIC.search(heading))
        elif item:
            items.append(_plain(item.group(1)).rstrip(".;:"))
        elif items:  # a wrapped item's next line
            items[-1] += " " + _plain(raw)
        else:
            prose.append(raw.strip())
    flush()
    return list(dict.fromkeys(p for p in passages if p.strip()))[:MAX_PASSAGES]


@dataclass(frozen=True)
class AgentProfile:
    """An agent's passages and their unit vectors (row 0: the description)."""

    name: str
    passages: tuple[str, ...]
    vectors: Matrix


Encode = Callable[[Sequence[str]], Matrix]


class ProfileCache:
    """Encoded passages on disk, one .npy per (model, passages) hash, and in memory once read; a missing
    or unreadable entry is recomputed, a write that fails is skipped (the cache only saves time)."""

    def __init__(self, directory: Path | None = None, model: str | None = None) -> None:
        self.directory = directory or Path(platformdirs.user_cache_dir("orchestrate")) / "routing-profiles"
        self._model = model or shipped_encoding()
        self._loaded: dict[str, Matrix] = {}

    def vectors(self, passages: Sequence[str], encode: Encode) -> Matrix:
        key = hashlib.sha256("\n".join([self._model, *passages]).encode()).hexdigest()[:32]
        if key not in self._loaded:
            self._loaded[key] = self._read_or_encode(key, passages, encode)
        return self._loaded[key]

    def _read_or_encode(self, key: str, passages: Sequence[str], encode: Encode) -> Matrix:
        path = self.directory / f"{key}.npy"
        try:
            cached = np.load(path)
            if cached.shape == (len(passages), DIMENSION):
                return np.asarray(cached, np.float32)
        except (OSError, ValueError):
            pass
        vectors = encode(passages)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
        except OSError:
            pass
        return vectors


def build_profiles(
    agents: Mapping[str, AgentSpec], encode: Encode, cache: ProfileCache | None
) -> dict[str, AgentProfile]:
    """Every agent's profile, encoding only what the cache does not hold."""
    profiles = {}
    for name, spec in agents.items():
        passages = agent_passages(name, spec)
        vectors = cache.vectors(passages, encode) if cache else encode(passages)
        profiles[name] = AgentProfile(name, tuple(passages), vectors)
    return profiles
