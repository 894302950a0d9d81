"""How the `orchestrate` process ends: the command, then an exit without the interpreter's teardown.

Once a command has finished and its output is flushed, tearing the interpreter down (every module and
object of anthropic, langgraph and pydantic, freed one by one) takes ~0.7 s on two cores and does nothing
a user needs. So the process does what a normal exit does that matters (waits for other threads, runs the
atexit handlers, logging's flush among them, flushes stdout and stderr) and then leaves with the command's
exit code. Only the command-line entry point does this; the library never exits its caller's process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

from orchestrator.cli.app import app

__all__ = ["main"]


def _code(value: object) -> int:
    """SystemExit's code as the process's exit status, as Python itself maps it."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def main() -> NoReturn:
    """Run the `orchestrate` command line and exit with its status."""
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = _code(exc.code)
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`): nothing more can reach it
            stream.flush()
    os._exit(code)
