"""The replay's model provider: chat models that answer from a `Recording` by request fingerprint (the
same hash the run recorded) and never open a connection, unless `--from-step` sends later calls to a live
provider."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, messages_from_dict
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import PrivateAttr

from orchestrator.errors import RunError
from orchestrator.graphs.context import current_context
from orchestrator.graphs.model_call import request_fingerprint
from orchestrator.providers import ModelProvider
from orchestrator.replay.recording import Divergence, Recording, ReplayDivergence, difference, recorded_request
from orchestrator.run_store import CallRecord

__all__ = ["ReplayChatModel", "ReplayProvider", "recorded_model_ids", "recorded_provider_name"]


def _tool_choice(choice: Any, provider: str) -> Any:
    """Bound `tool_choice` the way the recording's provider binds it (ChatAnthropic normalises to dicts),
    so the replayed request fingerprints exactly like the recorded one."""
    if provider != "anthropic" or choice is None or isinstance(choice, dict):
        return dict(choice) if isinstance(choice, dict) else choice
    return {"type": choice} if choice in ("any", "auto") else {"type": "tool", "name": choice}


def _reply(call: CallRecord) -> AIMessage:
    message = messages_from_dict([json.loads(call.response)])[0]
    if not isinstance(message, AIMessage):
        raise RunError(f"recorded step {call.agent}/{call.purpose} holds a {type(message).__name__}, not a reply")
    return message.model_copy(update={"id": None})


class ReplayChatModel(BaseChatModel):
    """A chat model that answers from a `Recording`; never opens a connection. With a live fallback
    (`--from-step`), requests the recording may not answer go to that provider's model instead."""

    alias: str
    """The agent file's model value ("opus", "sonnet", ...), part of the fingerprint."""
    provider_name: str = "anthropic"
    workspace: str = ""
    _recording: Recording = PrivateAttr()
    _live: Callable[[], BaseChatModel] | None = PrivateAttr(default=None)

    def __init__(self, *, recording: Recording, live: Callable[[], BaseChatModel] | None = None, **data: Any) -> None:
        super().__init__(**data)
        self._recording = recording
        self._live = live

    @property
    def _llm_type(self) -> str:
        return "orchestrate-replay"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        bound: dict[str, Any] = {"tools": list(tools), **kwargs}
        if tool_choice is not None:
            bound["tool_choice"] = _tool_choice(tool_choice, self.provider_name)
        return self.bind(**bound)

    def _lookup(
        self, messages: list[BaseMessage], kwargs: Mapping[str, Any], metadata: Mapping[str, Any]
    ) -> AIMessage | None:
        """The recorded reply, or None when this call goes live; raises ReplayDivergence otherwise."""
        branch = current_context().branch_workspace  # a writing delegation sees its own branch as its workspace
        workspace = str(branch) if branch is not None else self.workspace
        text, digest = request_fingerprint(self.bind(**kwargs), messages, model=self.alias, workspace=workspace)
        step, call, known = self._recording.take(digest)
        if call is not None:
            return _reply(call)
        if known:
            return None
        divergence = self._divergence(step, json.loads(text), metadata)
        if self._live is None:
            raise ReplayDivergence(divergence)
        self._recording.count_live()
        return None

    def _divergence(self, step: int, request: Mapping[str, Any], metadata: Mapping[str, Any]) -> Divergence:
        agent = str(metadata.get("orchestrate_agent", "?"))
        purpose, delegation = str(metadata.get("orchestrate_purpose", "?")), current_context().delegation
        seq = self._recording.closest(agent, purpose, delegation, request)
        what = "no recorded call of this agent is left" if seq is None else difference(
            recorded_request(self._recording.calls[seq]), request
        )  # fmt: skip
        return self._recording.note(Divergence(step, agent, purpose, delegation, seq, what))

    def _live_model(self, kwargs: Mapping[str, Any]) -> Runnable[LanguageModelInput, Any]:
        assert self._live is not None
        model = self._live()
        tools = kwargs.get("tools")
        return model.bind_tools(tools, tool_choice=kwargs.get("tool_choice")) if tools else model

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        metadata = run_manager.metadata if run_manager else {}
        reply = self._lookup(messages, kwargs, metadata)
        if reply is None:
            reply = self._live_model(kwargs).invoke(messages, {"metadata": dict(metadata)})
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        metadata = run_manager.metadata if run_manager else {}
        reply = self._lookup(messages, kwargs, metadata)
        if reply is None:
            reply = await self._live_model(kwargs).ainvoke(messages, {"metadata": dict(metadata)})
        return ChatResult(generations=[ChatGeneration(message=reply)])


@dataclass
class ReplayProvider:
    """A `ModelProvider` whose models answer from a recording. `name` must be the recorded provider's
    name (it shapes the prompts: Claude gets cache breakpoints), and `model_ids` maps the agent files'
    model values to the recorded model ids (what the ledger prices)."""

    recording: Recording
    workspace: str
    name: str = "anthropic"
    model_ids: Mapping[str, str] = field(default_factory=dict)
    live: ModelProvider | None = None
    """Where calls from `recording.from_step` on (and unanswerable ones) go; None: nowhere, ever."""
    _models: dict[str, ReplayChatModel] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        return self.live.errors if self.live is not None else ()

    def chat_model(self, model: str) -> BaseChatModel:
        if model not in self._models:
            live = (lambda: self.live.chat_model(model)) if self.live is not None else None  # type: ignore[union-attr]
            self._models[model] = ReplayChatModel(
                alias=model, provider_name=self.name, workspace=self.workspace, recording=self.recording, live=live
            )
        return self._models[model]

    def model_id(self, model: str) -> str:
        if self.live is not None:
            return self.live.model_id(model)
        return self.model_ids.get(model, model)


def recorded_provider_name(calls: Sequence[CallRecord], options: Mapping[str, Any]) -> str:
    """Which provider the run used: Claude requests carry prompt-cache breakpoints; else the recorded flag."""
    if any('"cache_control"' in call.request for call in calls):
        return "anthropic"
    return str(options.get("provider") or "local")


def recorded_model_ids(calls: Sequence[CallRecord]) -> dict[str, str]:
    return {str(recorded_request(call).get("model")): call.model for call in calls}
