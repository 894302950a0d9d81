"""The one fake chat model of the test suite: strict, scripted, and safe under concurrency.

Like openai-agents' `ScriptedModel`, it holds a list of replies and fails loudly on a call nobody
scripted and (via `assert_complete`) on replies nobody asked for. Like pydantic-ai's `FunctionModel`, a
reply may be computed from the call. Because parallel junior branches call the model in no fixed order,
each reply may carry a `when` predicate: a call takes the first unused reply whose predicate accepts it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import PrivateAttr

from orchestrator.config import CLAUDE_MODELS
from orchestrator.providers import FixedProvider

__all__ = ["CLAUDE_LIKE", "Call", "Reply", "ScriptError", "ScriptedModel", "ai", "tool_call"]

_ids = itertools.count(1)


class ScriptError(AssertionError):
    """A call nobody scripted, or scripted replies nobody used."""


@dataclass(frozen=True)
class Call:
    """One recorded model call."""

    messages: list[BaseMessage]
    tools: list[dict[str, Any]]
    tool_choice: str | None
    metadata: dict[str, Any]

    @property
    def tool_names(self) -> list[str]:
        return [str(t.get("name")) for t in self.tools]

    @property
    def agent(self) -> str | None:
        """The agent the graph says is calling (from the run config's metadata)."""
        value = self.metadata.get("orchestrate_agent")
        return str(value) if value is not None else None

    @property
    def purpose(self) -> str | None:
        """Why the graph calls: "turn", "review" or "route"."""
        value = self.metadata.get("orchestrate_purpose")
        return str(value) if value is not None else None

    @property
    def system(self) -> str:
        return "\n".join(m.text for m in self.messages if isinstance(m, SystemMessage))

    @property
    def first_human(self) -> str:
        return next((m.text for m in self.messages if isinstance(m, HumanMessage)), "")

    @property
    def last(self) -> BaseMessage:
        return self.messages[-1]

    @property
    def tool_results(self) -> list[ToolMessage]:
        return [m for m in self.messages if isinstance(m, ToolMessage)]

    def describe(self) -> str:
        last = self.last.text[:300].replace("\n", " ")
        return (
            f"agent={self.agent} purpose={self.purpose} tools={self.tool_names} "
            f"tool_choice={self.tool_choice} messages={len(self.messages)} last={type(self.last).__name__}: {last!r}"
        )


Responder = AIMessage | BaseException | Callable[[Call], AIMessage]


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a message, an exception to raise, or a function of the call."""

    respond: Responder
    when: Callable[[Call], bool] | None = None
    label: str = ""

    def accepts(self, call: Call) -> bool:
        return self.when is None or self.when(call)

    def produce(self, call: Call) -> AIMessage:
        if isinstance(self.respond, BaseException):
            raise self.respond
        message = self.respond if isinstance(self.respond, AIMessage) else self.respond(call)
        return _with_usage(message, call)


def tool_call(name: str, args: dict[str, Any] | None = None, *, id: str | None = None) -> ToolCall:
    """A tool call as a model would emit it."""
    return ToolCall(name=name, args=args or {}, id=id or f"call_{next(_ids)}", type="tool_call")


def ai(text: str = "", *calls: ToolCall) -> AIMessage:
    """An assistant message with optional tool calls."""
    return AIMessage(content=text, tool_calls=list(calls))


def _with_usage(message: AIMessage, call: Call) -> AIMessage:
    """Deterministic token counts (chars/4) so usage accounting is exercised, never zero."""
    if message.usage_metadata:
        return message
    prompt = sum(len(m.text) for m in call.messages) // 4 + 1
    output = len(message.text) // 4 + 1 + 10 * len(message.tool_calls)
    usage = {"input_tokens": prompt, "output_tokens": output, "total_tokens": prompt + output}
    return message.model_copy(update={"usage_metadata": usage})


class ScriptedModel(BaseChatModel):
    """A chat model that answers from a script and records every call."""

    script: Sequence[Reply] = ()
    _used: list[bool] = PrivateAttr(default_factory=list)
    _calls: list[Call] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, script: Sequence[Reply] = (), **kwargs: Any) -> None:
        super().__init__(script=list(script), **kwargs)
        self._used = [False] * len(self.script)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[Call]:
        return list(self._calls)

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=list(tools), tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(messages, run_manager.metadata if run_manager else {}, kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """On the caller's loop, as a real async client answers (LangChain's default runs `_generate` in a
        worker thread, which would charge a thread hop per call to the graph's overhead)."""
        return self._answer(messages, run_manager.metadata if run_manager else {}, kwargs)

    def _answer(self, messages: list[BaseMessage], metadata: dict[str, Any], kwargs: dict[str, Any]) -> ChatResult:
        call = Call(list(messages), list(kwargs.get("tools") or []), kwargs.get("tool_choice"), dict(metadata))
        reply = self._take(call)
        return ChatResult(generations=[ChatGeneration(message=reply.produce(call))])

    def _take(self, call: Call) -> Reply:
        with self._lock:
            self._calls.append(call)
            for index, reply in enumerate(self.script):
                if not self._used[index] and reply.accepts(call):
                    self._used[index] = True
                    return reply
        raise ScriptError(f"unexpected model call #{len(self._calls)}: {call.describe()}\n{self._left()}")

    def _left(self) -> str:
        left = [r.label or repr(r.respond)[:80] for r, used in zip(self.script, self._used, strict=True) if not used]
        return f"unused replies: {left}" if left else "no replies left"

    def restart(self, script: Sequence[Reply]) -> None:
        """A new script, and no calls yet, on this same model: as a provider's cached client serves one run
        after another (LangChain computes a model's serialized form once per instance, for its callbacks)."""
        with self._lock:
            self.script, self._used, self._calls = list(script), [False] * len(script), []

    def assert_complete(self) -> None:
        """Raise if any scripted reply was never used."""
        if not all(self._used):
            raise ScriptError(f"{self._used.count(False)} scripted replies never used; {self._left()}")


CLAUDE_LIKE = partial(FixedProvider, model_ids=CLAUDE_MODELS)
"""A FixedProvider whose scripted model stands in for Claude: its calls are recorded and priced as the
Claude ids of the aliases (a plain FixedProvider's are unpriced, as any non-Claude model's are)."""
