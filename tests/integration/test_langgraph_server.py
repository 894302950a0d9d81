"""LangGraph Server for real: `langgraph dev` serving langgraph.json, driven by the official `langgraph_sdk`
client, the model being the loopback Messages API through the real anthropic SDK.

One server serves every test of the module (it takes ~20 s to start); each test makes its own assistants
and threads. The server runs with the blocking-call check on (no --allow-blocking) and from a directory
that is not the checkout; the module fails if the server ever logged a BlockingError.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from orchestrator.run_events import granted_rules
from orchestrator.run_store import RunStore
from tests.conftest import REPO
from tests.support.claude_team import FINAL, SUBTASKS, team_responder
from tests.support.langgraph_dev import langgraph_dev
from tests.support.messages_server import MessagesServer

pytestmark = pytest.mark.slow

TASK = "design a RAG pipeline"


class Served:
    def __init__(self, url: str, root: Path, db: Path) -> None:
        self.url, self.root, self.db = url, root, db


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("server")
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-server-test",
        "ORCHESTRATE_DB": str(home / "runs.sqlite"),
        "ORCHESTRATE_WORKSPACE_ROOT": str(home / "default-root"),
        "LANGSMITH_TRACING": "false",
    }
    with MessagesServer(team_responder(junior_delay=0.0)) as model:
        env["ANTHROPIC_BASE_URL"] = model.url
        with langgraph_dev(env, cwd=home) as url:
            yield Served(url, home / "default-root", home / "runs.sqlite")
        assert model.errors == []


@pytest.fixture
async def client(served: Served) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=served.url)
    yield client
    await client.http.client.aclose()


async def _stream(client: LangGraphClient, thread: str, assistant: str, **run: Any) -> list[tuple[str, Any]]:
    return [(part.event, part.data) async for part in client.runs.stream(thread, assistant, **run)]


def _chat(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_a_chat_run_works_in_its_threads_own_workspace(client: LangGraphClient, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    assistant = await client.assistants.create(
        graph_id="orchestrate", context={"permission_mode": "acceptEdits", "workspace_root": str(root)}
    )
    threads = [(await client.threads.create())["thread_id"] for _ in range(2)]

    parts = await _stream(client, threads[0], assistant["assistant_id"], input=_chat(TASK),
                          stream_mode=["custom", "values"])  # fmt: skip
    await _stream(client, threads[1], assistant["assistant_id"], input={"task": TASK})

    assert [data for event, data in parts if event == "error"] == []
    progress = [data["event"] for event, data in parts if event == "custom"]
    assert progress[0] == "route" and progress.count("delegate") == 2 and progress.count("returned") == 2
    for thread in threads:  # each thread in a directory of its own under the assistant's root
        assert {p: (root / thread / p).read_text() for p in SUBTASKS} == SUBTASKS
    state = await client.threads.get_state(threads[0])
    messages = state["values"]["messages"]
    assert messages[0]["type"] == "human" and messages[0]["content"] == TASK
    assert messages[-1]["type"] == "ai" and messages[-1]["content"] == FINAL


async def test_default_mode_asks_and_the_client_answers(client: LangGraphClient, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    assistant = await client.assistants.create(graph_id="orchestrate", context={"workspace_root": str(root)})
    thread = (await client.threads.create())["thread_id"]

    await _stream(client, thread, assistant["assistant_id"], input=_chat(TASK))
    asks = (await client.threads.get_state(thread))["interrupts"]
    assert sorted(a["value"]["tool"] for a in asks) == ["Write", "Write"]  # one per parallel junior
    first = asks[0]
    assert first["value"]["options"] == ["allow", "deny", "always"] and first["value"]["agent"] == "ml-engineer"
    assert first["value"]["delegation"] and first["value"]["rule"].startswith("Edit(./rag/")

    # a value that is no answer is asked again, saying what to send; it is never taken for a deny
    await _stream(client, thread, assistant["assistant_id"], command={"resume": {a["id"]: "yes" for a in asks}})
    again = (await client.threads.get_state(thread))["interrupts"]
    assert len(again) == 2 and all("'yes' is not an answer" in a["value"]["error"] for a in again)
    assert not any((root / thread / p).exists() for p in SUBTASKS)

    resume = {again[0]["id"]: "allow", again[1]["id"]: True}
    await _stream(client, thread, assistant["assistant_id"], command={"resume": resume})

    state = await client.threads.get_state(thread)
    assert state["interrupts"] == [] and state["values"]["messages"][-1]["content"] == FINAL
    assert {p: (root / thread / p).read_text() for p in SUBTASKS} == SUBTASKS


async def test_always_is_an_answer_and_is_recorded(client: LangGraphClient, served: Served, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    assistant = await client.assistants.create(graph_id="orchestrate", context={"workspace_root": str(root)})
    thread = (await client.threads.create())["thread_id"]
    await _stream(client, thread, assistant["assistant_id"], input={"task": TASK})
    asks = (await client.threads.get_state(thread))["interrupts"]
    await _stream(client, thread, assistant["assistant_id"], command={"resume": {a["id"]: "always" for a in asks}})

    assert (await client.threads.get_state(thread))["values"]["messages"][-1]["content"] == FINAL
    granted = granted_rules(RunStore(served.db).events(thread))  # what later asks in this thread are checked against
    assert granted == {"Edit(./rag/ingest.py)", "Edit(./rag/retrieve.py)"}


async def test_a_bad_context_is_refused_naming_the_key(client: LangGraphClient) -> None:
    bad = {"permission_mode": "acceptEdits", "settings": {"permissions": {"allow": ["Bash("]}}}
    assistant = await client.assistants.create(graph_id="orchestrate", context=bad)
    thread = (await client.threads.create())["thread_id"]
    parts = await _stream(client, thread, assistant["assistant_id"], input={"task": TASK})
    errors = [data for event, data in parts if event == "error"]
    assert len(errors) == 1 and "context.settings: permissions.allow[0]" in json.dumps(errors[0])


async def test_the_context_schema_is_the_documented_keys(client: LangGraphClient) -> None:
    assistant = await client.assistants.create(graph_id="orchestrate")
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert list(schemas["context_schema"]["properties"]) == [
        "workspace_root", "permission_mode", "settings", "max_cost", "max_delegation_cost", "max_revisions", "models",
        "merge_unapproved", "keep_branches",
    ]  # fmt: skip
    assert {"task", "messages"} <= set(schemas["input_schema"]["properties"])


async def test_server_runs_are_in_the_run_store(client: LangGraphClient, served: Served) -> None:
    assistant = await client.assistants.create(graph_id="orchestrate", context={"permission_mode": "acceptEdits"})
    thread = (await client.threads.create())["thread_id"]
    await _stream(client, thread, assistant["assistant_id"], input={"task": TASK})

    shown = subprocess.run(
        [sys.executable, "-m", "orchestrator", "show", thread, "--db", str(served.db)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "completed" in shown.stdout and "ml-engineer" in shown.stdout
    # no workspace_root in the context: the server's default root, never its working directory
    assert {p: (served.root / thread / p).read_text() for p in SUBTASKS} == SUBTASKS


def _readme_block(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading) :]
    return section[
        section.index("```python\n") + len("```python\n") : section.index("\n```\n", section.index("```python"))
    ]


def test_the_readmes_sdk_example_runs_as_written(served: Served, tmp_path: Path) -> None:
    code = _readme_block("### Serving on LangGraph Server")
    assert "http://127.0.0.1:2024" in code and "/tmp/orchestrate-threads" in code
    code = code.replace("http://127.0.0.1:2024", served.url).replace("/tmp/orchestrate-threads", str(tmp_path))
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.count("asks: Write rag/") == 2 and ran.stdout.rstrip().endswith(FINAL)
    [thread] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert {p: (thread / p).read_text() for p in SUBTASKS} == SUBTASKS
