"""A run's recorded model calls as answers for a replay: which exist, which were used, and where the
replayed graph first asked something the recording has no answer to (`Divergence`)."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.content import content_text
from orchestrator.errors import RunError
from orchestrator.run_store import CallRecord

__all__ = ["Divergence", "Recording", "ReplayDivergence", "difference", "recorded_request"]

_EXCERPT = 70


@dataclass(frozen=True)
class Divergence:
    """The first request the recording cannot answer."""

    step: int | None
    """The replay's own call number (0-based, in the order it asked); None for the route."""
    agent: str
    purpose: str
    delegation: str
    recorded_step: int | None
    """The closest recorded call of that agent (what it should have asked), if any."""
    difference: str

    def describe(self) -> str:
        where = "routing" if self.step is None else f"call {self.step}"
        closest = f" vs recorded step {self.recorded_step}" if self.recorded_step is not None else ""
        path = f" in delegation {self.delegation}" if self.delegation else ""
        return f"diverged at {where} ({self.agent} {self.purpose}{path}){closest}: {self.difference}"


class ReplayDivergence(RunError):
    """The replayed graph asked something the recording has no answer to: the run stops there."""

    def __init__(self, divergence: Divergence) -> None:
        self.divergence = divergence
        super().__init__(divergence.describe())


def recorded_request(call: CallRecord) -> dict[str, Any]:
    value = json.loads(call.request)
    return value if isinstance(value, dict) else {}


def _excerpt(a: str, b: str) -> tuple[str, str]:
    """The two texts around their first differing character."""
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, at - 20)
    return _cut(a, start), _cut(b, start)


def _cut(text: str, start: int) -> str:
    return ("…" if start else "") + text[start : start + _EXCERPT] + ("…" if len(text) > start + _EXCERPT else "")


def _text(message: Mapping[str, Any]) -> str:
    return content_text(message.get("data", {}).get("content"))


def _message_difference(index: int, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    role = new.get("type", "?")
    if old.get("type") != role:
        return f"message {index} is a {role} message; the recording has a {old.get('type')} message there"
    old_text, new_text = _text(old), _text(new)
    if old_text == new_text:
        old_text, new_text = json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True)
    was, now = _excerpt(old_text, new_text)
    return f"message {index} ({role}) differs: recorded {was!r}, replay {now!r}"


def difference(recorded: Mapping[str, Any], replay: Mapping[str, Any]) -> str:
    """What differs between two fingerprinted requests, the first thing first."""
    for key in ("model", "tools", "tool_choice"):
        if recorded.get(key) != replay.get(key):
            return f"{key} differs: recorded {recorded.get(key)!r}, replay {replay.get(key)!r}"
    old, new = recorded.get("messages", []), replay.get("messages", [])
    for index, (a, b) in enumerate(zip(old, new, strict=False)):
        if a != b:
            return _message_difference(index, a, b)
    if len(old) != len(new):
        agree = min(len(old), len(new))
        return f"the replay sends {len(new)} messages, the recording {len(old)} (the first {agree} agree)"
    return "the request is identical, but its recorded answer was already used"


def _common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


class Recording:
    """The recorded calls of one run and which of them the replay has used. Shared by every replayed
    chat model (parallel branches ask concurrently), hence the lock."""

    def __init__(self, calls: Sequence[CallRecord], *, from_step: int | None = None) -> None:
        self.calls = list(calls)
        self.from_step = from_step
        self._lock = threading.Lock()
        self._by_hash: dict[str, deque[int]] = {}
        for seq, call in enumerate(self.calls):
            self._by_hash.setdefault(call.request_hash, deque()).append(seq)
        self.used: set[int] = set()
        self.asked = 0
        self.live = 0
        self.divergence: Divergence | None = None

    def take(self, digest: str) -> tuple[int, CallRecord | None, bool]:
        """(the replay's call number, the recorded call answering it or None, whether one exists at all)."""
        with self._lock:
            step, self.asked = self.asked, self.asked + 1
            queue = self._by_hash.get(digest, deque())
            seq = next((s for s in queue if s not in self.used), None)
            if seq is None:
                return step, None, False
            if self.from_step is not None and seq >= self.from_step:
                self.live += 1
                return step, None, True
            self.used.add(seq)
            return step, self.calls[seq], True

    def note(self, divergence: Divergence) -> Divergence:
        """Keep the first divergence (parallel branches may diverge at once; the first one counts)."""
        with self._lock:
            self.divergence = self.divergence or divergence
            return divergence

    def count_live(self) -> None:
        with self._lock:
            self.live += 1

    def unused(self) -> tuple[int, ...]:
        """Recorded steps the replay never asked for (before `from_step`, when replaying partly live)."""
        limit = len(self.calls) if self.from_step is None else min(self.from_step, len(self.calls))
        return tuple(seq for seq in range(limit) if seq not in self.used)

    def closest(self, agent: str, purpose: str, delegation: str, request: Mapping[str, Any]) -> int | None:
        """The unused recorded call most like this request: same agent (and purpose, and delegation path,
        when possible), then the longest run of identical leading messages, then the earliest."""
        candidates = [s for s, c in enumerate(self.calls) if c.agent == agent and s not in self.used]
        if not candidates:
            return None
        messages = request.get("messages", [])

        def score(seq: int) -> tuple[bool, bool, int, int]:
            call = self.calls[seq]
            prefix = _common_prefix(recorded_request(call).get("messages", []), messages)
            return call.purpose == purpose, call.delegation == delegation, prefix, -seq

        return max(candidates, key=score)
