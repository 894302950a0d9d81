"""The Bash sandbox: every command runs under bubblewrap (`bwrap`), as Claude Code does on Linux.

Inside, the command has its own PID namespace (the orchestrator is not its parent: `/proc/$PPID` is
bubblewrap's stub, whose environment is the scrubbed one), a read-only view of the whole file system, the
workspace and a private /tmp writable, the workspace's `.claude/` read-only (an agent cannot grant itself
rights through a shell either), and no network unless the user's settings allow it
(`"sandbox": {"network": true}`). `--die-with-parent` and the process group take every process down with
the command on a timeout, a kill, or the orchestrator's own exit.

Where bubblewrap cannot run (not installed, no user namespaces), Bash refuses with one line saying why,
unless the user opted out (`--no-sandbox`, or `"sandbox": {"enabled": false}` in their settings); the
run's record says which.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

__all__ = ["INSTALL_HINT", "sandbox_argv", "sandbox_problem"]

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) or run with --no-sandbox"


@functools.cache
def sandbox_problem() -> str | None:
    """Why bubblewrap cannot run here (None when it can): checked once per process, by running it."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--unshare-net"]
    try:
        done = subprocess.run([*probe, "true"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start ({exc})"
    if done.returncode != 0:
        return f"bubblewrap cannot create its namespaces here: {(done.stderr.strip() or 'no reason given')[:200]}"
    return None


def sandbox_argv(workspace: Path, shell: str, command: str, *, network: bool) -> list[str]:
    """The bwrap command line that runs `shell -c command` in the sandbox, the workspace its cwd."""
    root = str(workspace)
    settings = workspace / ".claude"
    settings.mkdir(exist_ok=True)  # bound read-only: it must exist, or a command could create it writable
    argv = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += ["--tmpfs", "/tmp", "--bind", root, root, "--ro-bind", str(settings), str(settings)]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
    argv += [] if network else ["--unshare-net"]
    return [*argv, "--chdir", root, "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", shell, "-c", command]
