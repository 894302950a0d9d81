"""A langchain-core chat model over a local llama.cpp model, so the graph drives it exactly like Claude.

llama-cpp-python's free tool choice (`tool_choice="auto"`) does not work, while JSON-schema-constrained
output does. An agent turn is therefore a few small steps:

1. *choose*: a tiny grammar `{"action": <tool name> | "answer"}` picks the next step, after a
   `[Progress]` note of facts taken from the conversation (the tool calls so far and how they went; the
   files the request asks for and whether they were written): small models lose track of them otherwise;
2. *act*: either the chosen tool's arguments, constrained by its schema (every string and array bounded
   so small models cannot loop and the grammar stays small enough not to crash llama.cpp), its *body*
   (Write's content, Task's prompt) then written as plain text; or a bounded free-text answer.

A forced call (`tool_choice="<Name>"`, or one tool with "any") skips step 1. The favourite loops of small
models are broken in `run_turn` (a repeated call that succeeded becomes an answer, one that failed is
asked again without that tool), free text carries a repeat penalty and stops when it starts looping
(`LoopGuard`), and a request that names files to create (or review feedback to act on) is not answered
before a tool call since it has worked.

Prompts are rendered compactly (prompt processing runs at ~95 tok/s on two cores), tool traffic as a log
on the user side (models imitate rendered calls they see in their own turns), and the step instruction
always comes last, so llama.cpp reuses the KV cache of the shared prefix between steps and across turns.

Everything that builds requests or parses responses is a pure function; the llama boundary is the
one-method `LlamaLike` protocol, wrapped by `LocalEngine` (lock, lazy load, loop guard, logging).

Where to start reading: `chat` (`ChatLocalLlama`, `LocalProvider`), then `turn` (`run_turn`, the
protocol above). Below them, `steps` builds each step's request and parses its response, `render` renders
the conversation, `schema` bounds tool schemas, `loops` catches looping text, `engine` is the llama boundary
and `models` pulls, verifies and locates the GGUF files.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.local.chat import ChatLocalLlama, LocalProvider
    from orchestrator.local.engine import LocalModelError
    from orchestrator.local.gguf import MODELS, ModelSpec, ModelStatus, cache_path, list_models, pull, verify
    from orchestrator.local.steps import GenerationSettings

_HOMES = {
    "ChatLocalLlama": "chat",
    "LocalProvider": "chat",
    "LocalModelError": "engine",
    "GenerationSettings": "steps",
    **dict.fromkeys(("MODELS", "ModelSpec", "ModelStatus", "cache_path", "list_models", "pull", "verify"), "gguf"),
}
"""Where each public name lives. Loaded on first use: the Claude path imports one leaf of this package
(the policy's metadata key) and should not pay for the adapter."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "MODELS",
    "ChatLocalLlama",
    "GenerationSettings",
    "LocalModelError",
    "LocalProvider",
    "ModelSpec",
    "ModelStatus",
    "cache_path",
    "list_models",
    "pull",
    "verify",
]
