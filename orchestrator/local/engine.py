"""The llama boundary: the one-method `LlamaLike` protocol (`llama_cpp.Llama` satisfies it, tests pass
a scripted object), `LocalEngine` around one loaded model (lazy load, lock, loop guard, logging, llama.cpp's
refusals as `LocalModelError`), and `load_llama`, which loads a GGUF file with a status line on stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

from rich.console import Console
from rich.text import Text

from orchestrator.errors import ModelCallError
from orchestrator.local.kv_states import KvStates, StatefulLlama, conversation_key
from orchestrator.local.loops import LOOP_STOPPED, LoopGuard
from orchestrator.local.probe import cached_verdict, ensure_engine_works
from orchestrator.logs import get_logger

__all__ = [
    "LlamaLike",
    "LocalEngine",
    "LocalModelError",
    "load_llama",
    "usage_of",
]

log = get_logger(__name__)

N_CTX = 4096


class LocalModelError(ModelCallError):
    """A local model call failed: llama.cpp refused it (e.g. context overflow) or its output was unusable."""


class LlamaLike(Protocol):
    """The whole llama boundary: `llama_cpp.Llama` satisfies it, tests pass a scripted object."""

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]: ...


def usage_of(response: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) of one completion; zeros when the backend reports none."""
    usage = response.get("usage") or {}
    return int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))


class LocalEngine:
    """One loaded model: loads lazily on first use, serialises calls (a `Llama` is not thread-safe),
    keeps each conversation's KV cache across switches (kv_states.py), turns llama.cpp's refusals into
    `LocalModelError`, and logs every call."""

    def __init__(self, name: str, load: Callable[[], LlamaLike]) -> None:
        self.name = name
        self._load = load
        self._llama: LlamaLike | None = None
        self._lock = threading.Lock()
        self.kv_states = KvStates()

    @classmethod
    def of(cls, name: str, llama: LlamaLike) -> LocalEngine:
        """An engine over an already-built llama object (tests, benchmarks)."""
        return cls(name, lambda: llama)

    def complete(self, step: str, request: dict[str, Any], *, stop_loops: bool = False) -> dict[str, Any]:
        """One blocking completion, under this model's lock. `stop_loops` (free text only: a grammar
        would refuse the forced end) ends the generation when it starts looping, marking the response."""
        with self._lock:
            llama = self._loaded()
            eos = getattr(llama, "token_eos", None)
            guard = LoopGuard(int(eos())) if stop_loops and callable(eos) else None
            started = time.perf_counter()
            try:
                if hasattr(llama, "save_state"):  # a real llama.cpp context (a scripted one has no KV cache)
                    key = conversation_key(request.get("messages", []))
                    self.kv_states.switch_to(cast(StatefulLlama, llama), key)
                if guard is None:
                    response = llama.create_chat_completion(**request)
                else:
                    response = llama.create_chat_completion(**request, logits_processor=[guard])
            except (ValueError, RuntimeError) as exc:  # llama-cpp-python's refusals, e.g. context overflow
                raise LocalModelError(f"{self.name}: {exc}") from exc
            seconds = time.perf_counter() - started
        if guard is not None and guard.tripped:
            response = {**response, LOOP_STOPPED: True}
            log.info("local_loop_stopped", model=self.name, step=step)
        prompt, output = usage_of(response)
        log.info(
            "local_completion",
            model=self.name,
            step=step,
            input_tokens=prompt,
            output_tokens=output,
            seconds=round(seconds, 3),
        )
        return response

    def _loaded(self) -> LlamaLike:
        if self._llama is None:
            try:
                self._llama = self._load()
            except (ValueError, RuntimeError, OSError) as exc:
                raise LocalModelError(f"cannot load local model {self.name}: {exc}") from exc
        return self._llama


@contextlib.contextmanager
def _status_line(message: str) -> Iterator[None]:
    """A rich status line on stderr that survives llama.cpp's loading, which points fd 2 (and
    sys.stderr) at /dev/null while verbose=False: the console writes to a duplicate of the real fd."""
    try:
        stream: TextIO = os.fdopen(os.dup(sys.stderr.fileno()), "w")
    except (OSError, ValueError):  # stderr without a file descriptor (captured): plain console
        with Console(stderr=True, markup=False).status(Text(message)):
            yield
        return
    with stream, Console(file=stream, markup=False).status(Text(message)):  # Text: a file name is not markup
        yield


def load_llama(path: Path, n_ctx: int = N_CTX) -> LlamaLike:
    """Load a GGUF file with llama.cpp's own chatter silenced and a status line on stderr instead. The
    first load of a file with a given build is tried in a child process first (`probe`): a build that
    would crash this process raises `EngineUnusableError` instead."""
    probing = cached_verdict(path) is None
    with _status_line(f"Checking the local engine with {path.name}…") if probing else contextlib.nullcontext():
        ensure_engine_works(path)
    from llama_cpp import Llama  # deferred: loading the native library costs time, and only this needs it

    started = time.perf_counter()
    with _status_line(f"Loading local model {path.name}…"):
        llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 1, verbose=False)
    log.info("model_loaded", model=path.name, seconds=round(time.perf_counter() - started, 3))
    # Llama's create_chat_completion spells out every keyword; we only rely on the kwargs-to-dict shape.
    return cast(LlamaLike, llama)
