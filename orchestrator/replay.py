"""Replay a recorded run through the current graph, answering every model call from the recording.

Why: a recorded run is a regression test. Replaying it after a code change (a prompt, a tool, a node)
shows whether the graph still asks exactly the questions it asked then; the first request that has no
recorded answer is the first point where behaviour diverged, and it is reported by step, agent and
purpose with what differs from the closest recorded request. No network client is ever built: the
replay provider's chat models only look answers up (by `request_fingerprint`, the same hash the run
recorded), unless `from_step`/`live` explicitly send later calls to a real provider.

Tools run for real, in a scratch workspace by default (an empty temporary directory). A run whose tools
read files that existed before it started diverges there unless it is replayed in a workspace holding
the same files (`workspace=`). Routing is recomputed offline and checked against the recorded route; a
route that the tie-break model decided is taken from the recording (that call is not recorded).
Permission asks are answered as they were answered in the recording.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, messages_from_dict
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import PrivateAttr

from orchestrator.agent_spec import AgentSpec
from orchestrator.config import Settings
from orchestrator.errors import RunError, UserError
from orchestrator.graphs.model_call import request_fingerprint
from orchestrator.graphs.permission_gate import Answer, PermissionRequest
from orchestrator.ledger import DELEGATION, Budget
from orchestrator.loader import AgentSet, load_agents
from orchestrator.models import ModelProvider
from orchestrator.router import Method, RouteDecision, Router, build_router
from orchestrator.run_store import CallRecord, RunRecord, RunStore, open_store
from orchestrator.runner import AskHandler, Orchestrator
from orchestrator.tools.permissions import PermissionPolicy

__all__ = [
    "Divergence",
    "Recording",
    "ReplayChatModel",
    "ReplayDivergence",
    "ReplayProvider",
    "ReplayReport",
    "areplay",
    "recorded_provider_name",
]

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


# ---- the recording: which answers exist, which were used ----


def _request(call: CallRecord) -> dict[str, Any]:
    value = json.loads(call.request)
    return value if isinstance(value, dict) else {}


def _excerpt(a: str, b: str) -> tuple[str, str]:
    """The two texts around their first differing character."""
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, at - 20)
    return _cut(a, start), _cut(b, start)


def _cut(text: str, start: int) -> str:
    return ("…" if start else "") + text[start : start + _EXCERPT] + ("…" if len(text) > start + _EXCERPT else "")


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("data", {}).get("content")
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else [content]
    return "\n".join(
        b["text"] if isinstance(b, dict) and "text" in b else json.dumps(b, sort_keys=True) for b in blocks
    )


def _message_difference(index: int, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    role = new.get("type", "?")
    if old.get("type") != role:
        return f"message {index} is a {role} message; the recording has a {old.get('type')} message there"
    old_text, new_text = _message_text(old), _message_text(new)
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
            prefix = _common_prefix(_request(call).get("messages", []), messages)
            return call.purpose == purpose, call.delegation == delegation, prefix, -seq

        return max(candidates, key=score)


# ---- the chat model and the provider ----


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
        text, digest = request_fingerprint(self.bind(**kwargs), messages, model=self.alias, workspace=self.workspace)
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
        purpose, delegation = str(metadata.get("orchestrate_purpose", "?")), DELEGATION.get()
        seq = self._recording.closest(agent, purpose, delegation, request)
        what = "no recorded call of this agent is left" if seq is None else difference(
            _request(self._recording.calls[seq]), request
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


def _model_ids(calls: Sequence[CallRecord]) -> dict[str, str]:
    return {str(_request(call).get("model")): call.model for call in calls}


# ---- routing and permission answers as recorded ----


@dataclass(frozen=True)
class _ReplayRouter(Router):
    """The offline router, checked against the recorded decision (a tie-break decision is taken as recorded:
    the tie-break call is not part of the recording)."""

    recorded: RouteDecision | None = None
    recording: Recording | None = None

    async def aroute(self, task: str) -> RouteDecision:
        recorded = self.recorded
        if recorded is not None and recorded.method == "tiebreak-model":
            return recorded
        decision = self.route(task)
        if recorded is not None and decision.agent != recorded.agent:
            what = (
                f"routed to {decision.agent} ({decision.method}, {decision.confidence:.2f}); recorded: {recorded.agent}"
            )
            divergence = Divergence(None, decision.agent, "route", "", None, what)
            raise ReplayDivergence(self.recording.note(divergence) if self.recording else divergence)
        return decision


def _recorded_route(events: Sequence[tuple[float, Mapping[str, Any]]]) -> RouteDecision | None:
    event = next((e for _, e in events if e.get("event") == "route"), None)
    if event is None:
        return None
    method = cast(Method, event.get("method") or "classifier")
    return RouteDecision(str(event.get("agent")), float(event.get("confidence", 0.0)), str(event.get("detail")), method)


def _router(agents: Mapping[str, AgentSpec], route: RouteDecision | None, recording: Recording) -> Router:
    base = build_router(agents)
    copied = {f.name: getattr(base, f.name) for f in fields(base)}
    return _ReplayRouter(**{**copied, "tiebreak": None}, recorded=route, recording=recording)


def _recorded_answers(events: Sequence[tuple[float, Mapping[str, Any]]]) -> AskHandler:
    """Answer permission asks as the user answered them in the recorded run (unknown asks: deny)."""
    answers: dict[str, deque[str]] = {}
    for _, event in events:
        if event.get("event") == "permission":
            summary, _, answer = str(event.get("detail", "")).rpartition(": ")
            answers.setdefault(summary, deque()).append(answer)

    async def ask(request: PermissionRequest) -> Answer:
        queue = answers.get(request["summary"])
        answer = queue.popleft() if queue else "deny"
        return cast(Answer, answer if answer in ("allow", "deny", "always") else "deny")

    return ask


# ---- the replay itself ----


@dataclass(frozen=True)
class ReplayReport:
    """What a replay found: the first divergence (if any), the replayed run, recorded calls never used."""

    source: str
    run_id: str
    status: str
    final: str
    recorded_final: str | None
    replayed: int
    live: int
    unused: tuple[int, ...]
    divergence: Divergence | None
    workspace: str
    scratch: bool = True
    """The workspace was a temporary directory, removed after the replay."""
    error: str | None = None

    @property
    def same(self) -> bool:
        """The graph behaved as recorded: every answer used, nothing new asked, the same final answer."""
        return self.divergence is None and not self.unused and self.final == (self.recorded_final or "")

    def lines(self) -> list[str]:
        head = f"replay of {self.source} as run {self.run_id}: {self.status}"
        counts = f"{self.replayed} calls answered from the recording, {self.live} sent to the live provider"
        out = [head, counts, f"workspace: {self.workspace}" + (" (scratch, removed)" if self.scratch else "")]
        if self.divergence is not None:
            out.append(self.divergence.describe())
        if self.unused:
            out.append(f"recorded calls never used: steps {', '.join(map(str, self.unused))}")
        if self.divergence is None and self.final != (self.recorded_final or ""):
            out.append("the final answer differs from the recorded one")
        out.append("same behaviour as recorded" if self.same else "behaviour differs from the recording")
        return out

    def to_dict(self) -> dict[str, Any]:
        divergence = None if self.divergence is None else {
            **{f.name: getattr(self.divergence, f.name) for f in fields(self.divergence)},
            "description": self.divergence.describe(),
        }  # fmt: skip
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "divergence"}
        return {**plain, "unused": list(self.unused), "divergence": divergence, "same": self.same}


@asynccontextmanager
async def _workspace(given: Path | str | None) -> AsyncIterator[Path]:
    """The given workspace, or a fresh empty one removed afterwards."""
    if given is not None:
        path = Path(given).resolve()
        if not path.is_dir():
            raise UserError(f"--workspace {given} is not a directory")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="orchestrate-replay-") as scratch:
        yield Path(scratch).resolve()


def _check_steps(calls: Sequence[CallRecord], from_step: int | None, live: ModelProvider | None) -> None:
    if not calls:
        raise UserError("the run recorded no model calls: there is nothing to replay")
    if from_step is None:
        return
    if live is None:
        raise UserError("--from-step needs --provider (where the calls from that step on go)")
    if not 0 <= from_step <= len(calls):
        raise UserError(f"--from-step must be between 0 and {len(calls)} (the run's recorded calls), not {from_step}")


@dataclass(frozen=True)
class _Setup:
    """What the replayed orchestrator is built from (the recorded run's, unless the caller overrides)."""

    agents: Mapping[str, AgentSpec]
    settings: Settings | None
    permissions: PermissionPolicy | None
    live: ModelProvider | None
    provider_name: str | None


def _orchestrator(
    record: RunRecord, store: RunStore, setup: _Setup, recording: Recording, workspace: Path
) -> Orchestrator:
    events = store.events(record.run_id)
    name = setup.provider_name or recorded_provider_name(recording.calls, record.options)
    provider = ReplayProvider(recording, str(workspace), name, _model_ids(recording.calls), setup.live)
    kept = {k: v for k, v in record.options.items() if k not in ("agent", "max_cost", "max_delegation_cost")}
    options = {**kept, "workspace": str(workspace), "replay_of": record.run_id, "from_step": recording.from_step}
    return Orchestrator(
        setup.agents, provider=provider, workspace=workspace, settings=setup.settings, permissions=setup.permissions,
        router=_router(setup.agents, _recorded_route(events), recording), ask=_recorded_answers(events),
        db=store.target, options=options,
    )  # fmt: skip


async def areplay(
    run_id: str,
    *,
    db: Path | str | None = None,
    agents: AgentSet | Mapping[str, AgentSpec] | None = None,
    workspace: Path | str | None = None,
    settings: Settings | None = None,
    permissions: PermissionPolicy | None = None,
    from_step: int | None = None,
    live: ModelProvider | None = None,
    provider_name: str | None = None,
) -> ReplayReport:
    """Re-execute a recorded run with its recorded answers (zero API calls) and report where it diverges.

    `agents`, `settings`, `permissions`: the graph to replay through (default: the run's agent dirs,
    settings from the environment, default permissions); change them to test a change. `from_step=N`
    with `live=`: recorded steps 0..N-1 answer from the recording, later calls go to `live`."""
    store = open_store(db)
    try:
        record, calls = store.run(run_id), store.calls(run_id)
        _check_steps(calls, from_step, live)
        loaded = agents if agents is not None else load_agents(record.options.get("agents_dirs") or ())
        specs = dict(loaded.agents if isinstance(loaded, AgentSet) else loaded)
        setup = _Setup(specs, settings, permissions, live, provider_name)
        return await _replay(record, store, setup, Recording(calls, from_step=from_step), workspace)
    finally:
        store.close()


async def _replay(
    record: RunRecord, store: RunStore, setup: _Setup, recording: Recording, workspace: Path | str | None
) -> ReplayReport:
    budget = Budget(record.options.get("max_cost"), record.options.get("max_delegation_cost"))
    async with _workspace(workspace) as place:
        orchestrator = _orchestrator(record, store, setup, recording, place)
        try:
            result = await orchestrator.arun(record.task, agent=record.options.get("agent"), budget=budget)
        finally:
            await asyncio.to_thread(orchestrator.store.close)
    return ReplayReport(
        source=record.run_id, run_id=result.run_id, status=result.status, final=result.final,
        recorded_final=record.final, replayed=len(recording.used), live=recording.live, unused=recording.unused(),
        divergence=recording.divergence, workspace=str(place), scratch=workspace is None, error=result.error,
    )  # fmt: skip
