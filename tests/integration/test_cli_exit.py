"""The `orchestrate` process skips the interpreter's teardown, and loses nothing by it: the exit status,
everything written to stdout and stderr, and the atexit handlers (logging's flush among them) all hold.
The real console script and `python -m orchestrator`, as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli.exit import _code

SCRIPT = Path(sys.executable).with_name("orchestrate")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("command", [[str(SCRIPT)], [sys.executable, "-m", "orchestrator"]], ids=["script", "-m"])
def test_the_output_and_status_of_a_command_arrive_whole(command: list[str]) -> None:
    listed = _run(*command, "agents", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {a["name"] for a in json.loads(listed.stdout)} >= {"senior-ml-engineer", "ml-engineer"}
    refused = _run(*command, "run", "--max-cost", "-1", "x")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "--max-cost" in refused.stderr.strip().splitlines()[-1]


def test_atexit_handlers_still_run_before_the_process_leaves() -> None:
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('handler ran', flush=False))\n"
        "sys.argv = ['orchestrate', 'agents', '--json']\n"
        "from orchestrator.cli import main\n"
        "main()\n"
    )
    done = _run(sys.executable, "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("handler ran")


@pytest.mark.parametrize(("value", "status"), [(None, 0), (0, 0), (3, 3), ("a message", 1)])
def test_system_exit_codes_map_as_python_maps_them(value: object, status: int) -> None:
    assert _code(value) == status
