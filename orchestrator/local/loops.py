"""Loop detection for free text: `LoopGuard` ends a generation (forces end-of-sequence) once its tokens
start repeating, marking the response with `LOOP_STOPPED`, and `trim_loop` cuts a reply back to one copy
of the passage it ends up repeating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "LOOP_STOPPED",
    "LoopGuard",
    "loop_period",
    "trim_loop",
]

LOOP_STOPPED = "loop_stopped"
"""Key the engine sets on a response whose generation `LoopGuard` ended."""


def loop_period(tokens: Sequence[int], max_period: int = 120, min_span: int = 48) -> int:
    """The period p of a loop that `tokens` end in (their last max(2p, min_span) tokens repeat with
    period p), the shortest such; 0 when they do not end in a loop."""
    tail = list(tokens[-max(2 * max_period, min_span) :])
    m = len(tail)
    for period in range(1, max_period + 1):
        span = max(2 * period, min_span)
        if span > m:
            break
        if tail[-1] == tail[-1 - period] and tail[m - span + period :] == tail[m - span : m - period]:
            return period
    return 0


def trim_loop(text: str, min_span: int = 60) -> str:
    """`text` cut back to one copy of the passage it ends up repeating (the shortest period P whose last
    max(2P, min_span) characters repeat); unchanged when it does not end in a loop."""
    n = len(text)
    for period in range(1, n // 2 + 1):
        span = max(2 * period, min_span)
        if span > n:
            break
        if text[n - span + period :] == text[n - span : n - period]:
            start = n - span
            while start > 0 and text[start - 1] == text[start - 1 + period]:
                start -= 1
            end = start + period  # the copy may start mid-sentence: finish the sentence it cuts
            while end < min(n, start + 2 * period) and text[:end].rstrip(" ")[-1:] not in (".", "!", "?", "\n"):
                end += 1
            return text[:end].rstrip()
    return text


class LoopGuard:
    """A llama.cpp logits processor that ends a free-text generation (forces end-of-sequence) as soon as
    the generated tokens fall into a loop: greedy small models otherwise repeat a sentence up to
    max_tokens, which costs a minute on two cores."""

    def __init__(self, eos: int, max_period: int = 120, min_span: int = 48) -> None:
        self.eos = eos
        self.max_period = max_period
        self.min_span = min_span
        self.prompt_len: int | None = None
        self.tripped = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.prompt_len is None:
            self.prompt_len = len(input_ids)
        generated = input_ids[self.prompt_len :]
        if len(generated) >= self.min_span and loop_period(generated.tolist(), self.max_period, self.min_span):
            self.tripped = True
            scores[:] = [float("-inf")] * len(scores)
            scores[self.eos] = 0.0
        return scores
