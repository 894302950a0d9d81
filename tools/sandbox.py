"""Keep every path a tool touches inside the workspace root.

Models pass paths as they please: relative, absolute, with `..`, or through a symlink someone planted.
Every file tool resolves its path argument here, once, so the rule "inside the workspace, after
following symlinks" lives in one function. A refusal is a `ToolError` naming the argument and the path,
because the model chose the path and can choose another.

Resolving is a check; opening comes after it, and a symlink swapped in between would lead outside. So
the file tools open through `open_beneath`: from a descriptor of the workspace root, one path component
at a time (`openat`), each with O_NOFOLLOW. A component that became a symlink makes the open fail rather
than follow it, so what is read or written is always beneath the root.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from orchestrator.errors import ToolError

__all__ = ["open_beneath", "read_beneath", "resolve_in_workspace", "workspace_relative", "write_beneath"]

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def resolve_in_workspace(workspace: Path, raw: str, *, arg: str) -> Path:
    """Return the real (symlink-free) absolute path for `raw`, or refuse if it leaves the workspace.

    Relative paths are taken from the workspace root (not the process's cwd); `~` expands to the home
    directory, which then has to be inside the workspace like any other absolute path.
    """
    root = workspace.resolve()
    if not raw.strip():
        raise ToolError(f"{arg} is empty; give a path inside the workspace {root}.")
    if "\0" in raw:
        raise ToolError(f"{arg} {raw!r} contains a NUL byte.")
    joined = root / os.path.expanduser(raw)
    lexical = Path(os.path.normpath(joined))
    if not lexical.is_relative_to(root):
        raise ToolError(
            f"{arg} {raw!r} is outside the workspace {root}; only paths inside it are allowed "
            "(relative paths start at the workspace root)."
        )
    try:
        real = joined.resolve()
    except OSError as exc:  # the path changed under us while its symlinks were read
        raise ToolError(f"{arg} {raw!r} changed while it was resolved; try again.") from exc
    if not real.is_relative_to(root):
        raise ToolError(f"{arg} {raw!r} leads through a symlink to {real}, outside the workspace {root}.")
    return real


def workspace_relative(workspace: Path, path: Path) -> str:
    """The POSIX-style path of `path` relative to the workspace root ("." for the root itself): the
    form tools print and the form `ToolContext.files_read` and `files_changed` store."""
    return path.relative_to(workspace.resolve()).as_posix()


def open_beneath(workspace: Path, path: Path, flags: int, *, make_parents: bool = False, mode: int = 0o644) -> int:
    """A file descriptor for `path` (a `resolve_in_workspace` result), opened without following any
    symlink below the workspace root; `make_parents` creates missing directories on the way. A path that
    changed into a symlink since it was resolved is a ToolError, never an open outside."""
    root = workspace.resolve()
    parts = path.relative_to(root).parts
    if not parts:
        raise ToolError(f"{root} is the workspace directory, not a file.")
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            if make_parents:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=directory)
            inner = _open_at(part, _DIRECTORY, 0, directory, path)
            os.close(directory)
            directory = inner
        return _open_at(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, directory, path)
    finally:
        os.close(directory)


def _open_at(name: str, flags: int, mode: int, directory: int, path: Path) -> int:
    try:
        return os.open(name, flags, mode, dir_fd=directory)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            swapped = f"{path} changed while it was opened (a symlink appeared on its path): not followed."
            raise ToolError(swapped) from exc
        if exc.errno == errno.ENOENT:
            raise ToolError(f"{path} does not exist (any more).") from exc
        raise ToolError(f"Could not open {path}: {exc.strerror or exc}.") from exc


def read_beneath(workspace: Path, path: Path) -> bytes:
    with os.fdopen(open_beneath(workspace, path, os.O_RDONLY), "rb") as handle:
        return handle.read()


def write_beneath(workspace: Path, path: Path, data: bytes) -> None:
    """Create or truncate the file (and its missing directories) beneath the workspace, then write."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(open_beneath(workspace, path, flags, make_parents=True), "wb") as handle:
        handle.write(data)
