"""The orchestration graph end to end with the scripted fake: routing, delegation over Send edges,
parallel branches, review verdicts and revisions, refusals and failures."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage

from orchestrator import load_agents
from orchestrator.graphs.permission_gate import Answer, PermissionRequest
from orchestrator.loader import AgentSet
from tests.support.graph_script import JUNIOR, SENIOR, FakeAPIError, make, review_of, task, turn, verdict
from tests.support.scripted_model import Reply, ai, tool_call


@pytest.fixture
def agents(tmp_path: Path) -> AgentSet:
    return load_agents(cwd=tmp_path, home=tmp_path)


async def test_senior_answers_without_delegating(agents: AgentSet, tmp_path: Path) -> None:
    orchestrator, model = make(agents, [Reply(ai("Use hybrid retrieval."), when=turn(SENIOR))], tmp_path)
    result = await orchestrator.arun("design a RAG pipeline", agent=SENIOR)
    model.assert_complete()
    assert (result.status, result.final, result.delegations) == ("completed", "Use hybrid retrieval.", ())
    assert result.route is not None and result.route["method"] == "forced"
    assert "Task" in model.calls[0].tool_names and "Read" in model.calls[0].tool_names
    assert result.usage["input_tokens"] > 0 and result.usage["output_tokens"] > 0


@pytest.mark.parametrize(
    ("task_text", "agent"),
    [
        ("Design the architecture for a multi-tenant feature store and plan the migration", SENIOR),
        ("Write a pytest unit test for the normalize_text function in preprocessing.py", JUNIOR),
    ],
)
async def test_router_sends_each_side_to_its_agent(
    agents: AgentSet, tmp_path: Path, task_text: str, agent: str
) -> None:
    orchestrator, model = make(agents, [Reply(ai("done"), when=turn(agent))], tmp_path)
    result = await orchestrator.arun(task_text)
    model.assert_complete()
    assert result.route is not None and result.route["agent"] == agent


async def test_two_parallel_tasks_write_files_and_are_reviewed(agents: AgentSet, tmp_path: Path) -> None:
    a = task("write loader", "Create data/loader.py containing def load(): return []")
    b = task("write config", "Create config.yaml with the line seed: 7")
    script = [
        Reply(ai("Delegating.", tool_call("Task", a), tool_call("Task", b)), when=turn(SENIOR)),
        Reply(
            ai(
                "",
                tool_call("Write", {"file_path": "data/loader.py", "content": "def load():\n    return []\n"}),
            ),
            when=turn(JUNIOR, brief="loader.py"),
        ),
        Reply(ai("Wrote data/loader.py."), when=turn(JUNIOR, brief="loader.py", after="data/loader.py")),
        Reply(
            ai("", tool_call("Write", {"file_path": "config.yaml", "content": "seed: 7\n"})),
            when=turn(JUNIOR, brief="config.yaml"),
        ),
        Reply(ai("Wrote config.yaml."), when=turn(JUNIOR, brief="config.yaml", after="config.yaml")),
        verdict("approve", brief="loader.py"),
        verdict("approve", brief="config.yaml"),
        Reply(ai("Both pieces are in place."), when=turn(SENIOR, after="approved")),
    ]
    orchestrator, model = make(agents, script, tmp_path)
    events = [e async for e in orchestrator.astream("build it", agent=SENIOR)]
    model.assert_complete()
    result = events[-1]
    assert not isinstance(result, dict)
    assert result.final == "Both pieces are in place."
    assert (tmp_path / "data" / "loader.py").read_text() == "def load():\n    return []\n"
    assert (tmp_path / "config.yaml").read_text() == "seed: 7\n"
    assert sorted((d["description"], d["status"], d["rounds"]) for d in result.delegations) == [
        ("write config", "approved", 1),
        ("write loader", "approved", 1),
    ]
    junior_first_turns = [c for c in model.calls if c.agent == JUNIOR and len(c.messages) == 2]
    assert len(junior_first_turns) == 2  # fresh context: system prompt + the brief, nothing of the senior's
    assert all("Task" not in c.tool_names for c in model.calls if c.agent == JUNIOR)
    final_senior = [c for c in model.calls if c.agent == SENIOR][-1]
    results = {m.tool_call_id: m.text for m in final_senior.tool_results}
    assert len(results) == 2 and all("[review: approved in round 1" in text for text in results.values())
    reviews = [c for c in model.calls if c.purpose == "review"]
    assert all(c.tool_choice == "Verdict" and "Write(file_path=" in c.last.text for c in reviews)
    kinds = [e["event"] for e in events[:-1] if isinstance(e, dict)]
    assert kinds.count("delegate") == 2 and kinds.count("verdict") == 2 and kinds[0] == "route"


async def test_an_orchestrator_block_closes_its_database(agents: AgentSet, tmp_path: Path) -> None:
    orchestrator, model = make(agents, [Reply(ai("Done."), when=turn(SENIOR))], tmp_path)
    async with orchestrator:
        result = await orchestrator.arun("say done", agent=SENIOR)
        assert orchestrator.store.run(result.run_id).status == "completed"
    model.assert_complete()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        orchestrator.store.run(result.run_id)


async def test_revise_round_sends_feedback_to_the_same_junior_context(agents: AgentSet, tmp_path: Path) -> None:
    brief = task("metrics", "Create metrics.py with an accuracy function")
    script = [
        Reply(ai("", tool_call("Task", brief)), when=turn(SENIOR)),
        Reply(
            ai("", tool_call("Write", {"file_path": "metrics.py", "content": "def accuracy(): ...\n"})),
            when=turn(JUNIOR),
        ),
        Reply(ai("Done: metrics.py."), when=turn(JUNIOR, after="metrics.py")),
        verdict("revise", "accuracy takes no arguments; it must take y_true and y_pred", brief="metrics.py"),
        Reply(
            ai(
                "",
                tool_call("Write", {"file_path": "metrics.py", "content": "def accuracy(y_true, y_pred): ...\n"}),
            ),
            when=lambda c: turn(JUNIOR)(c) and "y_true and y_pred" in c.last.text,
        ),
        Reply(ai("Fixed metrics.py."), when=turn(JUNIOR, after="Updated file metrics.py")),
        verdict("approve", brief="metrics.py"),
        Reply(ai("Metrics ready."), when=turn(SENIOR, after="approved in round 2")),
    ]
    orchestrator, model = make(agents, script, tmp_path)
    result = await orchestrator.arun("add metrics", agent=SENIOR)
    model.assert_complete()
    [record] = result.delegations
    assert record["rounds"] == 2 and [v["decision"] for v in record["verdicts"]] == ["revise", "approve"]
    second_round = [c for c in model.calls if c.agent == JUNIOR][2]
    assert second_round.first_human == brief["prompt"] and len(second_round.messages) > 3


async def test_claimed_but_undone_work_is_caught_by_the_evidence(agents: AgentSet, tmp_path: Path) -> None:
    brief = task("report", "Create report.md summarising the results")
    script = [
        Reply(ai("", tool_call("Task", brief)), when=turn(SENIOR)),
        Reply(ai("I wrote report.md with the summary."), when=turn(JUNIOR)),
        Reply(
            verdict("approve").respond,
            when=lambda c: review_of("report.md")(c) and "(none: no tool was called)" in c.last.text,
        ),
        Reply(
            ai("", tool_call("Write", {"file_path": "report.md", "content": "# Results\n"})),
            when=lambda c: turn(JUNIOR)(c) and "Evidence check failed" in c.last.text,
        ),
        Reply(ai("Now report.md exists."), when=turn(JUNIOR, after="report.md")),
        verdict("approve", brief="report.md"),
        Reply(ai("Report done."), when=turn(SENIOR, after="approved in round 2")),
    ]
    orchestrator, model = make(agents, script, tmp_path)
    result = await orchestrator.arun("write the report", agent=SENIOR)
    model.assert_complete()
    first = result.delegations[0]["verdicts"][0]
    assert first["decision"] == "revise" and first["by"] == "evidence"
    assert "report.md" in first["feedback"]


async def test_review_sees_absolute_paths_as_workspace_files_and_early_failures_as_moot(
    agents: AgentSet, tmp_path: Path
) -> None:
    target = f"{tmp_path}/notes.md"
    brief = task("notes", f"Create {target} with the meeting notes")
    script = [
        Reply(ai("", tool_call("Task", brief)), when=turn(SENIOR)),
        Reply(ai("", tool_call("Read", {"file_path": target})), when=turn(JUNIOR)),
        Reply(
            ai("", tool_call("Write", {"file_path": target, "content": "# Notes\n- ship it\n"})),
            when=turn(JUNIOR, after="does not exist"),
        ),
        Reply(ai(f"Wrote {target}."), when=turn(JUNIOR, after="Created file")),
        Reply(
            verdict("approve").respond,
            when=lambda c: (
                review_of("notes.md")(c)
                and "1. Read(file_path=" in c.last.text
                and "(moot now)" in c.last.text
                and re.search(r"### notes.md \(exists, \d+ bytes, 2 lines now\)", c.last.text)
                and "- no missing files" in c.last.text
            ),
        ),
        Reply(ai("Notes are in."), when=turn(SENIOR, after="approved in round 1")),
    ]
    orchestrator, model = make(agents, script, tmp_path, isolation=False)  # the junior writes here
    result = await orchestrator.arun("take notes", agent=SENIOR)
    model.assert_complete()
    assert [(v["decision"], v["by"]) for v in result.delegations[0]["verdicts"]] == [("approve", "reviewer")]


async def test_revisions_are_bounded(agents: AgentSet, tmp_path: Path) -> None:
    brief = task("plot", "Explain the plot")
    script = [
        Reply(ai("", tool_call("Task", brief)), when=turn(SENIOR)),
        *[Reply(ai(f"attempt {n}"), when=turn(JUNIOR)) for n in range(2)],
        *[verdict("revise", "not good enough") for _ in range(2)],
        Reply(ai("Gave up on the plot."), when=turn(SENIOR, after="NOT approved after 2 rounds")),
    ]
    orchestrator, model = make(agents, script, tmp_path, max_revisions=1)
    result = await orchestrator.arun("plot", agent=SENIOR)
    model.assert_complete()
    assert result.delegations[0]["status"] == "unapproved" and result.delegations[0]["rounds"] == 2


async def test_a_failing_branch_does_not_cancel_its_sibling(agents: AgentSet, tmp_path: Path) -> None:
    ok, bad = task("ok", "Say ok"), task("bad", "Say bad")
    script = [
        Reply(ai("", tool_call("Task", ok), tool_call("Task", bad)), when=turn(SENIOR)),
        Reply(ai("ok"), when=turn(JUNIOR, brief="Say ok")),
        Reply(FakeAPIError("overloaded after retries"), when=turn(JUNIOR, brief="Say bad")),
        verdict("approve"),
        Reply(ai("One of two worked."), when=turn(SENIOR, after="failed")),
    ]
    orchestrator, model = make(agents, script, tmp_path)
    result = await orchestrator.arun("two things", agent=SENIOR)
    model.assert_complete()
    assert sorted(d["status"] for d in result.delegations) == ["approved", "error"]
    senior_last = [c for c in model.calls if c.agent == SENIOR][-1]
    errors = [m for m in senior_last.tool_results if m.status == "error"]
    assert len(errors) == 1 and "overloaded after retries" in errors[0].text


async def test_top_agent_failure_ends_the_run_cleanly(agents: AgentSet, tmp_path: Path) -> None:
    orchestrator, model = make(agents, [Reply(FakeAPIError("API down"))], tmp_path)
    result = await orchestrator.arun("anything", agent=SENIOR)
    model.assert_complete()
    assert result.status == "failed" and result.error is not None and "API down" in result.error


async def test_depth_cap_withholds_task_and_refuses_it(agents: AgentSet, tmp_path: Path) -> None:
    nested = task("nested", "Plan the sub-plan", agent=SENIOR)
    deeper = task("deeper", "Go deeper", agent=JUNIOR)
    script = [
        Reply(
            ai("", tool_call("Task", nested)),
            when=lambda c: turn(SENIOR)(c) and len(c.messages) == 2 and "Plan the sub-plan" not in c.first_human,
        ),
        Reply(ai("", tool_call("Task", deeper)), when=turn(SENIOR, brief="Plan the sub-plan")),
        Reply(ai("Did it myself."), when=turn(SENIOR, brief="Plan the sub-plan", after="exceeds the cap")),
        verdict("approve"),
        Reply(ai("Planned."), when=turn(SENIOR, after="approved")),
    ]
    orchestrator, model = make(agents, script, tmp_path, max_depth=1)
    result = await orchestrator.arun("plan", agent=SENIOR)
    model.assert_complete()
    nested_calls = [c for c in model.calls if c.agent == SENIOR and "Plan the sub-plan" in c.first_human]
    assert nested_calls and all("Task" not in c.tool_names for c in nested_calls)
    assert [d["status"] for d in result.delegations] == ["approved", "refused"]


async def test_junior_without_task_cannot_delegate(agents: AgentSet, tmp_path: Path) -> None:
    script = [
        Reply(ai("", tool_call("Task", task("x", "Do x", agent=SENIOR))), when=turn(JUNIOR)),
        Reply(ai("Did x."), when=turn(JUNIOR, after="cannot delegate")),
    ]
    orchestrator, model = make(agents, script, tmp_path)
    result = await orchestrator.arun("do x", agent=JUNIOR)
    model.assert_complete()
    assert result.final == "Did x." and result.delegations[0]["status"] == "refused"


async def test_identical_brief_is_refused_in_the_same_turn_and_later(agents: AgentSet, tmp_path: Path) -> None:
    same = task("same", "Count the rows of data.csv")
    script = [
        Reply(ai("", tool_call("Task", same), tool_call("Task", same)), when=turn(SENIOR)),
        Reply(ai("42 rows"), when=turn(JUNIOR)),
        verdict("approve"),
        Reply(
            ai("", tool_call("Task", {**same, "prompt": "  count the rows of   data.csv "})),
            when=turn(SENIOR, after="approved"),
        ),
        Reply(ai("42."), when=turn(SENIOR, after="already delegated in this run")),
    ]
    orchestrator, model = make(agents, script, tmp_path)
    result = await orchestrator.arun("count", agent=SENIOR)
    model.assert_complete()
    assert sorted(d["status"] for d in result.delegations) == ["approved", "refused", "refused"]


async def test_model_fixable_tool_errors_return_as_text(agents: AgentSet, tmp_path: Path) -> None:
    script = [
        Reply(
            ai(
                "",
                tool_call("Read", {"file_path": "missing.txt"}),
                tool_call("Read", {}),
                tool_call("TodoWrite", {"todos": []}),
            ),
            when=turn(JUNIOR),
        ),
        Reply(ai("Nothing to read."), when=turn(JUNIOR, after="Error")),
    ]
    orchestrator, model = make(agents, script, tmp_path)
    result = await orchestrator.arun("read it", agent=JUNIOR)
    model.assert_complete()
    texts = [m.text for m in model.calls[1].tool_results]
    assert all(isinstance(m, ToolMessage) and m.status == "error" for m in model.calls[1].tool_results)
    assert "missing.txt" in texts[0] and "file_path" in texts[1] and "not available to ml-engineer" in texts[2]
    assert result.final == "Nothing to read."


def test_unknown_agent_names_the_argument(agents: AgentSet, tmp_path: Path) -> None:
    orchestrator, _ = make(agents, [], tmp_path)
    with pytest.raises(Exception, match="unknown agent 'nobody' \\(argument agent\\)"):
        orchestrator.run("x", agent="nobody")


def _write_script(path: str) -> list[Reply]:
    """Senior delegates one file to the junior, which writes it and reports; the review approves."""
    return [
        Reply(ai("", tool_call("Task", task("write", f"Create {path} with hello"))), when=turn(SENIOR)),
        Reply(ai("", tool_call("Write", {"file_path": path, "content": "hello\n"})), when=turn(JUNIOR)),
        Reply(ai(f"Wrote {path}."), when=turn(JUNIOR, after="Created file")),
        verdict("approve", brief=path),
        Reply(ai("Done."), when=turn(SENIOR, after="approved")),
    ]


async def test_a_junior_write_asks_from_inside_its_branch_and_resumes_when_approved(
    agents: AgentSet, tmp_path: Path
) -> None:
    asked: list[PermissionRequest] = []

    async def approve(request: PermissionRequest) -> Answer:
        asked.append(request)
        return "allow"

    orchestrator, model = make(agents, _write_script("notes.txt"), tmp_path, mode="default", ask=approve)
    events = [e async for e in orchestrator.astream("write notes", agent=SENIOR)]
    model.assert_complete()
    assert (tmp_path / "notes.txt").read_text() == "hello\n"
    [request] = asked
    assert (request["tool"], request["agent"], request["depth"], request["summary"]) == (
        "Write",
        JUNIOR,
        1,
        "Write notes.txt",
    )
    assert "acceptEdits" in request["hint"] and request["rule"] == "Edit(./notes.txt)"
    assert any(isinstance(e, dict) and e["event"] == "permission" for e in events)
    junior_turns = [c for c in model.calls if c.agent == JUNIOR]
    assert len(junior_turns) == 2  # the interrupted turn was not asked again of the model
    delegated = [e for e in events if isinstance(e, dict) and e["event"] == "delegate"]
    assert len(delegated) == 1  # the delegate node re-runs on resume; its announcement is not repeated


async def test_without_an_ask_handler_the_ask_is_denied_and_only_the_user_hears_the_way_out(
    agents: AgentSet, tmp_path: Path
) -> None:
    script = [
        Reply(ai("", tool_call("Write", {"file_path": "x.txt", "content": "x"})), when=turn(JUNIOR)),
        Reply(ai("Could not write."), when=turn(JUNIOR, after="Permission denied")),
    ]
    orchestrator, model = make(agents, script, tmp_path, mode="default")
    events = [e async for e in orchestrator.astream("write x", agent=JUNIOR)]
    model.assert_complete()
    [denial] = model.calls[1].tool_results
    assert denial.status == "error" and denial.text.startswith("Permission denied: Write x.txt was not approved")
    assert not any(way in denial.text for way in ("acceptEdits", "permissions.allow", "settings.json"))
    [asked] = [e for e in events if isinstance(e, dict) and e["event"] == "permission"]
    assert asked["answer"] == "deny" and "--permission-mode acceptEdits" in asked["hint"]
    assert not (tmp_path / "x.txt").exists()


async def test_always_allows_exactly_the_rule_the_user_was_shown(agents: AgentSet, tmp_path: Path) -> None:
    shown: list[str] = []

    async def always(request: PermissionRequest) -> Answer:
        shown.append(request["rule"])
        return "always"

    write = {"file_path": "a.txt", "content": "a"}
    script = [
        Reply(ai("", tool_call("Write", write)), when=turn(JUNIOR)),
        Reply(
            ai("", tool_call("Edit", {"file_path": "a.txt", "old_string": "a", "new_string": "b"})),
            when=turn(JUNIOR, after="Created"),
        ),
        Reply(ai("", tool_call("Write", {"file_path": "b.txt", "content": "b"})), when=turn(JUNIOR, after="Edited")),
        Reply(ai("Done."), when=turn(JUNIOR, after="b.txt")),
    ]
    orchestrator, model = make(agents, script, tmp_path, mode="default", ask=always)
    await orchestrator.arun("write two", agent=JUNIOR)
    model.assert_complete()
    assert shown == ["Edit(./a.txt)", "Edit(./b.txt)"]  # the Edit of a.txt was covered; b.txt was asked again
    assert (tmp_path / "a.txt").read_text() == "b" and (tmp_path / "b.txt").exists()


async def test_plan_mode_refuses_writes_without_asking(agents: AgentSet, tmp_path: Path) -> None:
    async def never(request: PermissionRequest) -> Answer:
        raise AssertionError(f"plan mode must not ask: {request}")

    script = [
        Reply(ai("", tool_call("Write", {"file_path": "p.txt", "content": "p"})), when=turn(JUNIOR)),
        Reply(ai("Read-only."), when=turn(JUNIOR, after="plan")),
    ]
    orchestrator, model = make(agents, script, tmp_path, mode="plan", ask=never)
    await orchestrator.arun("write p", agent=JUNIOR)
    model.assert_complete()
    assert not (tmp_path / "p.txt").exists()


def _misread_review(feedback: str) -> Reply:
    """A revise that says notes.md is empty, for a first review (no correction in its context yet)."""
    answer = ai("", tool_call("Verdict", {"decision": "revise", "feedback": feedback}))
    return Reply(answer, when=lambda c: review_of("notes.md")(c) and "contradicts your verdict" not in c.last.text)


def _corrected(decision: str, feedback: str) -> Reply:
    answer = ai("", tool_call("Verdict", {"decision": decision, "feedback": feedback}))
    fact = "The evidence check contradicts your verdict: notes.md exists, 18 bytes, 2 lines"
    return Reply(answer, when=lambda c: c.purpose == "review" and fact in c.last.text)


def _notes_script(*reviews: Reply, rounds: int = 1) -> list[Reply]:
    brief = task("notes", "Create notes.md with the meeting notes")
    write = ai("", tool_call("Write", {"file_path": "notes.md", "content": "# Notes\n- ship it\n"}))
    return [
        Reply(ai("", tool_call("Task", brief)), when=turn(SENIOR)),
        *[Reply(write, when=turn(JUNIOR)) for _ in range(rounds)],
        *[Reply(ai("Wrote notes.md."), when=turn(JUNIOR, after="notes.md")) for _ in range(rounds)],
        *reviews,
        Reply(ai("Notes are in."), when=turn(SENIOR, after="[review:")),
    ]


async def test_a_review_that_misreads_a_file_is_asked_again_with_the_files_facts(
    agents: AgentSet, tmp_path: Path
) -> None:
    script = _notes_script(_misread_review("notes.md is empty."), _corrected("approve", "Right, it has the notes."))
    orchestrator, model = make(agents, script, tmp_path)
    result = await orchestrator.arun("take notes", agent=SENIOR)
    model.assert_complete()
    [delegation] = result.delegations
    assert delegation["status"] == "approved" and delegation["rounds"] == 1
    assert [(v["decision"], v["by"]) for v in delegation["verdicts"]] == [("approve", "reviewer")]


async def test_a_review_that_misreads_a_file_twice_is_overruled_by_the_files_facts(
    agents: AgentSet, tmp_path: Path
) -> None:
    script = _notes_script(
        _misread_review("notes.md does not exist."), _corrected("revise", "The file notes.md is still empty."),
        _misread_review("notes.md is empty."), _corrected("approve", "Fine now."), rounds=2,
    )  # fmt: skip
    orchestrator, model = make(agents, script, tmp_path)
    result = await orchestrator.arun("take notes", agent=SENIOR)
    model.assert_complete()
    first, second = result.delegations[0]["verdicts"]
    assert first["by"] == "evidence" and first["decision"] == "revise"
    assert first["feedback"].startswith("Evidence check: notes.md exists, 18 bytes, 2 lines (the review said:")
    assert second == {"decision": "approve", "feedback": "Fine now.", "by": "reviewer"}
