"""The one way the orchestrator uses git: its own identity on every commit, no hooks, no signing, no
pager, and never a change to the user's configuration. Works where git has no identity configured (CI).

Reading objects, making commits and moving refs happen in process through libgit2 (pygit2): a git
process costs 2-5 ms to start, and a delegation needs a dozen such steps. What libgit2 does not do the
way git does (`git add -A` with git's own index and ignore handling, making a worktree, whose checkout
runs the user's filters, Git LFS's among them, `merge-file`) runs the git command, through `git_bytes`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pygit2

from orchestrator.errors import RunError

__all__ = ["AUTHOR", "GitError", "enclosing_repository", "git", "git_bytes", "repository", "signature"]

AUTHOR = ("orchestrate", "orchestrate@localhost")
"""Who the orchestrator's own commits are by (the base of a branch, each reviewed round)."""

_SETTINGS = ("-c", "commit.gpgSign=false", "-c", "core.hooksPath=/dev/null", "-c", "core.quotePath=false",
             "-c", "core.splitIndex=false", "-c", "index.sparse=false")  # fmt: skip
"""The last two keep the index files git writes for us in a format libgit2 reads."""


class GitError(RunError):
    """A git command the orchestrator needs failed: its command and git's own message."""


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    name, email = AUTHOR
    identity = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
    }
    return {**os.environ, **identity, **(extra or {})}


def git_bytes(
    args: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None, ok: Sequence[int] = (0,)
) -> tuple[int, bytes]:
    """Run `git ARGS` in `cwd`: (exit code, stdout). An exit code outside `ok` raises GitError."""
    try:
        done = subprocess.run(
            ["git", *_SETTINGS, *args], cwd=cwd, env=_env(env), capture_output=True, check=False, timeout=120
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed: workspaces for parallel subagents need it") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {' '.join(args[:2])} in {cwd} took over 120 s") from exc
    if done.returncode not in ok:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {' '.join(args[:3])} in {cwd} failed: {message[-1] if message else done.returncode}")
    return done.returncode, done.stdout


def git(args: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None) -> str:
    """Run `git ARGS` in `cwd` and return its output, stripped."""
    return git_bytes(args, cwd, env=env)[1].decode(errors="replace").strip()


def repository(path: Path) -> pygit2.Repository:
    """The repository whose work tree (or worktree) is `path`, opened in process."""
    try:
        return pygit2.Repository(str(path))
    except (pygit2.GitError, KeyError) as exc:
        raise GitError(f"cannot open the git repository at {path}: {exc}") from exc


def signature() -> pygit2.Signature:
    """The orchestrator's identity, now (author and committer of its commits)."""
    return pygit2.Signature(*AUTHOR)


def enclosing_repository(path: Path) -> pygit2.Repository | None:
    """The repository whose work tree `path` is in, opened; None when it is in none, or in one git
    refuses (a bare repository, one owned by another user)."""
    try:
        found = pygit2.discover_repository(str(path))
        repo = pygit2.Repository(found) if found else None
    except (pygit2.GitError, KeyError):
        return None
    return repo if repo is not None and repo.workdir else None
