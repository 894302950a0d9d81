"""What a tool is: a name, a description, a pydantic argument model and an async function.

Tools are data (`ToolSpec`); running them lives in the graph's tool node, which builds a `ToolContext`
for the calling agent, awaits `spec.run(args, ctx)`, and turns a raised `ToolError` into tool-result text
the model can act on. The argument model is validated at the edge (the model's raw JSON); a validation
error also goes back to the model as text that names the argument.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from orchestrator.errors import ToolError

__all__ = ["PATH_RULE", "Resolver", "ToolContext", "ToolError", "ToolSpec", "compact_schema", "in_thread"]

Resolver = Callable[[str], Awaitable[Sequence[str]]]
"""Host name -> IP address strings. Injectable so tests can point a public-looking name at 127.0.0.1."""

ArgsT = TypeVar("ArgsT", bound=BaseModel)

PATH_RULE = "Relative to the workspace root, or absolute inside it."
"""The file_path rule of every file tool, in the words the model reads."""


@dataclass
class ToolContext:
    """Everything a tool may touch, for one agent context (one agent's conversation)."""

    workspace: Path
    """Resolved root every path must stay inside."""
    files_read: set[str] = field(default_factory=set)
    """Workspace-relative paths this agent context has Read (Write may overwrite only these)."""
    files_changed: list[str] = field(default_factory=list)
    """Workspace-relative paths this agent context created or modified, in order (review evidence)."""
    summarize: Callable[[str, str], Awaitable[str]] | None = None
    """Cheap-model helper WebFetch uses: (page_markdown, prompt) -> answer. None where unavailable."""
    provider: str = "anthropic"
    """Name of the model provider serving the agent ("anthropic", "local", "scripted")."""
    file_versions: dict[str, int] = field(default_factory=dict)
    """Workspace-relative path -> st_mtime_ns when this context last Read or wrote it. Write and Edit
    refuse a file that changed since (another agent, a command or the user touched it)."""
    allow_private_hosts: frozenset[str] = frozenset()
    """Host names (or IP literals) WebFetch may reach even though they resolve to loopback, private,
    link-local or otherwise non-public addresses. Empty by default: only public addresses."""
    resolve_host: Resolver | None = None
    """How WebFetch turns a host name into addresses; None means the system resolver."""
    sandbox: bool = True
    """Run Bash under bubblewrap (tools/bash_sandbox.py); False only when the user opted out."""
    sandbox_network: bool = False
    """Let sandboxed commands reach the network."""


def in_thread(work: Callable[[ArgsT, ToolContext], str]) -> Callable[[ArgsT, ToolContext], Awaitable[str]]:
    """A tool's `run` for synchronous file work: done in a worker thread, so the event loop serves other
    runs meanwhile (LangGraph Server refuses blocking calls on it)."""

    async def run(args: ArgsT, ctx: ToolContext) -> str:
        return await asyncio.to_thread(work, args, ctx)

    return run


@dataclass(frozen=True)
class ToolSpec(Generic[ArgsT]):
    """One tool as the model sees it (name, description, JSON schema) and as we run it."""

    name: str
    description: str
    args: type[ArgsT]
    run: Callable[[ArgsT, ToolContext], Awaitable[str]]

    def schema(self) -> dict[str, Any]:
        """The tool in Anthropic's format, which every langchain-core chat model's bind_tools accepts."""
        return {"name": self.name, "description": self.description, "input_schema": _input_schema(self.args)}


@functools.cache
def _frozen_input_schema(args: type[BaseModel]) -> str:
    return json.dumps(compact_schema(args.model_json_schema()))


def _input_schema(args: type[BaseModel]) -> dict[str, Any]:
    """Made once per argument model (pydantic takes ~1.5 ms per schema, and every turn offers them all);
    each caller gets its own copy to change."""
    schema: dict[str, Any] = json.loads(_frozen_input_schema(args))
    return schema


def _unread(key: str, value: Any) -> bool:
    """Schema keys that change nothing the model does: titles repeat the names, `default: null` says what
    leaving an argument out says, and a closed object (`additionalProperties: false`) is enforced anyway:
    an unknown argument comes back to the model as a validation error that names it. A schema for the
    extra properties of a mapping is a value rule, and stays."""
    return key == "title" or (key == "default" and value is None) or (key == "additionalProperties" and value is False)


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema without what the model does not need: titles, `additionalProperties`, the
    model's docstring, and the `null` branch and `default: null` of optional arguments (leaving one out
    is how a model says "none"; validation still accepts null). Every rule that constrains a value stays."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk_properties(v) if k == "properties" else walk(v) for k, v in node.items() if not _unread(k, v)}
        branches = out.get("anyOf")
        if isinstance(branches, list) and {"type": "null"} in branches and len(branches) == 2:
            (kept,) = [b for b in branches if b != {"type": "null"}]
            del out["anyOf"]
            out = {**kept, **out}
        return out

    def walk_properties(properties: Any) -> Any:  # argument names are data, never schema keywords
        return {name: walk(node) for name, node in properties.items()} if isinstance(properties, dict) else properties

    compact: dict[str, Any] = walk(schema)
    compact.pop("description", None)
    return compact
