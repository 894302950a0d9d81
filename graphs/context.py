"""What a run tells every node, carried by LangGraph's runtime context (`context_schema=RunContext`).

Its fields are the run's configuration, exactly what LangGraph Server's Studio renders, an assistant stores
and a run may override (`context={...}`); the CLI and the Python API build the same object. The run's
identity is its thread: the run id is the thread id. The delegate node hands its review branch a copy
with the delegation path extended, so every model call knows where in the delegation tree it happens.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.config import get_config
from langgraph.runtime import get_runtime
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from orchestrator.errors import UserError
from orchestrator.ledger import Budget
from orchestrator.tools.permission_rules import PermissionMode, parse_settings
from orchestrator.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from orchestrator.graphs.isolated import LazyBranch

__all__ = ["RunContext", "current_context", "thread_id"]

_THREAD_DIR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RunContext(BaseModel):
    """A run's configuration. Unset fields fall back to what the graph was built with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace_root: str | None = Field(
        None,
        description="Directory under which each thread works in its own directory <workspace_root>/<thread id>, "
        "created on first use.",
    )
    permission_mode: PermissionMode | None = Field(
        None,
        description="Claude Code's permission mode: default (edits and commands ask), acceptEdits, plan "
        "(read-only) or bypassPermissions. Unset: settings' permissions.defaultMode, else default.",
    )
    settings: dict[str, Any] | None = Field(
        None,
        description='Permission rules in Claude Code\'s settings JSON: {"permissions": {"allow": [...], "ask": '
        '[...], "deny": [...]}, "sandbox": {"enabled": true, "network": false}}.',
    )
    max_cost: float | None = Field(None, gt=0, allow_inf_nan=False, description="USD cap for the whole run.")
    max_delegation_cost: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="USD cap for any one delegation, with what it delegates."
    )
    max_revisions: int | None = Field(
        None, ge=0, le=10, description="Review rounds that may send a delegated result back for revision."
    )
    models: dict[str, str] = Field(
        default_factory=dict, description="Model alias (opus, sonnet, haiku) -> the model id the provider runs."
    )
    merge_unapproved: bool | None = Field(
        None, description="Merge a writing subagent's branch into the workspace even when its work was not approved."
    )
    keep_branches: bool | None = Field(
        None, description="Keep each subagent's branch (worktree or snapshot) after it merged."
    )

    _workspace: Path | None = PrivateAttr(None)
    _policy: PermissionPolicy | None = PrivateAttr(None)
    _delegation: str = PrivateAttr("")
    _branch: LazyBranch | None = PrivateAttr(None)

    def model_post_init(self, context: Any, /) -> None:
        if self.settings is not None or self.permission_mode is not None:
            rules = parse_settings(self.settings or {}, "context.settings")  # a bad rule fails the run's start
            self._policy = PermissionPolicy.of(rules, mode=self.permission_mode)

    @classmethod
    def local(
        cls, *, workspace: Path, policy: PermissionPolicy | None = None, budget: Budget | None = None
    ) -> RunContext:
        """The context of a run on this machine (the CLI, the Python API): one exact workspace directory and
        a policy already read from the settings files and flags."""
        budget = budget or Budget()
        context = cls(max_cost=budget.max_cost, max_delegation_cost=budget.max_delegation_cost)
        context._workspace, context._policy = workspace, policy
        return context

    @property
    def budget(self) -> Budget:
        return Budget(max_cost=self.max_cost, max_delegation_cost=self.max_delegation_cost)

    @property
    def delegation(self) -> str:
        """Task call ids from the top agent to the running context, each followed by "/" ("id1/id2/")."""
        return self._delegation

    def delegated(self, call_id: str, branch: LazyBranch | None = None) -> RunContext:
        """The context of the branch that runs Task call `call_id`; `branch`: its own workspace."""
        copy = self.model_copy()
        copy._delegation = f"{self._delegation}{call_id}/"
        if branch is not None:
            copy._branch = branch
        return copy

    @property
    def branch(self) -> LazyBranch | None:
        """Inside a writing delegation, its own branch (made or not yet); else None."""
        return self._branch

    @property
    def branch_workspace(self) -> Path | None:
        """Inside a writing delegation, the workspace of its own branch (made or not yet); else None."""
        return self._branch.workspace if self._branch is not None else None

    def policy(self, default: PermissionPolicy) -> PermissionPolicy:
        return self._policy or default

    def workspace(self, default: Path, root: Path | None) -> Path:
        """Where this run's file tools work: the run's own directory, else `<workspace_root>/<thread id>`
        (the context's root, else the graph's `root`), else the graph's `default` directory; inside a
        writing delegation, its branch's workspace once made, and until then the one it branches from
        (graphs/isolated.py)."""
        if self._branch is not None:
            return self._branch.workspace if self._branch.branch is not None else self._branch.main
        if self._workspace is not None:
            return self._workspace
        chosen = Path(self.workspace_root).expanduser() if self.workspace_root else root
        if chosen is None:
            return default
        thread = thread_id()
        if not _THREAD_DIR.fullmatch(thread):
            raise UserError(f"thread id {thread!r} cannot name a workspace directory under {chosen}")
        return chosen.resolve() / thread


def current_context() -> RunContext:
    """The running graph's context; an empty one outside a graph or when the caller gave none."""
    try:
        context = get_runtime(RunContext).context
    except RuntimeError:  # not inside a runnable (e.g. `orchestrate route`'s tie-break)
        return RunContext()
    return context if isinstance(context, RunContext) else RunContext()


def thread_id() -> str:
    """The running graph's thread (the run id); "" for a graph run without a checkpointer."""
    try:
        return str(get_config().get("configurable", {}).get("thread_id") or "")
    except RuntimeError:
        return ""
