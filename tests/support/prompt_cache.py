"""Anthropic's prompt cache, as the loopback Messages-API server plays it: what a request would read from
and write to the cache, so the usage it reports is the usage the real API would report for the same
requests.

The rules (Anthropic's prompt-caching guide):
- a request is a sequence of blocks: the tools, then the system blocks, then each message's content blocks
  (a string content is one text block); a block with `cache_control` is a breakpoint, and a top-level
  `cache_control` (automatic caching) makes the last block one;
- at each breakpoint the cache is looked up for the prefix ending there and, failing that, for the prefixes
  ending at up to 20 blocks before it; the longest hit is read;
- each breakpoint's prefix is written unless it is shorter than the model's minimum (4,096 tokens for
  Opus 4.5/4.6 and Haiku 4.5, 2,048 for Sonnet 4.6, 1,024 otherwise): below it nothing is cached, silently;
- `cache_control` itself is not part of what is cached (moving a breakpoint keeps the prefix).

Tokens are characters / 4 of each block's JSON, the server's one measure everywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LOOKBACK", "MIN_CACHEABLE_TOKENS", "CacheUsage", "PromptCache", "minimum_tokens"]

LOOKBACK = 20
MIN_CACHEABLE_TOKENS: Mapping[str, int] = {
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
    "claude-sonnet-4-6": 2048,
}


def minimum_tokens(model: str) -> int:
    return next((n for prefix, n in MIN_CACHEABLE_TOKENS.items() if model.startswith(prefix)), 1024)


@dataclass(frozen=True)
class CacheUsage:
    input_tokens: int
    """Tokens after the cached and newly written prefix: what is billed in full."""
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


def _blocks(body: Mapping[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """(block without cache_control, is a breakpoint), in the order the API reads them."""
    raw: list[Any] = list(body.get("tools") or [])
    system = body.get("system")
    raw += [{"type": "text", "text": system}] if isinstance(system, str) else list(system or [])
    for message in body.get("messages") or []:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        raw += [{**part, "role": message.get("role")} for part in parts]
    blocks = [({k: v for k, v in b.items() if k != "cache_control"}, "cache_control" in b) for b in raw]
    if body.get("cache_control") and blocks:
        blocks[-1] = (blocks[-1][0], True)
    return blocks


@dataclass
class PromptCache:
    """One organisation's cache, shared by every request the server answers."""

    entries: set[str] = field(default_factory=set)

    def use(self, body: Mapping[str, Any]) -> CacheUsage:
        blocks = _blocks(body)
        digest, hashes, totals, total = hashlib.sha256(), [], [], 0
        for block, _ in blocks:
            text = json.dumps(block, sort_keys=True, separators=(",", ":"))
            digest.update(text.encode())
            hashes.append(digest.copy().hexdigest())
            total += max(1, len(text) // 4)
            totals.append(total)
        breakpoints = [i for i, (_, marked) in enumerate(blocks) if marked]
        read_to = -1
        for point in breakpoints:
            hit = next((j for j in range(point, max(-1, point - LOOKBACK - 1), -1) if hashes[j] in self.entries), -1)
            read_to = max(read_to, hit)
        written_to = read_to
        floor = minimum_tokens(str(body.get("model", "")))
        for point in breakpoints:
            if point > read_to and totals[point] >= floor:
                self.entries.add(hashes[point])
                written_to = max(written_to, point)
        read = totals[read_to] if read_to >= 0 else 0
        written = (totals[written_to] if written_to >= 0 else 0) - read
        return CacheUsage(total - read - written, written, read)
