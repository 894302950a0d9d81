"""A writing subagent's own workspace: `open_branch` makes it, `commit_round` records what the branch has
done so far, and `branch_diff` is that work as the review sees it.

- In a git repository, the branch is a `git worktree` on a new branch `orchestrate/<run>/<call>`, off a
  base commit of the workspace as it is now: HEAD plus the uncommitted and untracked files (ignored ones
  stay out), written through a temporary index, so the user's index, HEAD and config are untouched.
- Elsewhere, the branch is a snapshot: the workspace copied (in process when small, else by cp with
  reflinks where the filesystem has them) into a git-initialised shadow directory, refused above a size
  cap, and staged in process (no git process runs for it).

Either way the branch is a git repository whose first commit is the base: every diff and merge compares
against it. Its metadata (`branch.json`, next to the tree) lets a resumed run reopen it instead of making
another.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import pygit2

from orchestrator.errors import RunError
from orchestrator.isolation.git import GitError, enclosing_repository, git, repository, signature

__all__ = [
    "SNAPSHOT_CAP_BYTES",
    "BranchWorkspace",
    "Change",
    "WorkspaceTooLarge",
    "branch_diff",
    "branch_location",
    "branch_patch",
    "commit_round",
    "open_branch",
    "remove_branch",
    "reopen_branch",
]

SNAPSHOT_CAP_BYTES = 512 * 1024 * 1024
"""The most a non-git workspace may hold to be copied for a branch."""

_HUNK_CHARS = 6000


class WorkspaceTooLarge(RunError):
    """A non-git workspace over the snapshot cap."""


@dataclass(frozen=True)
class BranchWorkspace:
    """Where one delegation works, and what its work is compared against."""

    call_id: str
    kind: Literal["worktree", "snapshot"]
    root: str
    """The branch's git work tree."""
    workspace: str
    """The directory the subagent works in: `root`, or the main workspace's place inside it."""
    base: str
    """The commit the branch started from."""
    ref: str
    """The branch (`orchestrate/<run>/<call>`), in `repo`."""
    repo: str
    """Where the branch's commits live: the main repository (worktree) or the shadow (snapshot)."""
    home: str
    """The directory that holds this branch's tree and records."""

    @property
    def prefix(self) -> str:
        """Where the workspace sits in the branch's tree: "" at its top, else "sub/dir/"."""
        inside = Path(self.workspace).relative_to(self.root).as_posix()
        return "" if inside == "." else inside + "/"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def of(cls, data: dict[str, str]) -> BranchWorkspace:
        return cls(**data)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Change:
    """One file the branch added, modified or deleted against its base (paths relative to the workspace)."""

    status: Literal["added", "modified", "deleted"]
    path: str


def _tree_of(
    repo: pygit2.Repository, *, parent: str | None, also: Sequence[str] = (), index: Path | None = None
) -> str:
    """The tree of `repo`'s work tree as it is (tracked, untracked, not ignored, and the files `also`
    names even if ignored), through `index` (kept between calls: git then re-reads only files whose stat
    changed; made from `parent` when missing) or a temporary one. `git add` does the staging, so what is
    ignored and what changed is exactly git's view; the rest happens in process."""
    with tempfile.TemporaryDirectory(prefix="orchestrate-index-") as tmp:
        path, cwd = index or Path(tmp) / "index", Path(repo.workdir)
        if parent and not path.is_file():
            seed = pygit2.Index(str(path))
            seed.read_tree(repo[parent].peel(pygit2.Tree))
            seed.write()
        env = {"GIT_INDEX_FILE": str(path)}
        git(["add", "-A", "--", "."], cwd, env=env)
        staged = pygit2.Index(str(path))
        ignored = [p for p in also if p not in staged and (cwd / p).is_file()]  # what git's rules left out
        if ignored:
            git(["add", "-f", "--", *ignored], cwd, env=env)
            staged.read(True)
        return str(staged.write_tree(repo))


def _snapshot_tree(repo: pygit2.Repository, also: Sequence[str] = ()) -> str:
    """The tree of a snapshot's work tree as it is, staged in process through its own index (kept between
    rounds, so only files whose stat changed are read again): the repository is ours, with no config,
    hooks or filters of the user's for `git add` to honour, and libgit2 applies the same ignore rules."""
    index, root = repo.index, Path(repo.workdir)
    index.add_all()
    for gone in [e.path for e in index if not os.path.lexists(root / e.path)]:  # add_all keeps deleted files
        index.remove(gone)
    for path in also:
        if (root / path).is_file():
            index.add(path)  # even where ignored
    index.write()
    return str(index.write_tree())


def _commit(repo: pygit2.Repository, tree: str, parent: str | None) -> str:
    """A commit of `tree` on top of `parent`, by the orchestrator (no ref moves)."""
    who = signature()
    parents = [pygit2.Oid(hex=parent)] if parent else []
    return str(repo.create_commit(None, who, who, "orchestrate: branch state", pygit2.Oid(hex=tree), parents))


def _ignored(workspace: Path, repo: pygit2.Repository) -> bool:
    """Whether git ignores the workspace directory itself (a build or output folder of the repository)."""
    inside = workspace.resolve().relative_to(Path(repo.workdir).resolve()).as_posix()
    return inside != "." and repo.path_is_ignored(inside + "/")


def _head(repo: pygit2.Repository) -> str | None:
    """The commit HEAD is at; None on an unborn branch (a repository without commits)."""
    return None if repo.head_is_unborn else str(repo.head.peel(pygit2.Commit).id)


def _size(path: Path, cap: int) -> int:
    total = 0
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            try:
                total += (Path(folder) / name).lstat().st_size
            except OSError:
                continue
            if total > cap:
                return total
    return total


_IN_PROCESS_COPY_BYTES = 4 << 20
"""Up to this size a workspace is copied in process; above it, `cp --reflink=auto` pays for its start."""


def _copy(source: Path, target: Path, size: int) -> None:
    """The workspace's files (`size` bytes) into `target`: a small one copied in process, a larger one
    through cp, with reflinks where the filesystem clones."""
    target.mkdir(parents=True)
    cp = shutil.which("cp") if size > _IN_PROCESS_COPY_BYTES else None
    if cp is not None:
        done = subprocess.run([cp, "-a", "--reflink=auto", f"{source}/.", str(target)], capture_output=True)
        if done.returncode == 0:
            shutil.rmtree(target / ".git", ignore_errors=True)
            return
        shutil.rmtree(target)
        target.mkdir(parents=True)
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))


def _repository_of(workspace: Path) -> pygit2.Repository | None:
    """The user's repository a branch of `workspace` is a worktree of; None: the branch is a snapshot."""
    repo = enclosing_repository(workspace)
    if repo is not None and _ignored(workspace, repo):  # git would not see its files: a snapshot sees them
        return None
    return repo


def branch_location(workspace: Path, home: Path) -> Path:
    """Where the workspace of the branch `open_branch(workspace, home, …)` makes will be, before it is made."""
    repo = _repository_of(workspace)
    if repo is None:
        return home / "tree"
    return home / "tree" / workspace.resolve().relative_to(Path(repo.workdir).resolve())


def reopen_branch(home: Path) -> BranchWorkspace | None:
    """The branch an earlier attempt of the run made under `home`, if it made one."""
    meta = home / "branch.json"
    return BranchWorkspace.of(json.loads(meta.read_text())) if meta.is_file() else None


def open_branch(
    workspace: Path, home: Path, *, call_id: str, ref: str, cap: int = SNAPSHOT_CAP_BYTES
) -> BranchWorkspace:
    """The branch for delegation `call_id`, made under `home` (or reopened, when a resumed run made it)."""
    if (made := reopen_branch(home)) is not None:
        return made
    home.mkdir(parents=True, exist_ok=True)
    tree = home / "tree"
    repo = _repository_of(workspace)
    if repo is not None:  # the user's repository: its index stays untouched (a temporary one)
        top = Path(repo.workdir).resolve()
        base = _commit(repo, _tree_of(repo, parent=(head := _head(repo))), head)
        git(["worktree", "add", "-q", "-B", ref, str(tree), base], top)
        shutil.copyfile(Path(repository(tree).path) / "index", home / "index")  # the checkout's file stats:
        # the first round's `git add` re-reads only the files the agent touched
        inside = workspace.resolve().relative_to(top)
        branch = BranchWorkspace(call_id, "worktree", str(tree), str(tree / inside), base, ref, str(top), str(home))
    else:
        size = _size(workspace, cap)
        if size > cap:
            raise WorkspaceTooLarge(
                f"workspace {workspace} holds over {cap >> 20} MiB, the most a branch copies when it is not a git "
                "repository: make it one (git init) so branches are git worktrees"
            )
        _copy(workspace, tree, size)
        repo = pygit2.init_repository(str(tree), initial_head=f"refs/heads/{ref}")
        base = _commit(repo, _snapshot_tree(repo), None)
        repo.references.create(f"refs/heads/{ref}", pygit2.Oid(hex=base))
        branch = BranchWorkspace(call_id, "snapshot", str(tree), str(tree), base, ref, str(tree), str(home))
    (home / "branch.json").write_text(json.dumps(branch.as_dict()))
    return branch


def commit_round(branch: BranchWorkspace, changed: Sequence[str] = ()) -> str:
    """Commit the branch's work tree as it is now on its branch, with the files the agent's tools `changed`
    (workspace-relative) even where git ignores them; the new commit, or the branch's last one when the
    tree is as it was (the work is unchanged since the last review)."""
    repo = repository(Path(branch.root))
    ref = repo.references.get(f"refs/heads/{branch.ref}")
    if ref is None:
        raise GitError(f"branch {branch.ref} is gone from {branch.repo}")
    last = ref.peel(pygit2.Commit)
    also = [branch.prefix + p for p in changed]
    if branch.kind == "snapshot":
        tree = _snapshot_tree(repo, also)
    else:
        tree = _tree_of(repo, parent=str(last.id), also=also, index=Path(branch.home) / "index")
    if tree == str(last.tree_id):
        return str(last.id)
    commit = _commit(repo, tree, str(last.id))
    ref.set_target(pygit2.Oid(hex=commit), "orchestrate: branch state")
    return commit


def branch_diff(branch: BranchWorkspace, commit: str) -> list[Change]:
    """The files `commit` added, modified or deleted against the branch's base."""
    return list(_diff(branch, commit))


_KINDS: dict[str, Literal["added", "modified", "deleted"]] = {"A": "added", "D": "deleted"}


@functools.lru_cache(maxsize=256)
def _diff(branch: BranchWorkspace, commit: str) -> tuple[Change, ...]:
    """Memoized: two commits' diff never changes (the review and the merge both ask for it)."""
    repo, prefix = repository(Path(branch.root)), branch.prefix
    diff = repo.diff(branch.base, commit)  # the two commits' trees, without rename detection
    changes = []
    for delta in diff.deltas:
        path = (delta.old_file if delta.status_char() == "D" else delta.new_file).path
        if path.startswith(prefix):
            changes.append(Change(_KINDS.get(delta.status_char(), "modified"), path.removeprefix(prefix)))
    return tuple(changes)


def branch_patch(branch: BranchWorkspace, commit: str, path: str | None = None) -> str:
    """The diff between the branch's base and `commit` (of one file, hunks only), capped, the cut marked."""
    scope = ["--", path] if path else []
    patch = git(
        ["diff", "--no-renames", "--no-color", "--relative", branch.base, commit, *scope], Path(branch.workspace)
    )
    if path is not None and "@@" in patch:
        patch = patch[patch.find("@@") :]
    return f"{patch[:_HUNK_CHARS]}\n... (diff cut)" if len(patch) > _HUNK_CHARS else patch


def remove_branch(branch: BranchWorkspace) -> None:
    """Remove the branch's tree and its git branch; its records (`branch.json`, `result.json`) stay. In
    process, as `git worktree remove --force` and `git branch -D` would (two git processes saved)."""
    if branch.kind == "snapshot":
        shutil.rmtree(branch.root, ignore_errors=True)
        return
    repo, root = repository(Path(branch.repo)), os.path.realpath(branch.root)
    try:
        worktrees = [repo.lookup_worktree(name) for name in repo.list_worktrees()]
        mine = [worktree for worktree in worktrees if os.path.realpath(worktree.path) == root]
        if os.path.lexists(root):  # else only its records in the repository are left to remove
            shutil.rmtree(root)
        for worktree in mine:  # its administrative files in the repository, now that its tree is gone
            worktree.prune(True)
        if (ref := repo.references.get(f"refs/heads/{branch.ref}")) is not None:
            ref.delete()
    except pygit2.GitError as exc:
        raise GitError(f"cannot remove the worktree {branch.root} from {branch.repo}: {exc}") from exc
