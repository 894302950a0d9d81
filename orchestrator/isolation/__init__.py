"""Isolation for parallel subagents: each writing delegation works in a branch of its own (branch.py), and
approved work merges back into the main workspace, conflicts reported, nothing overwritten (merge.py).
graphs/isolated.py runs a delegation's branch through this."""

from orchestrator.isolation.branch import (
    SNAPSHOT_CAP_BYTES,
    BranchWorkspace,
    Change,
    WorkspaceTooLarge,
    branch_diff,
    branch_location,
    branch_patch,
    commit_round,
    open_branch,
    remove_branch,
    reopen_branch,
)
from orchestrator.isolation.git import AUTHOR, GitError
from orchestrator.isolation.merge import Conflict, MergeOutcome, merge_branch

__all__ = [
    "AUTHOR",
    "SNAPSHOT_CAP_BYTES",
    "BranchWorkspace",
    "Change",
    "Conflict",
    "GitError",
    "MergeOutcome",
    "WorkspaceTooLarge",
    "branch_diff",
    "branch_location",
    "branch_patch",
    "commit_round",
    "merge_branch",
    "open_branch",
    "remove_branch",
    "reopen_branch",
]
