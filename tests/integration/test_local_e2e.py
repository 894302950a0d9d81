"""The whole graph on the real local models, offline: the task is routed to the senior (Qwen2.5-Coder-1.5B),
which delegates with Task; the junior (0.5B) works with its tools; the senior reviews with Verdict and
answers. Assertions are about behaviour (who did what), never about wording.

Slow (4-6 minutes on two cores), marked `slow` so a quick loop can leave it out (`pytest -m "not slow"`).
It needs the pulled models: `make test` runs `orchestrate models pull` first (a no-op when the verified
files are in the cache), and without them the test fails saying so rather than skipping. Sampling is
greedy with a fixed seed, so a run is repeatable for a given prompt; the workspace path is part of the
prompt, so runs in different temporary directories are different (and equally valid) samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, RunResult, load_agents
from orchestrator.claims import false_claims
from orchestrator.graphs.evidence import contradicted_claims
from orchestrator.graphs.progress import ProgressEvent
from orchestrator.local import LocalProvider
from orchestrator.local.gguf import JUNIOR, SENIOR, cache_path, verify
from orchestrator.local.policy import is_orchestration_text
from orchestrator.tools.permissions import PermissionPolicy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    for spec in (SENIOR, JUNIOR):
        path = cache_path(spec)
        if not (path.is_file() and verify(spec, path)):
            pytest.fail(f"local {spec.key} model not pulled: run `orchestrate models pull` (make test does)")
    return LocalProvider()


async def run(task: str, workspace: Path, provider: LocalProvider) -> tuple[RunResult, list[ProgressEvent]]:
    orchestrator = Orchestrator(
        load_agents(cwd=workspace, home=workspace),
        provider=provider,
        workspace=workspace,
        permissions=PermissionPolicy(mode="acceptEdits"),
        db=workspace / ".runs.db",
    )
    events: list[ProgressEvent] = []
    async for item in orchestrator.astream(task):
        if isinstance(item, RunResult):
            return item, events
        events.append(item)
    raise AssertionError("the run ended without a result")


def where(delegation: Mapping[str, Any], workspace: Path) -> Path:
    """Where a delegation's files are: the workspace once its branch merged, else the branch itself."""
    branch = delegation["branch"]
    return workspace if branch["merge"] == "merged" else Path(branch["where"])


async def test_a_design_task_is_delegated_worked_with_tools_reviewed_and_answered(
    tmp_path: Path, provider: LocalProvider
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    result, events = await run("design a RAG pipeline", workspace, provider)

    # honest outcome: completed only with nothing unapproved or denied, else incomplete with each one listed
    unapproved = [d["id"] for d in result.delegations if d["status"] != "approved"]
    assert result.status == ("incomplete" if result.issues else "completed"), result.error
    assert [i["call_id"] for i in result.issues if i["kind"] == "unapproved"] == unapproved
    assert result.route is not None
    assert result.route["agent"] == "senior-ml-engineer"
    delegations = [d for d in result.delegations if d["agent"] == "ml-engineer"]
    assert delegations, "the senior did not delegate"
    assert all(d["verdicts"] for d in delegations), "a delegation came back without a review"
    assert {v["decision"] for d in delegations for v in d["verdicts"]} <= {"approve", "revise"}
    junior_tools = [e["detail"] for e in events if e["event"] == "tool" and e["agent"] == "ml-engineer"]
    assert {"Read", "Write"} & set(junior_tools), f"the junior used no file tool: {junior_tools}"
    written = [where(d, workspace) / path for d in delegations for path in d["files_changed"]]
    assert written, "the junior wrote no file"
    assert all(path.is_file() for path in written)
    # approved work merged into the workspace; unapproved work stays in its own branch
    assert all(d["branch"]["merge"] == ("merged" if d["status"] == "approved" else "not merged") for d in delegations)
    assert result.final.strip()
    # the senior kept its own job: it handed over one piece, not its whole task
    assert all(d["description"].casefold() != "design a rag pipeline" for d in delegations)
    # honesty: the answer claims nothing the records contradict, and states each delegation's outcome
    assert false_claims(result.final, result.delegations, workspace=workspace) == []
    stated = result.final.partition("## Delegated work")[2]
    assert all(f"{d['agent']}: {d['description']}: " in stated for d in delegations), result.final
    # the reviews' last word about a file matches the file (or the evidence check overruled it)
    for d in delegations:
        last = d["verdicts"][-1]
        assert last["by"] == "evidence" or contradicted_claims(last["feedback"], where(d, workspace)) == [], last
    # clean artifacts: no file a junior wrote carries the orchestration's own text
    for path in written:
        lines = path.read_text(errors="replace").splitlines()
        assert not [line for line in lines if is_orchestration_text(line)], path
