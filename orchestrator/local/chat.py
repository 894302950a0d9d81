"""The adapter's two public faces: `ChatLocalLlama`, a langchain-core chat model that runs each turn
through `run_turn`, and `LocalProvider`, the offline provider that maps agent model names to the local
senior and junior models, one shared engine per GGUF file.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

from orchestrator.errors import UserError
from orchestrator.local.engine import LlamaLike, LocalEngine, LocalModelError, load_llama
from orchestrator.local.gguf import JUNIOR, MODELS, SENIOR, locate
from orchestrator.local.render import PromptLimits
from orchestrator.local.schema import tool_defs
from orchestrator.local.steps import GenerationSettings
from orchestrator.local.turn import candidate_actions, run_turn
from orchestrator.logs import get_logger

__all__ = [
    "DEFAULT_ALIASES",
    "ChatLocalLlama",
    "LocalProvider",
]

log = get_logger(__name__)


# --- the chat model -------------------------------------------------------------------------------


class ChatLocalLlama(BaseChatModel):
    """A local llama.cpp model behind langchain-core's chat-model interface (see the package docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: LocalEngine
    model_name: str = "local"
    answer_max_tokens: int = GenerationSettings.answer_max_tokens
    tool_max_tokens: int = GenerationSettings.tool_max_tokens
    body_max_tokens: int = GenerationSettings.body_max_tokens
    temperature: float = GenerationSettings.temperature
    schema_budget: int = GenerationSettings.schema_budget
    keep_optional: bool = False
    """Offer optional tool arguments to the model too (off: small models misuse them)."""
    repeat_penalty: float = GenerationSettings.repeat_penalty
    seed: int = GenerationSettings.seed
    limits: PromptLimits = PromptLimits()

    @property
    def _llm_type(self) -> str:
        return "local-llama"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any langchain format) and a tool choice; an unknown forced name fails here."""
        defs = tool_defs(tools)
        candidate_actions(defs, tool_choice)
        return self.bind(tools=[d.as_anthropic() for d in defs], tool_choice=tool_choice, **kwargs)

    def _settings(self, stop: list[str] | None) -> GenerationSettings:
        return GenerationSettings(
            answer_max_tokens=self.answer_max_tokens,
            tool_max_tokens=self.tool_max_tokens,
            body_max_tokens=self.body_max_tokens,
            temperature=self.temperature,
            schema_budget=self.schema_budget,
            keep_optional=self.keep_optional,
            stop=tuple(stop or ()),
            repeat_penalty=self.repeat_penalty,
            seed=self.seed,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = tool_defs(kwargs.get("tools") or [])
        reply = run_turn(self.engine, messages, tools, kwargs.get("tool_choice"), self._settings(stop), self.limits)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Generation blocks for seconds: run it in a worker thread so the event loop stays free."""
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)


# --- the provider ---------------------------------------------------------------------------------

DEFAULT_ALIASES: dict[str, str] = {"opus": SENIOR.key, "sonnet": JUNIOR.key, "haiku": JUNIOR.key}
"""Claude model family -> local role: the planner/reviewer gets the bigger model."""


class LocalProvider:
    """The offline provider: agent model names -> chat models over the pulled (or user) GGUF files.
    One engine per file, so agents sharing a model share its weights, lock and KV cache."""

    name = "local"
    errors: tuple[type[BaseException], ...] = (LocalModelError,)

    def __init__(
        self,
        *,
        aliases: Mapping[str, str] | None = None,
        paths: Mapping[str, Path] | None = None,
        loader: Callable[[Path], LlamaLike] = load_llama,
    ) -> None:
        self._aliases = {**DEFAULT_ALIASES, **(aliases or {})}
        self._paths = dict(paths or {})
        self._loader = loader
        self._engines: dict[Path, LocalEngine] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalProvider:
        """The provider with its aliases overridden by ORCHESTRATE_LOCAL_OPUS / _SONNET / _HAIKU (senior or
        junior); the model files by ORCHESTRATE_LOCAL_SENIOR_MODEL / _JUNIOR_MODEL (see `locate`)."""
        env = os.environ if env is None else env
        aliases = {}
        for family in DEFAULT_ALIASES:
            variable = f"ORCHESTRATE_LOCAL_{family.upper()}"
            role = env.get(variable, "").strip().lower()
            if role and role not in MODELS:
                raise UserError(f"{variable}={env[variable]!r}: expected one of {', '.join(MODELS)}")
            if role:
                aliases[family] = role
        return cls(aliases=aliases)

    def role_for(self, model: str) -> str:
        """ "senior"/"junior" for an agent's model field: alias, role name, or Claude family substring."""
        key = model.strip().lower()
        if key in self._aliases:
            return self._aliases[key]
        if key in MODELS:
            return key
        family = next((f for f in ("opus", "sonnet", "haiku") if f in key), None)
        if family is not None:
            return self._aliases[family]
        log.warning("local_model_fallback", model=model, role=JUNIOR.key)
        return JUNIOR.key

    def chat_model(self, model: str) -> BaseChatModel:
        """A chat model for `model`; the file is located and verified now, loaded on first call."""
        role = self.role_for(model)
        path = locate(MODELS[role], self._paths.get(role))
        return ChatLocalLlama(engine=self._engine(path), model_name=f"local-{role}:{path.name}")

    def model_id(self, model: str) -> str:
        """What records and the price table name (a local model costs nothing: no Claude family in it)."""
        role = self.role_for(model)
        override = self._paths.get(role)
        return f"local-{role}:{override.name if override else MODELS[role].filename}"

    def _engine(self, path: Path) -> LocalEngine:
        key = path.resolve()
        with self._lock:
            if key not in self._engines:
                self._engines[key] = LocalEngine(path.name, lambda: self._loader(key))
            return self._engines[key]
