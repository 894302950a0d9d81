"""The loopback server's prompt cache follows Anthropic's rules, so the usage the integration tests assert
is the usage the API would report."""

from __future__ import annotations

from typing import Any

from tests.support.prompt_cache import CacheUsage, PromptCache

AUTO = {"type": "ephemeral"}
BIG = "x" * 4 * 2100  # 2,100 tokens at 4 characters each: over Sonnet 4.6's 2,048, under Opus 4.6's 4,096


def request(model: str, *texts: str, system: str = BIG) -> dict[str, Any]:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]
    return {"model": model, "system": system, "messages": messages, "cache_control": AUTO}


def test_under_the_models_minimum_nothing_is_written_or_read() -> None:
    cache = PromptCache()
    first = cache.use(request("claude-opus-4-6", "hi"))
    again = cache.use(request("claude-opus-4-6", "hi"))
    assert first == again and first.cache_creation_input_tokens == first.cache_read_input_tokens == 0


def test_over_it_the_prefix_is_written_once_then_read() -> None:
    cache = PromptCache()
    first = cache.use(request("claude-sonnet-4-6", "hi"))
    assert first.cache_read_input_tokens == 0 and first.cache_creation_input_tokens > 2048
    again = cache.use(request("claude-sonnet-4-6", "hi"))
    assert again == CacheUsage(0, 0, first.cache_creation_input_tokens)


def test_the_moving_breakpoint_reads_the_previous_call_and_writes_what_is_new() -> None:
    cache = PromptCache()
    first = cache.use(request("claude-sonnet-4-6", "hi"))
    later = cache.use(request("claude-sonnet-4-6", "hi", "a reply", "y" * 400))
    assert later.cache_read_input_tokens == first.cache_creation_input_tokens
    assert later.cache_creation_input_tokens > 100 and later.input_tokens == 0


def test_the_lookback_stops_twenty_blocks_before_a_breakpoint() -> None:
    cache = PromptCache()
    cache.use(request("claude-sonnet-4-6", "hi"))
    turns = ["more"] * 21
    far = cache.use(request("claude-sonnet-4-6", "hi", *turns))
    assert far.cache_read_input_tokens == 0


def test_where_the_breakpoint_sits_is_not_part_of_the_prefix() -> None:
    cache = PromptCache()
    marked = {"model": "claude-sonnet-4-6", "system": [{"type": "text", "text": BIG, "cache_control": AUTO}],
              "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    written = cache.use(marked)
    moved = cache.use(request("claude-sonnet-4-6", "hi"))
    assert written.cache_creation_input_tokens > 0
    assert moved.cache_read_input_tokens == written.cache_creation_input_tokens
    assert moved.cache_creation_input_tokens > 0  # the user block after it is new
