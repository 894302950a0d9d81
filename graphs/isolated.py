"""A writing delegation's branch, from opening to merge: where parallel subagents stop racing each other.

A delegation whose agent may write (Write, Edit, NotebookEdit or Bash) works in a branch of its own
(orchestrator/isolation: a git worktree, or a snapshot outside git); one that only reads shares the main
workspace. The branch is made at the agent's first tool call, or just before a sibling's merge if that
comes first (`LazyBranch`), so one that only answers while nothing merges makes none; a delegation from
inside a branch starts from that branch. Each review round commits the branch and reviews its diff against
the base; the last reviewed commit is what merges. When the branch comes back approved (or unapproved,
with `merge_unapproved`), it merges into the main workspace, one merge at a time, in the order the
branches finish; a conflict lands nothing and goes back to the delegating agent in the Task result. Merged
branches are removed unless `keep_branches`.

Durable: the branch's outcome is written next to it (`result.json`) once merged, so a resumed run returns
that outcome instead of redoing the branch; a merge interrupted before that is applied again, which
changes nothing it already applied (merge.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import shutil
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from orchestrator.agent_spec import AgentSpec
from orchestrator.graphs.context import thread_id
from orchestrator.graphs.state import BranchRecord
from orchestrator.isolation import (
    BranchWorkspace,
    Change,
    GitError,
    MergeOutcome,
    WorkspaceTooLarge,
    branch_diff,
    branch_location,
    commit_round,
    merge_branch,
    open_branch,
    remove_branch,
    reopen_branch,
)
from orchestrator.logs import get_logger

__all__ = [
    "WRITING_TOOLS",
    "BranchUnavailable",
    "LazyBranch",
    "branches_home",
    "branches_removed",
    "close_branch",
    "conflict_text",
    "finish_branch",
    "git_missing",
    "plan_for",
    "recorded_result",
    "run_branches",
    "workspace_lock",
    "writes",
]

WRITING_TOOLS = frozenset({"Write", "Edit", "NotebookEdit", "Bash"})

log = get_logger(__name__)

_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()
"""Per event loop (an asyncio.Lock belongs to one), per main workspace."""


def workspace_lock(workspace: Path) -> asyncio.Lock:
    """One branch opening or merge at a time per main workspace: a branch never starts from a half-merged
    workspace, and branches merge one by one, in the order they finish."""
    of_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    return of_loop.setdefault(str(workspace), asyncio.Lock())  # already resolved: no file access on the loop


def writes(spec: AgentSpec) -> bool:
    """Whether the agent may change files (and so gets a branch of its own)."""
    return spec.tools is None or bool(WRITING_TOOLS & set(spec.tools))


@functools.cache
def git_missing() -> bool:
    """Without git there are no branches: every delegation shares the main workspace (logged once)."""
    if shutil.which("git") is not None:
        return False
    log.warning("isolation_off", reason="git is not installed: parallel subagents share the workspace")
    return True


def branches_home(root: Path | None) -> Path:
    """Where branches live: the settings' directory, else the per-user data directory's `branches`."""
    return root if root is not None else Path(platformdirs.user_data_dir("orchestrate")) / "branches"


def _run_dir() -> str:
    return thread_id() or f"unthreaded-{uuid.uuid4().hex[:12]}"


def _safe(name: str) -> str:
    """A run or call id as one path component and one git ref component."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name).strip("-") or "x"


def run_branches(root: Path | None, run_id: str) -> Path:
    """The directory that holds a run's branches (one directory per delegation)."""
    return branches_home(root) / _safe(run_id)


class BranchUnavailable(RuntimeError):
    """The delegation's branch could not be made (git failed, the workspace is too large to copy, the disk
    refused): the delegation fails with this message, its siblings carry on."""


@dataclass(eq=False)  # one branch per delegation: compared and hashed by identity
class LazyBranch:
    """A writing delegation's branch, made when its agent first uses a tool (`ready`), so a subagent that only
    answers while nothing merges costs no copy, commit or merge. Until then the branch's path is known
    (the brief and the request fingerprints name it) and the delegation sees the main workspace. Its base
    is the main workspace as it was when the delegation began: a merge into it before the first tool call
    makes the branch first."""

    main: Path
    """The workspace the branch is made from and merges into."""
    home: Path
    call_id: str
    ref: str
    workspace: Path
    """Where the branch's workspace is (or will be)."""
    branch: BranchWorkspace | None = None
    """The branch, once made."""
    _making: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def ready(self) -> BranchWorkspace:
        """The branch, made now if it is not yet (one opening at a time per main workspace)."""
        async with self._making:  # a subagent's parallel Task calls may ask at once
            if self.branch is None:
                try:
                    async with workspace_lock(self.main):
                        self.branch = await asyncio.to_thread(self.make)
                except (GitError, WorkspaceTooLarge, OSError) as exc:
                    raise BranchUnavailable(f"cannot give the subagent a workspace of its own: {exc}") from exc
                finally:
                    self.settled()
        return self.branch

    def make(self) -> BranchWorkspace:
        """Make the branch (or reopen it: making it twice gives the same branch). In a thread, under the
        main workspace's lock."""
        return open_branch(self.main, self.home, call_id=self.call_id, ref=self.ref)

    def pending(self) -> None:
        """Until it is made or its delegation ends, a merge into the main workspace makes it first, so its
        base is the workspace as it was when the delegation began, whatever merged since."""
        _unmade(self.main).add(self)

    def settled(self) -> None:
        _unmade(self.main).discard(self)


_pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, set[LazyBranch]]] = weakref.WeakKeyDictionary()


def _unmade(workspace: Path) -> set[LazyBranch]:
    """The branches off `workspace` whose delegations run and that are not made yet (per event loop)."""
    return _pending.setdefault(asyncio.get_running_loop(), {}).setdefault(str(workspace), set())


def plan_for(workspace: Path, root: Path | None, call_id: str) -> tuple[LazyBranch, dict[str, Any] | None] | None:
    """The branch of delegation `call_id` of the running run, not made yet (or, on resume, as an earlier
    attempt made it), with the outcome that attempt recorded (`recorded_result`); None without git (the
    delegation shares the main workspace). One call, so it costs the event loop one thread hop."""
    if git_missing():
        return None
    run, call = _safe(_run_dir()), _safe(call_id)
    home = run_branches(root, run) / call
    made = reopen_branch(home)
    where = Path(made.workspace) if made is not None else branch_location(workspace, home)
    lazy = LazyBranch(workspace, home, call_id, f"orchestrate/{run}/{call}", where, made)
    return lazy, recorded_result(home)


def recorded_result(home: Path) -> dict[str, Any] | None:
    """The outcome a previous attempt of this run recorded for the branch under `home`, if it got that far."""
    path = home / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def conflict_text(outcome: MergeOutcome, branch: BranchWorkspace, commit: str) -> str:
    """What the delegating agent reads about a conflict: the paths, the hunks, where the branch is kept."""
    lines = [
        f"[merge: CONFLICT, nothing of this branch landed; the main workspace keeps its own version of "
        f"{', '.join(c.path for c in outcome.conflicts)}. The branch's version is kept in {branch.workspace} "
        f"(git branch {branch.ref}, commit {commit[:12]}, in {branch.repo}). Resolve it: edit the files "
        f"yourself, or delegate the resolution with these hunks.]"
    ]
    lines += [f"--- {c.path}\n{c.hunks}" for c in outcome.conflicts]
    return "\n".join(lines)


def _record(
    branch: BranchWorkspace, commit: str, changes: list[Change], merge: str, conflicts: list[str], kept: bool
) -> BranchRecord:
    return BranchRecord(
        kind=branch.kind,
        where=branch.workspace,
        ref=branch.ref,
        repo=branch.repo,
        commit=commit,
        changes=[{"status": c.status, "path": c.path} for c in changes],
        merge=merge,  # type: ignore[typeddict-item]
        conflicts=conflicts,
        kept=kept,
    )


async def finish_branch(
    branch: BranchWorkspace, workspace: Path, reviewed: str | None, changed: list[str], *, merge: bool, keep: bool
) -> tuple[BranchRecord, str]:
    """Merge the branch's `reviewed` commit when `merge` (no review: its work tree committed, with the files
    its tools `changed`): its record and the text the Task result adds (a conflict's details, else "").
    `keep`: whether a merged branch stays."""
    if not merge:
        return await asyncio.to_thread(_unmerged, branch, reviewed, changed), ""
    async with workspace_lock(workspace):
        unmade = [lazy for lazy in _unmade(workspace) if lazy.branch is None]
        return await asyncio.to_thread(_merge, branch, reviewed, changed, workspace, keep, unmade)


def _unmerged(branch: BranchWorkspace, reviewed: str | None, changed: list[str]) -> BranchRecord:
    commit = reviewed or commit_round(branch, changed)
    return _record(branch, commit, branch_diff(branch, commit), "not merged", [], True)


def _merge(
    branch: BranchWorkspace,
    reviewed: str | None,
    changed: list[str],
    workspace: Path,
    keep: bool,
    unmade: list[LazyBranch],
) -> tuple[BranchRecord, str]:
    for lazy in unmade:  # siblings that have not used a tool yet start from the workspace before this merge
        try:
            lazy.branch = lazy.make()
        except (GitError, WorkspaceTooLarge, OSError) as exc:  # it is tried again at its first tool call
            log.warning("branch_not_made", call_id=lazy.call_id, error=str(exc))
    commit = reviewed or commit_round(branch, changed)
    changes = branch_diff(branch, commit)
    outcome = merge_branch(branch, commit, changes, workspace)
    if outcome.outcome == "conflict":
        conflicts = [c.path for c in outcome.conflicts]
        return _record(branch, commit, changes, "conflict", conflicts, True), conflict_text(outcome, branch, commit)
    return _record(branch, commit, changes, "merged", [], keep), ""


async def close_branch(branch: BranchWorkspace, result: dict[str, Any], record: BranchRecord) -> None:
    """Record the branch's outcome next to it (what `recorded_result` returns on resume), then remove a
    merged branch's tree and git branch (its records stay), unless it is to be kept. The removal runs in
    the background, so the Task result does not wait for it; the run waits for it before it ends
    (`branches_removed`)."""
    await asyncio.to_thread(_save_result, branch, result)
    if record["merge"] == "merged" and not record["kept"]:
        run, removing = thread_id(), asyncio.create_task(asyncio.to_thread(_remove, branch))
        _removals.setdefault(run, set()).add(removing)
        removing.add_done_callback(functools.partial(_removed, run))


_removals: dict[str, set[asyncio.Task[None]]] = {}
"""Per run, the removals of its merged branches still under way (a server run has no runner to wait)."""


def _removed(run: str, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:  # a bug: `_remove` handles git's failures
        log.error("branch_removal_crashed", error=repr(exc))
    pending = _removals.get(run, set())
    pending.discard(task)
    if not pending:
        _removals.pop(run, None)


async def branches_removed(run_id: str) -> None:
    """Wait until the removals `close_branch` started for run `run_id` are done."""
    pending = _removals.pop(run_id, set())
    if pending:
        await asyncio.gather(*pending)


def _save_result(branch: BranchWorkspace, result: dict[str, Any]) -> None:
    partial = Path(branch.home) / "result.json.partial"
    partial.write_text(json.dumps(result))
    partial.replace(Path(branch.home) / "result.json")


def _remove(branch: BranchWorkspace) -> None:
    """Remove a merged branch; one that cannot be removed is left where it is (its work has merged)."""
    try:
        remove_branch(branch)
    except (GitError, OSError) as exc:
        log.warning("branch_not_removed", where=branch.root, error=str(exc))
