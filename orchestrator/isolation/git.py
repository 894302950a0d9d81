"""The one way the orchestrator runs git: its own identity on every commit, no hooks, no signing, no
pager, and never a change to the user's configuration. Works where git has no identity configured (CI)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.errors import RunError

__all__ = ["AUTHOR", "GitError", "git", "git_bytes", "is_repository"]

AUTHOR = ("orchestrate", "orchestrate@localhost")
"""Who the orchestrator's own commits are by (the base of a branch, each reviewed round)."""

_SETTINGS = ("-c", "commit.gpgSign=false", "-c", "core.hooksPath=/dev/null", "-c", "core.quotePath=false")


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


def is_repository(path: Path) -> Path | None:
    """The top of the git work tree `path` is in, or None (not in one, or git is absent)."""
    try:
        code, out = git_bytes(["rev-parse", "--show-toplevel"], path, ok=(0, 128))
    except GitError:
        return None
    return Path(out.decode().strip()).resolve() if code == 0 and out.strip() else None
