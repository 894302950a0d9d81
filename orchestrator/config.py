"""Run settings: plain frozen data with defaults, read from the environment once at the edge."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CLAUDE_MODELS", "Settings"]

CLAUDE_MODELS: Mapping[str, str] = {
    "opus": "claude-opus-4-6",
    "sonnet": "claude-sonnet-4-6",
    "haiku": "claude-haiku-4-5",
}
"""Current Claude model ids per alias; override with ORCHESTRATE_MODEL_OPUS / _SONNET / _HAIKU."""


@dataclass(frozen=True)
class Settings:
    """Knobs of a run. Every bound here exists so a misbehaving model cannot run forever."""

    max_revisions: int = 2
    """Review rounds that may ask for a revision; the result after the last one returns as it is."""
    max_depth: int = 2
    """How deep delegation may nest (the top agent is depth 0)."""
    max_turns: int = 20
    """Model turns per agent context; the next turn has no tools, and its tool calls (if a model makes
    any anyway) are dropped, so the agent finishes with a text answer."""
    max_parallel_tasks: int = 20
    """Task calls one turn may run (Claude Code's limit on concurrent subagents); calls past it get an
    error result saying so."""
    max_report_chars: int = 20_000
    """A delegated report longer than this reaches the delegating agent cut, the cut marked."""
    default_model: str = "sonnet"
    """What "inherit" means for the agent at the top of a run."""
    claude_models: Mapping[str, str] = field(default_factory=lambda: dict(CLAUDE_MODELS))
    max_tokens: int = 8192
    """Output cap per Claude call."""
    request_timeout_s: float = 120.0
    """Seconds one model request may take (per attempt; the SDK retries twice): a server that never
    answers fails the call in bounded time instead of hanging the run."""
    isolation: bool = True
    """Each delegation whose agent may write works in a branch of its own, merged back when approved
    (graphs/isolated.py); False: every delegation works in the main workspace."""
    branches_dir: Path | None = None
    """Where branches live (default: the per-user data directory's `branches`)."""
    merge_unapproved: bool = False
    """Merge a branch whose work was not approved too (`--merge unapproved`); by default it is kept, unmerged."""
    keep_branches: bool = False
    """Keep merged branches (`--keep-branches`); by default a branch is removed once it merged."""
    tiebreak_model: str | None = "haiku"
    """The model the router asks when it is unsure (offline: the local junior); None sends unsure tasks
    to the safe default without a model call."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        models = {alias: env.get(f"ORCHESTRATE_MODEL_{alias.upper()}", model) for alias, model in CLAUDE_MODELS.items()}
        return cls(claude_models=models, **overrides)  # type: ignore[arg-type]
