"""Run traces and replay on a scripted run: the trace tree, its renderers, and replay's verdicts.

The recorded run (scripted model, real graph, real tools in a temp workspace): the senior delegates a
report (the junior claims it without writing it, the evidence check overrules the reviewer's approval,
round 2 writes it and is approved) and a Task to an agent that does not exist (refused).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from orchestrator import FixedProvider, Orchestrator, Settings, UserError, load_agents
from orchestrator.cli import app
from orchestrator.graphs.permission_gate import Answer, PermissionRequest
from orchestrator.loader import AgentSet
from orchestrator.replay import Recording, areplay
from orchestrator.replay.recording import difference
from orchestrator.run_store import CallRecord, RunRecord, RunStore
from orchestrator.tools.permissions import PermissionPolicy
from orchestrator.trace import Trace, build_trace, load_trace, render_html, render_json, render_mermaid, render_tree
from tests.support.scripted_model import CLAUDE_LIKE, Call, Reply, ScriptedModel, ai, tool_call

SENIOR, JUNIOR = "senior-ml-engineer", "ml-engineer"
BRIEF = {
    "description": "write the report",
    "prompt": "Create report.md summarising the results",
    "subagent_type": JUNIOR,
}
BOGUS = {"description": "ask nobody", "prompt": "Do something", "subagent_type": "nobody"}
FINAL = "Report ready."


def _turn(agent: str, needle: str = "") -> Callable[[Call], bool]:
    return lambda c: c.agent == agent and c.purpose == "turn" and needle in " ".join(m.text for m in c.messages)


def _review(decision: str, needle: str) -> Reply:
    answer = ai("", tool_call("Verdict", {"decision": decision, "feedback": f"{decision}: looks right"}))
    return Reply(answer, when=lambda c: c.purpose == "review" and needle in c.last.text)


def _script() -> list[Reply]:
    write = tool_call("Write", {"file_path": "report.md", "content": "# Results\nAccuracy 0.91.\n"})
    return [
        Reply(ai("Delegating.", tool_call("Task", BRIEF), tool_call("Task", BOGUS)), when=_turn(SENIOR)),
        Reply(ai("I wrote report.md with the summary."), when=_turn(JUNIOR)),
        _review("approve", "(none: no tool was called)"),
        Reply(ai("", write), when=_turn(JUNIOR, "Evidence check failed")),
        Reply(ai("Wrote report.md."), when=_turn(JUNIOR, "Created file report.md")),
        _review("approve", "report.md"),
        Reply(ai(FINAL), when=_turn(SENIOR, "approved in round 2")),
    ]


def _late_script() -> list[Reply]:
    """What a live model answers from step 3 on (replay --from-step 3)."""
    return _script()[3:]


@dataclass(frozen=True)
class Recorded:
    run_id: str
    db: Path
    agents: AgentSet
    tmp: Path


@pytest.fixture
async def recorded(tmp_path: Path) -> Recorded:
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    model = ScriptedModel(_script())
    orchestrator = Orchestrator(
        agents, provider=CLAUDE_LIKE(model), workspace=workspace, permissions=PermissionPolicy(mode="acceptEdits"),
        db=tmp_path / "runs.sqlite",
    )  # fmt: skip
    result = await orchestrator.arun("write the results report", agent=SENIOR)
    orchestrator.store.close()
    model.assert_complete()
    assert result.status == "incomplete" and result.final == FINAL  # the Task to "nobody" was refused
    assert [(i["kind"], i["what"]) for i in result.issues] == [("refused", "ask nobody")]
    return Recorded(result.run_id, tmp_path / "runs.sqlite", agents, tmp_path)


def _trace(rec: Recorded) -> Trace:
    store = RunStore(rec.db)
    try:
        return load_trace(store, rec.run_id)
    finally:
        store.close()


# ---- the trace tree ----


def test_trace_tree_has_delegations_briefs_tools_and_verdicts(recorded: Recorded) -> None:
    trace = _trace(recorded)
    assert trace.route is not None and (trace.route.agent, trace.route.method) == (SENIOR, "forced")
    root = trace.root
    assert (root.agent, root.status, [c.step for c in root.calls]) == (SENIOR, "incomplete", [0, 6])
    report, bogus = root.children
    assert (report.agent, report.title, report.brief, report.status) == (
        JUNIOR, "write the report", BRIEF["prompt"], "approved",
    )  # fmt: skip
    assert [c.purpose for c in report.calls] == ["turn", "review", "turn", "turn", "review"]
    assert [(v.round, v.decision, v.by) for v in report.verdicts] == [
        (1, "revise", "evidence"),
        (2, "approve", "reviewer"),
    ]
    assert report.verdicts[0].feedback.startswith("Evidence check failed")
    assert report.verdicts[1].feedback == "approve: looks right"
    [write] = report.tools
    assert (write.name, write.ok, write.step, write.args["file_path"]) == ("Write", True, 3, "report.md")
    assert write.result is not None and "report.md" in write.result and write.at is not None
    assert (bogus.status, bogus.calls, bogus.issued_by) == ("refused", (), 0)
    assert bogus.error is not None and "no subagent named 'nobody'" in bogus.error
    assert report.issued_by == 0 and report.depth == 1 and report.cost_usd > 0
    assert report.seconds is not None and report.tokens.input > 0 and report.tokens.output > 0


def test_json_has_totals_and_every_call(recorded: Recorded) -> None:
    data = json.loads(render_json(_trace(recorded)))
    assert data["totals"]["calls"] == 7 and data["status"] == "incomplete"
    children = data["root"]["children"]
    assert [c["status"] for c in children] == ["approved", "refused"]
    assert [v["decision"] for v in children[0]["verdicts"]] == ["revise", "approve"]
    assert children[0]["calls"][0]["messages"][-1]["text"] == BRIEF["prompt"]


def test_tree_names_route_turns_tools_verdicts_and_refusals(recorded: Recorded) -> None:
    console = Console(record=True, width=200, color_system=None)
    console.print(render_tree(_trace(recorded)))
    text = console.export_text()
    for expected in (
        "route → senior-ml-engineer", "step 0 turn senior-ml-engineer", "↳ ml-engineer: write the report  approved",
        "brief: Create report.md", "✓ Write(file_path=report.md)", "verdict round 1: revise (evidence check)",
        "verdict round 2: approve", "↳ nobody: ask nobody  refused", "final: Report ready.",
    ):  # fmt: skip
        assert expected in text, expected


def test_mermaid_is_the_delegation_graph_with_escaped_labels(recorded: Recorded) -> None:
    trace = _trace(recorded)
    tricky = replace(trace.root.children[0], title='say "hi" [now] <b>')
    trace = replace(trace, root=replace(trace.root, children=(tricky, trace.root.children[1])))
    text = render_mermaid(trace)
    assert text.startswith("flowchart TD\n")
    assert '    n0 -->|"Task"| n1' in text and '    n0 -->|"Task"| n2' in text
    assert "say #34;hi#34; #91;now#93; #60;b#62;" in text and "revise → approve #40;approved#41;" in text
    assert "class n2 bad" in text and "class n1 ok" in text
    labels = [line.split('["', 1)[1] for line in text.splitlines() if '["' in line]
    assert all(label.count('"') == 1 for label in labels)  # only the closing quote


# ---- the HTML page ----


def _hostile(trace: Trace) -> Trace:
    evil = "<script>alert(1)</script>" + "x" * 1000
    child = replace(trace.root.children[0], brief=evil, title="<img src=x onerror=alert(2)>")
    return replace(trace, task=evil, root=replace(trace.root, children=(child, trace.root.children[1])))


def test_html_is_self_contained_escaped_and_collapses_long_payloads(recorded: Recorded) -> None:
    page = render_html(_hostile(_trace(recorded)))
    assert page.count("<script>") == 1 and "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.count('class="dnode"') == 3 and page.count('class="tl-row"') == 3
    assert page.count('class="tl-bar ') == 7 and page.count('class="tl-mark ') == 2
    assert "(1,025 characters)</summary>" in page  # the long brief is collapsed


# ---- replay ----


async def test_replay_reproduces_the_run_without_a_model(recorded: Recorded) -> None:
    report = await areplay(
        recorded.run_id, db=recorded.db, agents=recorded.agents, permissions=PermissionPolicy(mode="acceptEdits")
    )
    assert report.same and report.divergence is None and report.unused == ()
    assert (report.replayed, report.live, report.final, report.status) == (7, 0, FINAL, "incomplete")
    store = RunStore(recorded.db)
    assert store.run(report.run_id).options["replay_of"] == recorded.run_id
    assert [c.request_hash for c in store.calls(report.run_id)] == [
        c.request_hash for c in store.calls(recorded.run_id)
    ]
    store.close()
    assert not Path(report.workspace).exists()  # the scratch workspace is gone


async def test_a_changed_graph_is_reported_at_the_first_differing_call(recorded: Recorded) -> None:
    report = await areplay(
        recorded.run_id, db=recorded.db, agents=recorded.agents, permissions=PermissionPolicy(mode="acceptEdits"),
        settings=Settings(max_revisions=0),  # the branch now ends after the evidence check's revise
    )  # fmt: skip
    assert not report.same and report.status == "failed"
    divergence = report.divergence
    assert divergence is not None
    assert (divergence.agent, divergence.purpose, divergence.recorded_step) == (SENIOR, "turn", 6)
    assert "message 3 (tool) differs" in divergence.difference and "NOT approved" in divergence.difference
    assert report.unused == (3, 4, 5, 6)
    assert report.error is not None and "diverged at call 3" in report.error


async def test_from_step_answers_later_calls_live(recorded: Recorded) -> None:
    live = ScriptedModel(_late_script())
    report = await areplay(
        recorded.run_id, db=recorded.db, agents=recorded.agents, permissions=PermissionPolicy(mode="acceptEdits"),
        from_step=3, live=FixedProvider(live),
    )  # fmt: skip
    live.assert_complete()
    assert (report.replayed, report.live, report.final, report.unused) == (3, 4, FINAL, ())
    assert [c.purpose for c in live.calls] == ["turn", "turn", "review", "turn"]


async def test_replay_refuses_what_it_cannot_do(recorded: Recorded) -> None:
    with pytest.raises(UserError, match="--from-step needs --provider"):
        await areplay(recorded.run_id, db=recorded.db, from_step=2)
    with pytest.raises(UserError, match="between 0 and 7"):
        await areplay(recorded.run_id, db=recorded.db, from_step=9, live=FixedProvider(ScriptedModel([])))
    with pytest.raises(UserError, match="no run 'nope'"):
        await areplay("nope", db=recorded.db)


async def test_replay_answers_permission_asks_as_they_were_answered(tmp_path: Path) -> None:
    agents, workspace, db = load_agents(cwd=tmp_path, home=tmp_path), tmp_path / "ws", tmp_path / "runs.sqlite"
    workspace.mkdir()
    write = tool_call("Write", {"file_path": "notes.md", "content": "hi\n"})
    script = [Reply(ai("", write), when=_turn(SENIOR)), Reply(ai("Saved."), when=_turn(SENIOR, "notes.md"))]

    async def allow(_: PermissionRequest) -> Answer:
        return "allow"

    orchestrator = Orchestrator(
        agents, provider=FixedProvider(ScriptedModel(script)), workspace=workspace, ask=allow, db=db
    )
    recorded = await orchestrator.arun("save notes", agent=SENIOR)
    orchestrator.store.close()
    assert (workspace / "notes.md").exists() and recorded.final == "Saved."
    report = await areplay(recorded.run_id, db=db, agents=agents)  # default permissions: Write asks
    assert report.same and report.replayed == 2


def test_recording_serves_identical_requests_in_order_and_reports_unused() -> None:
    call = CallRecord("a", "turn", "m", "", 0.0, 0.1, 1, 1, 0, 0, 0.0, "h1", "{}", "{}")
    recording = Recording([call, call, replace(call, request_hash="h2")])
    assert recording.take("h1")[:2] == (0, call) and recording.take("h1")[0] == 1
    assert recording.take("zz") == (2, None, False)
    assert recording.unused() == (2,)
    partial = Recording([call, replace(call, request_hash="h2")], from_step=1)
    assert partial.take("h2") == (0, None, True) and partial.live == 1 and partial.unused() == (0,)


def test_difference_names_the_first_differing_thing() -> None:
    def message(kind: str, text: str) -> dict[str, object]:
        return {"type": kind, "data": {"content": text}}

    def request(*messages: dict[str, object], tools: tuple[str, ...] = ("Read",)) -> dict[str, object]:
        return {"model": "opus", "tools": list(tools), "tool_choice": None, "messages": list(messages)}

    base = request(message("human", "hello world"))
    assert difference(base, request(message("human", "hello world"), tools=("Read", "Write"))).startswith(
        "tools differs"
    )
    changed = request(message("human", "hello there"))
    assert difference(base, changed) == "message 0 (human) differs: recorded 'hello world', replay 'hello there'"
    longer = request(message("human", "hello world"), message("ai", "x"))
    assert "the replay sends 2 messages, the recording 1" in difference(base, longer)


def test_trace_of_hand_made_records_keeps_orphans_and_unfinished_work() -> None:
    run = RunRecord("r1", "task", "failed", 100.0, finished=105.0, error="boom")
    lost = CallRecord("ml-engineer", "turn", "m", "gone/t1/", 101.0, 1.0, 5, 2, 0, 0, 0.01, "h", "{}", "{}")
    trace = build_trace(run, [lost], [(100.5, {"event": "delegate", "agent": "ml-engineer", "call_id": "t1"})])
    [orphan] = trace.root.children  # its parent's reply was never recorded: it hangs under the top
    assert (orphan.id, orphan.agent, orphan.status, orphan.started) == ("t1", "ml-engineer", "unfinished", 100.5)
    assert trace.root.agent == "?" and trace.cost_usd == pytest.approx(0.01) and trace.ended == 105.0


# ---- the CLI ----


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> CliRunner:
    monkeypatch.setenv("HOME", str(recorded.tmp))
    monkeypatch.chdir(recorded.tmp)
    return CliRunner()


def test_cli_show_formats(cli: CliRunner, recorded: Recorded) -> None:
    db = ["--db", str(recorded.db)]
    tree = cli.invoke(app, ["show", recorded.run_id, *db])
    assert tree.exit_code == 0, tree.output
    assert "verdict round 1: revise" in tree.stdout and "↳ nobody: ask nobody" in tree.stdout
    mermaid = cli.invoke(app, ["show", recorded.run_id, "--format", "mermaid", *db])
    assert mermaid.stdout.startswith("flowchart TD")
    page = recorded.tmp / "trace.html"
    done = cli.invoke(app, ["show", recorded.run_id, "-o", str(page), *db])
    assert done.exit_code == 0 and page.read_text().startswith("<!DOCTYPE html>")
    as_json = cli.invoke(app, ["show", recorded.run_id, "--format", "json", *db])
    assert json.loads(as_json.stdout)["run_id"] == recorded.run_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "RUN", "--format", "svg"], "--format must be one of tree, json, mermaid, html"),
        (["show", "nope"], "no run 'nope'"),
        (["replay", "RUN", "--provider", "local"], "--provider goes with --from-step"),
        (["replay", "RUN", "--from-step", "1"], "--from-step needs --provider"),
        (["replay", "RUN", "--provider", "gpt", "--from-step", "1"], "--provider must be anthropic, openai or local"),
    ],
)
def test_cli_flag_errors_name_the_flag(cli: CliRunner, recorded: Recorded, args: list[str], message: str) -> None:
    args = [recorded.run_id if a == "RUN" else a for a in args]
    done = cli.invoke(app, [*args, "--db", str(recorded.db)])
    assert done.exit_code == 2 and message in " ".join(done.stderr.split()), done.stderr


def test_cli_replay_reports_same_behaviour_and_exit_0(cli: CliRunner, recorded: Recorded) -> None:
    args = ["replay", recorded.run_id, "--db", str(recorded.db), "--permission-mode", "acceptEdits", "--json"]
    done = cli.invoke(app, args)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["same"] is True and report["replayed"] == 7 and report["divergence"] is None


async def test_decisions_a_model_adapter_made_become_events_and_show_under_their_call(tmp_path: Path) -> None:
    """The local adapter's turn policy reports its decisions on the reply; the graph emits them as events."""
    decided = ai("Done.")
    decided.response_metadata = {"policy": [{"rule": "hold_answer", "detail": "no answer yet: the work is not done"}]}
    orchestrator = Orchestrator(
        load_agents(cwd=tmp_path, home=tmp_path), provider=FixedProvider(ScriptedModel([Reply(decided)])),
        workspace=tmp_path, db=tmp_path / "runs.sqlite",
    )  # fmt: skip
    with orchestrator:
        items = [item async for item in orchestrator.astream("say done", agent=SENIOR)]
        trace = load_trace(orchestrator.store, items[-1].run_id)  # type: ignore[union-attr]
    policy = [e for e in items[:-1] if isinstance(e, dict) and e["event"] == "policy"]
    assert policy == [
        {"event": "policy", "agent": SENIOR, "rule": "hold_answer", "detail": "no answer yet: the work is not done"}
    ]
    assert [e.kind for e in trace.events].count("policy") == 1
    buffer = Console(width=200, color_system=None, record=True)
    buffer.print(render_tree(trace))
    assert "policy hold_answer: no answer yet: the work is not done" in buffer.export_text()


async def test_the_routers_tiebreak_is_a_recorded_call_and_replays_from_the_recording(tmp_path: Path) -> None:
    unsure = "look at the model"  # the router is below its threshold here, so it asks the tie-break model
    choose = ai("", tool_call("choose_agent", {"agent": JUNIOR, "reason": "A quick look is routine."}))
    script = [Reply(choose, when=lambda c: c.purpose == "route"), Reply(ai("Looked."), when=_turn(JUNIOR))]
    model = ScriptedModel(script)
    db = tmp_path / "runs.sqlite"
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    with Orchestrator(agents, provider=FixedProvider(model), workspace=tmp_path, db=db) as orchestrator:
        result = await orchestrator.arun(unsure)
        calls = orchestrator.store.calls(result.run_id)
    model.assert_complete()
    assert result.route is not None and (result.route["agent"], result.route["method"]) == (JUNIOR, "tiebreak-model")
    assert [(c.agent, c.purpose) for c in calls] == [("router", "route"), (JUNIOR, "turn")]
    report = await areplay(result.run_id, db=db, agents=agents)
    assert report.same and (report.replayed, report.live) == (2, 0)
