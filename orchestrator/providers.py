"""Model providers: which langchain-core chat model serves an agent's `model:` value.

Any LangChain chat model can serve an agent; a provider maps the agent file's model value ("opus",
"sonnet", "haiku" or a full id; "inherit" is resolved by the graph before it gets here) to one. Retries
live in exactly one layer, the anthropic SDK's (`max_retries`); the graph never retries a model call.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langchain_core.language_models import BaseChatModel

from orchestrator.config import CLAUDE_MODELS, Settings
from orchestrator.errors import UserError

__all__ = ["AnthropicProvider", "FixedProvider", "ModelProvider", "OpenAIProvider", "ProviderName", "select_provider"]

ProviderName = Literal["anthropic", "openai", "local"]


class ModelProvider(Protocol):
    """Where chat models come from."""

    @property
    def name(self) -> str: ...

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """Exceptions that mean "this call failed" (after the provider's own retries)."""
        ...

    def chat_model(self, model: str) -> BaseChatModel: ...

    def model_id(self, model: str) -> str:
        """The concrete model behind an agent's model value (what the price table and records name)."""
        ...


@dataclass
class AnthropicProvider:
    """Claude through the anthropic SDK (via langchain-anthropic). Honours ANTHROPIC_API_KEY and
    ANTHROPIC_BASE_URL."""

    settings: Settings = field(default_factory=Settings.from_env)
    streaming: bool = True
    """Stream every reply over SSE (same results; the text shows as it is written). False: one JSON reply."""
    max_retries: int = 2
    name: str = "anthropic"
    _cache: dict[str, BaseChatModel] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        import anthropic  # deferred: the SDK costs over a second to import, which a local run never needs

        return (anthropic.APIError,)

    def model_id(self, model: str) -> str:
        return self.settings.claude_models.get(model, model)

    def chat_model(self, model: str) -> BaseChatModel:
        model_id = self.model_id(model)
        if model_id not in self._cache:
            self._cache[model_id] = self._build(model_id)
        return self._cache[model_id]

    def _build(self, model_id: str) -> BaseChatModel:
        from langchain_anthropic import ChatAnthropic  # deferred: importing it costs ~0.3 s

        # ChatAnthropic reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself. Passed as a mapping: its
        # pydantic aliases (model, max_tokens) are what users know, but mypy only sees field names.
        options: dict[str, Any] = {
            "model": model_id,
            "max_tokens": self.settings.max_tokens,
            "streaming": self.streaming,
            "max_retries": self.max_retries,
            "default_request_timeout": self.settings.request_timeout_s,
            # automatic prompt caching: the breakpoint sits on the last block and moves with the conversation,
            # so each call reads what the previous one wrote (once it is over the model's minimum); the system
            # prompt's own breakpoint (graphs/prompts.py) lets parallel contexts of one agent share theirs
            "model_kwargs": {"cache_control": {"type": "ephemeral"}},
        }
        return ChatAnthropic(**options)


def _openai_models(env: Mapping[str, str]) -> dict[str, str]:
    """Alias -> the server's model name: ORCHESTRATE_MODEL_<ALIAS>, else OPENAI_MODEL, else the alias."""
    fallback = env.get("OPENAI_MODEL")
    return {alias: env.get(f"ORCHESTRATE_MODEL_{alias.upper()}") or fallback or alias for alias in CLAUDE_MODELS}


@dataclass
class OpenAIProvider:
    """Any OpenAI-compatible chat server (OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio) through
    langchain-openai's ChatOpenAI (`pip install 'orchestrate[openai]'`). Honours OPENAI_BASE_URL and
    OPENAI_API_KEY; the aliases map to the server's model names through ORCHESTRATE_MODEL_OPUS / _SONNET /
    _HAIKU (else OPENAI_MODEL for all three)."""

    models: Mapping[str, str] = field(default_factory=lambda: _openai_models(os.environ))
    settings: Settings = field(default_factory=Settings)
    streaming: bool = True
    """Stream every reply (same results; the text shows as it is written). False: one JSON reply."""
    max_retries: int = 2
    name: str = "openai"
    _cache: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, BaseChatModel]] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )
    """Chat models per event loop, each with its own HTTP pool: a pool belongs to the loop that opened it
    (langchain-openai's default client is one per process, which breaks on the next loop)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, settings: Settings | None = None) -> OpenAIProvider:
        return cls(models=_openai_models(os.environ if env is None else env), settings=settings or Settings())

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        import openai

        return (openai.APIError,)

    def model_id(self, model: str) -> str:
        return self.models.get(model, model)

    def chat_model(self, model: str) -> BaseChatModel:
        """The model for `model` on the running event loop (graph nodes always run on one)."""
        models = self._cache.setdefault(asyncio.get_running_loop(), {})
        model_id = self.model_id(model)
        if model_id not in models:
            models[model_id] = self._build(model_id)
        return models[model_id]

    async def aclose(self) -> None:
        """Close the HTTP pools this loop's models opened (a later call opens new ones)."""
        for chat in self._cache.pop(asyncio.get_running_loop(), {}).values():
            await chat.http_async_client.aclose()  # type: ignore[attr-defined]

    def _build(self, model_id: str) -> BaseChatModel:
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as exc:
            raise UserError("--provider openai needs the openai extra: pip install 'orchestrate[openai]'") from exc
        import httpx

        timeout = self.settings.request_timeout_s
        options: dict[str, Any] = {
            "model": model_id, "max_tokens": self.settings.max_tokens, "streaming": self.streaming,
            "max_retries": self.max_retries, "timeout": timeout, "stream_usage": True,
            "http_async_client": httpx.AsyncClient(timeout=timeout),
        }  # fmt: skip
        return ChatOpenAI(**options)  # reads OPENAI_API_KEY and OPENAI_BASE_URL itself


@dataclass(frozen=True)
class FixedProvider:
    """One chat model for every agent: for tests and for callers who bring their own model."""

    model: BaseChatModel
    errors: tuple[type[BaseException], ...] = ()
    name: str = "custom"
    model_ids: Mapping[str, str] = field(default_factory=dict)
    """Alias -> the id calls are recorded and priced as, when the response names no model (default: the
    alias itself, which the price table does not price)."""

    def chat_model(self, model: str) -> BaseChatModel:
        return self.model

    def model_id(self, model: str) -> str:
        return self.model_ids.get(model, model)


def select_provider(
    requested: ProviderName | None, *, settings: Settings, env: Mapping[str, str] | None = None
) -> tuple[ModelProvider, str]:
    """The provider for a run and one line saying why it was chosen."""
    env = os.environ if env is None else env
    has_key = bool(env.get("ANTHROPIC_API_KEY"))
    if requested == "anthropic" or (requested is None and has_key):
        if not has_key:
            raise UserError("--provider anthropic needs ANTHROPIC_API_KEY in the environment")
        why = "--provider anthropic" if requested else "ANTHROPIC_API_KEY is set"
        return AnthropicProvider(settings), f"provider: anthropic ({why})"
    if requested == "openai":
        if not env.get("OPENAI_API_KEY"):
            raise UserError(
                "--provider openai needs OPENAI_API_KEY in the environment (any value for a server that "
                "checks none, e.g. Ollama) and OPENAI_BASE_URL for a server other than OpenAI's"
            )
        where = env.get("OPENAI_BASE_URL") or "api.openai.com"
        return OpenAIProvider.from_env(env, settings=settings), f"provider: openai ({where})"
    if importlib.util.find_spec("llama_cpp") is None:
        raise UserError(
            "no ANTHROPIC_API_KEY and no local runtime: run `orchestrate models engine` (builds llama.cpp for any "
            "x86-64 CPU with AVX2, ~7 min once) and `orchestrate models pull`, or set ANTHROPIC_API_KEY"
        )
    from orchestrator.local import LocalProvider  # deferred: llama-cpp is heavy

    why = "--provider local" if requested else "no ANTHROPIC_API_KEY set"
    return LocalProvider.from_env(env), f"provider: local models ({why})"
