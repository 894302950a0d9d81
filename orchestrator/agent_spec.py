"""An agent definition: Claude Code's subagent format (Markdown + YAML frontmatter) as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AgentSpec:
    """One agent, as loaded from a Markdown file with frontmatter (field names after Claude Code's
    `AgentDefinition`). Running it lives in `orchestrator.graphs`."""

    name: str
    """Unique name, e.g. "senior-ml-engineer"; what `Task(subagent_type=...)` refers to."""
    description: str
    """When to use this agent; the router and the delegating agent read it."""
    prompt: str
    """The Markdown body: the agent's system prompt."""
    tools: tuple[str, ...] | None = None
    """Tools this agent may use (canonical names, e.g. "Read", "Task"); None means every tool we have."""
    model: str = "inherit"
    """"opus", "sonnet", "haiku", "inherit", or a full model id."""
    source: Path | None = None
    """The file it came from (None when built in code)."""
    extra: Mapping[str, object] = field(default_factory=dict)
    """Frontmatter keys we keep but do not use (color, permissionMode, ...)."""

    @property
    def can_delegate(self) -> bool:
        return self.tools is None or "Task" in self.tools
