"""Merging a branch's work into the main workspace: a 3-way merge per file, all or nothing.

For every file the branch changed against its base: if the main workspace still holds the base version,
the branch's version lands; if it already holds the branch's version, nothing is to do; if both changed
it, `git merge-file` merges the lines, and overlapping changes are a conflict. One conflict lands nothing
of the branch: the main workspace keeps exactly its own version of every file, and the branch's stays in
its git branch. Applying the same merge twice changes nothing the second time, so a run killed halfway
through a merge finishes it on resume without doubling anything.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pygit2

from orchestrator.isolation.branch import BranchWorkspace, Change
from orchestrator.isolation.git import git_bytes, repository

__all__ = ["Conflict", "MergeOutcome", "merge_branch"]

_HUNKS_CHARS = 4000


@dataclass(frozen=True)
class Conflict:
    path: str
    hunks: str
    """The file with git's conflict markers (workspace / base / branch), capped."""


@dataclass(frozen=True)
class MergeOutcome:
    outcome: Literal["merged", "conflict"]
    applied: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def _blob(repo: pygit2.Repository, commit: str, path: str) -> bytes | None:
    """The file at `path` (of the branch's tree) in `commit`; None where it is absent."""
    try:
        entry = repo[commit].peel(pygit2.Tree)[path]
    except KeyError:
        return None
    return entry.data if isinstance(entry, pygit2.Blob) else None


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _merge_lines(ours: bytes, base: bytes, theirs: bytes, label: str) -> tuple[bytes, bool]:
    """`git merge-file` on the three versions: (the merged bytes, whether it is clean)."""
    if b"\0" in ours + base + theirs:  # binary: no line merge
        return ours, False
    with tempfile.TemporaryDirectory(prefix="orchestrate-merge-") as tmp:
        files = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            (Path(tmp) / name).write_bytes(data)
            files.append(str(Path(tmp) / name))
        labels = ["-L", "workspace", "-L", "base", "-L", label]
        code, out = git_bytes(["merge-file", "-p", *labels, *files], Path(tmp), ok=range(0, 128))
    return out, code == 0


def _hunks(merged: bytes) -> str:
    """The conflicting regions of a merged file (git's markers kept, each with its line number), capped."""
    if b"\0" in merged:
        return "a binary file changed on both sides"
    lines, kept, inside = merged.decode(errors="replace").splitlines(), [], False
    for number, line in enumerate(lines, 1):
        if line.startswith("<<<<<<< "):
            inside = True
            kept.append(f"(line {number})")
        if inside:
            kept.append(line)
        if line.startswith(">>>>>>> "):
            inside = False
    text = "\n".join(kept)
    return f"{text[:_HUNKS_CHARS]}\n... (cut)" if len(text) > _HUNKS_CHARS else text


def merge_branch(branch: BranchWorkspace, commit: str, changes: list[Change], workspace: Path) -> MergeOutcome:
    """Merge the branch's `commit` into `workspace` (see the module docstring)."""
    writes: dict[str, bytes | None] = {}
    conflicts: list[Conflict] = []
    repo = repository(Path(branch.root))
    for change in changes:
        path = branch.prefix + change.path
        base, theirs = _blob(repo, branch.base, path), _blob(repo, commit, path)
        ours = _read(workspace / change.path)
        if ours == theirs:
            continue
        if ours == base:
            writes[change.path] = theirs
            continue
        if ours is None or theirs is None:  # one side deleted what the other changed
            hunks = "deleted on one side, changed on the other"
            conflicts.append(Conflict(change.path, hunks))
            continue
        merged, clean = _merge_lines(ours, base or b"", theirs, f"branch {branch.ref}")
        if clean:
            writes[change.path] = merged
        else:
            conflicts.append(Conflict(change.path, _hunks(merged)))
    if conflicts:
        return MergeOutcome("conflict", conflicts=conflicts)
    for path, data in writes.items():
        target = workspace / path
        if data is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.orchestrate-merge")
        partial.write_bytes(data)
        partial.replace(target)  # each file lands whole
    return MergeOutcome("merged", applied=list(writes))
