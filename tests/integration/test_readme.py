"""The README's Python blocks run as written (a user copies them into a file), against the loopback
Messages API through the real anthropic SDK, in a fresh directory holding the `./repo` they name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.claude_team import FINAL, team_responder
from tests.support.messages_server import MessagesServer

BLOCKS = re.findall(r"```python\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.DOTALL)
SERVER = "langgraph_sdk"
"""The LangGraph Server example runs against a real `langgraph dev` in test_langgraph_server.py."""


def test_every_python_block_is_run_by_the_suite() -> None:
    assert len(BLOCKS) == 4 and sum(SERVER in b for b in BLOCKS) == 1


@pytest.mark.parametrize("code", [b for b in BLOCKS if SERVER not in b], ids=["sync", "async", "graph"])
def test_a_readme_block_runs_as_written(code: str, tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    with MessagesServer(team_responder(junior_delay=0.0)) as server:
        env = {**os.environ, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-readme-test",
               "HOME": str(tmp_path), "ORCHESTRATE_DB": str(tmp_path / "runs.sqlite")}  # fmt: skip
        ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == "" and "model_call" not in ran.stdout  # silent unless its user configures logging
    assert FINAL in ran.stdout and (tmp_path / "repo/rag/ingest.py").is_file()
    assert "completed" in ran.stdout or code.count("print(") == 1
