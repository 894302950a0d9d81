"""Each writing junior works in its own workspace (a git worktree, or a snapshot outside git), and approved
work merges back: real git, real files, the real graph with the scripted fake model. Git has no identity
configured here (as on CI): the orchestrator's commits carry their own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner

from orchestrator import load_agents
from orchestrator.cli.app import app
from orchestrator.isolation import AUTHOR, branch_diff, commit_round, open_branch, remove_branch
from orchestrator.trace import load_trace, render_html
from tests.support.graph_script import JUNIOR, SENIOR, make, review_of, task, turn, verdict
from tests.support.scripted_model import Reply, ai, tool_call

Kind = Literal["git", "plain"]
LOWER_LR, FIX_SEED = task("lower lr", "In train.py set lr to 0.01"), task("fix seed", "In train.py set seed to 7")
LR_SMALL, LR_LARGE = task("lr small", "In train.py set lr to 0.01"), task("lr large", "In train.py set lr to 0.5")
TRAIN = "lr = 0.1\nepochs = 10\nwarmup = 100\ndecay = 0.01\nclip = 1.0\naccum = 1\nbatch = 32\nseed = 0\n"


@pytest.fixture(autouse=True)
def _no_git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _workspace(tmp_path: Path, kind: Kind, files: dict[str, str]) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    for name, text in files.items():
        (workspace / name).write_text(text)
    if kind == "git":
        _git("init", "-q", cwd=workspace)
        _git("add", "-A", cwd=workspace)
        _git("-c", "user.name=u", "-c", "user.email=u@x", "commit", "--allow-empty", "-qm", "start", cwd=workspace)
    return workspace


def _edit(brief: str, old: str, new: str) -> list[Reply]:
    """A junior (the one whose brief contains `brief`) that reads train.py and replaces one line."""
    return [
        Reply(ai("", tool_call("Read", {"file_path": "train.py"})), when=turn(JUNIOR, brief=brief)),
        Reply(
            ai("", tool_call("Edit", {"file_path": "train.py", "old_string": old, "new_string": new})),
            when=turn(JUNIOR, brief=brief, after="lr = 0.1"),
        ),
        Reply(ai(f"Changed {old} to {new} in train.py."), when=turn(JUNIOR, brief=brief, after="Edited train.py")),
    ]


@pytest.mark.parametrize("kind", ["git", "plain"])
async def test_two_parallel_juniors_editing_different_hunks_of_one_file_are_both_merged(
    tmp_path: Path, kind: Kind
) -> None:
    workspace = _workspace(tmp_path, kind, {"train.py": TRAIN})
    status_before = _git("status", "--porcelain", cwd=workspace) if kind == "git" else ""
    script = [
        Reply(ai("", tool_call("Task", LOWER_LR), tool_call("Task", FIX_SEED)), when=turn(SENIOR)),
        *_edit("lr to 0.01", "lr = 0.1", "lr = 0.01"),
        *_edit("seed to 7", "seed = 0", "seed = 7"),
        verdict("approve", brief="lr to 0.01"),
        verdict("approve", brief="seed to 7"),
        Reply(ai("Both changes are in."), when=turn(SENIOR, after="merged into the workspace")),
    ]
    orchestrator, model = make(load_agents(cwd=tmp_path, home=tmp_path), script, workspace)
    result = await orchestrator.arun("tune train.py", agent=SENIOR)
    model.assert_complete()
    assert result.status == "completed"
    both = TRAIN.replace("lr = 0.1", "lr = 0.01").replace("seed = 0", "seed = 7")
    assert (workspace / "train.py").read_text() == both
    for record in result.delegations:
        branch = record["branch"]
        assert branch["kind"] == ("worktree" if kind == "git" else "snapshot")
        assert branch["merge"] == "merged"
        assert branch["changes"] == [{"status": "modified", "path": "train.py"}]
        assert not Path(branch["where"]).exists()  # cleaned up after the merge
    if kind == "git":  # the user's repository: HEAD, index and config as they were; no branch left over
        assert _git("log", "--format=%s", cwd=workspace).split() == ["start"]
        assert _git("status", "--porcelain", cwd=workspace) == status_before + " M train.py\n"
        assert _git("branch", "--list", "orchestrate/*", cwd=workspace) == ""
        assert _git("worktree", "list", cwd=workspace).count("\n") == 1
        assert not (tmp_path / "no-gitconfig").exists()


@pytest.mark.parametrize("kind", ["git", "plain"])
async def test_two_juniors_writing_the_same_lines_conflict_and_both_versions_are_kept(
    tmp_path: Path, kind: Kind
) -> None:
    workspace = _workspace(tmp_path, kind, {"train.py": TRAIN})
    script = [
        Reply(ai("", tool_call("Task", LR_SMALL), tool_call("Task", LR_LARGE)), when=turn(SENIOR)),
        *_edit("lr to 0.01", "lr = 0.1", "lr = 0.01"),
        *_edit("lr to 0.5", "lr = 0.1", "lr = 0.5"),
        verdict("approve", brief="lr to 0.01"),
        verdict("approve", brief="lr to 0.5"),
        Reply(ai("One lr change conflicted; I will pick one."), when=turn(SENIOR, after="CONFLICT")),
    ]
    orchestrator, model = make(load_agents(cwd=tmp_path, home=tmp_path), script, workspace)
    result = await orchestrator.arun("tune lr", agent=SENIOR)
    model.assert_complete()
    outcomes = {r["branch"]["merge"]: r for r in result.delegations}
    assert set(outcomes) == {"merged", "conflict"}
    assert result.status == "incomplete"  # approved work that did not land is an issue of the run
    assert [(i["kind"], i["what"]) for i in result.issues] == [("conflict", outcomes["conflict"]["description"])]
    merged, conflicted = outcomes["merged"], outcomes["conflict"]
    versions = {"lr small": "lr = 0.01", "lr large": "lr = 0.5"}
    landed = (workspace / "train.py").read_text()
    assert landed == TRAIN.replace("lr = 0.1", versions[merged["description"]])  # exactly one, never a mix
    kept = conflicted["branch"]
    assert kept["conflicts"] == ["train.py"] and kept["kept"]
    theirs = _git("show", f"{kept['commit']}:train.py", cwd=Path(kept["repo"]))  # the workspace is the repo's top
    assert theirs == TRAIN.replace("lr = 0.1", versions[conflicted["description"]])
    assert (Path(kept["where"]) / "train.py").read_text() == theirs
    senior_last = next(c for c in reversed(model.calls) if c.agent == SENIOR and c.purpose == "turn")
    conflict_result = next(m.text for m in senior_last.tool_results if "CONFLICT" in m.text)
    assert "<<<<<<< workspace" in conflict_result and ">>>>>>> branch" in conflict_result
    assert kept["where"] in conflict_result and kept["ref"] in conflict_result
    author = _git("log", "-1", "--format=%an <%ae>", kept["commit"], cwd=Path(kept["repo"])).strip()
    assert author == f"{AUTHOR[0]} <{AUTHOR[1]}>"


@pytest.mark.parametrize("kind", ["git", "plain"])
async def test_a_junior_whose_write_failed_is_sent_back_though_the_file_exists_from_before(
    tmp_path: Path, kind: Kind
) -> None:
    workspace = _workspace(tmp_path, kind, {"report.md": "# old report\n"})
    brief = task("report", "Create report.md with the eval results")
    script = [
        Reply(ai("", tool_call("Task", brief)), when=turn(SENIOR)),
        Reply(ai("", tool_call("Write", {"file_path": "../report.md", "content": "x"})), when=turn(JUNIOR)),
        Reply(ai("Wrote report.md."), when=turn(JUNIOR, after="outside the workspace")),
        Reply(
            verdict("approve").respond,  # a lenient reviewer; the diff overrules it
            when=lambda c: (
                review_of("report.md")(c) and "(empty: this branch created, changed and deleted no file)" in c.last.text
            ),
        ),
        Reply(
            ai("", tool_call("Read", {"file_path": "report.md"})),
            when=lambda c: c.agent == JUNIOR and "did not create or change it" in c.last.text,
        ),
        Reply(
            ai("", tool_call("Write", {"file_path": "report.md", "content": "# Eval\nacc 0.91\n"})),
            when=turn(JUNIOR, after="# old report"),
        ),
        Reply(ai("Rewrote report.md."), when=turn(JUNIOR, after="Updated file report.md")),
        Reply(verdict("approve").respond, when=lambda c: review_of("report.md")(c) and ": modified" in c.last.text),
        Reply(ai("Report done."), when=turn(SENIOR, after="approved in round 2")),
    ]
    orchestrator, model = make(load_agents(cwd=tmp_path, home=tmp_path), script, workspace, max_revisions=1)
    result = await orchestrator.arun("write the report", agent=SENIOR)
    model.assert_complete()
    [record] = result.delegations
    assert [(v["decision"], v["by"]) for v in record["verdicts"]] == [("revise", "evidence"), ("approve", "reviewer")]
    assert (workspace / "report.md").read_text() == "# Eval\nacc 0.91\n"


def _notes(review: Reply, after: str, final: str) -> list[Reply]:
    """A junior writes notes.md and reports; `review` judges it; the senior says `final` once it reads `after`."""
    return [
        Reply(ai("", tool_call("Task", task("notes", "Create notes.md with the plan"))), when=turn(SENIOR)),
        Reply(ai("", tool_call("Write", {"file_path": "notes.md", "content": "plan\n"})), when=turn(JUNIOR)),
        Reply(ai("Wrote notes.md."), when=turn(JUNIOR, after="notes.md")),
        review,
        Reply(ai(final), when=turn(SENIOR, after=after)),
    ]


def _thin_notes(after: str) -> list[Reply]:
    return _notes(verdict("revise", "too thin"), after, "Not good enough yet.")


async def test_an_unapproved_branch_is_kept_unmerged_and_listed(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, "git", {})
    script = _thin_notes(after="not merged (unapproved)")
    orchestrator, model = make(load_agents(cwd=tmp_path, home=tmp_path), script, workspace, max_revisions=0)
    result = await orchestrator.arun("plan", agent=SENIOR)
    model.assert_complete()
    branch = result.delegations[0]["branch"]
    assert branch["merge"] == "not merged" and branch["kept"]
    assert not (workspace / "notes.md").exists()
    assert (Path(branch["where"]) / "notes.md").read_text() == "plan\n"
    assert "notes.md" not in result.files_changed
    listed = CliRunner().invoke(app, ["branches", result.run_id, "--diff"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].endswith("ml-engineer: notes  unapproved, not merged") and lines[1] == "    added notes.md"
    assert branch["where"] in lines[2] and "+plan" in listed.output
    trace = load_trace(orchestrator.store, result.run_id)
    [node] = trace.root.children
    assert (node.merge, node.changes) == ("not merged", 1)
    assert "not merged; 1 file(s) added, modified or deleted" in render_html(trace)


async def test_merge_unapproved_and_keep_branches_are_the_callers_choice(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, "plain", {})
    script = _thin_notes(after="merged into the workspace")
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    orchestrator, model = make(agents, script, workspace, max_revisions=0, merge_unapproved=True, keep_branches=True)
    result = await orchestrator.arun("plan", agent=SENIOR)
    model.assert_complete()
    branch = result.delegations[0]["branch"]
    assert (branch["merge"], branch["kept"]) == ("merged", True)
    assert (workspace / "notes.md").read_text() == "plan\n"
    assert (Path(branch["where"]) / "notes.md").read_text() == "plan\n"  # kept after the merge


def test_a_plain_workspace_over_the_snapshot_cap_is_refused_naming_it(tmp_path: Path) -> None:
    from orchestrator.isolation import WorkspaceTooLarge, open_branch

    workspace = _workspace(tmp_path, "plain", {"data.bin": "x" * 4096})
    with pytest.raises(WorkspaceTooLarge, match=f"workspace {workspace} holds over"):
        open_branch(workspace, tmp_path / "home", call_id="c1", ref="orchestrate/r/c1", cap=1024)
    assert os.listdir(workspace) == ["data.bin"]


async def test_without_git_juniors_share_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.graphs.isolated import git_missing

    workspace = _workspace(tmp_path, "plain", {})
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    git_missing.cache_clear()
    script = _notes(verdict("approve"), "approved in round 1", "Done.")
    orchestrator, model = make(load_agents(cwd=tmp_path, home=tmp_path), script, workspace)
    try:
        result = await orchestrator.arun("plan", agent=SENIOR)
    finally:
        git_missing.cache_clear()
    model.assert_complete()
    assert "branch" not in result.delegations[0]
    assert (workspace / "notes.md").read_text() == "plan\n"


def test_a_bad_merge_flag_is_one_line_naming_it(tmp_path: Path) -> None:
    refused = CliRunner().invoke(app, ["run", "--workspace", str(tmp_path), "--merge", "sometimes", "plan"])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert refused.output.strip().splitlines()[-1].endswith("--merge must be approved or unapproved, not 'sometimes'")


@pytest.mark.parametrize("ignored", ["/out/", "results/"])
async def test_files_git_ignores_are_still_the_branchs_work(tmp_path: Path, ignored: str) -> None:
    """A workspace git ignores (make run's out/), or a file it ignores, is reviewed and merged like any."""
    repo = _workspace(tmp_path, "git", {".gitignore": f"{ignored}\n"})
    workspace = repo / "out" if ignored == "/out/" else repo
    workspace.mkdir(exist_ok=True)
    brief = task("metrics", "Create results/metrics.json with the scores")
    write = tool_call("Write", {"file_path": "results/metrics.json", "content": '{"acc": 0.9}\n'})
    script = [
        Reply(ai("", tool_call("Task", brief)), when=turn(SENIOR)),
        Reply(ai("", write), when=turn(JUNIOR)),
        Reply(ai("Wrote results/metrics.json."), when=turn(JUNIOR, after="metrics.json")),
        Reply(verdict("approve").respond, when=lambda c: review_of("metrics.json")(c) and ": added" in c.last.text),
        Reply(ai("Done."), when=turn(SENIOR, after="merged into the workspace")),
    ]
    orchestrator, model = make(load_agents(cwd=tmp_path, home=tmp_path), script, workspace)
    result = await orchestrator.arun("score it", agent=SENIOR)
    model.assert_complete()
    assert result.status == "completed"
    assert result.delegations[0]["branch"]["changes"] == [{"status": "added", "path": "results/metrics.json"}]
    assert (workspace / "results/metrics.json").read_text() == '{"acc": 0.9}\n'


@pytest.mark.parametrize("kind", ["git", "plain"])
def test_a_round_that_changed_nothing_keeps_the_last_commit_and_a_change_makes_one(tmp_path: Path, kind: Kind) -> None:
    workspace = _workspace(tmp_path, kind, {"train.py": TRAIN})
    branch = open_branch(workspace, tmp_path / "home", call_id="c1", ref="orchestrate/r/c1")
    first = commit_round(branch)
    assert first == branch.base and branch_diff(branch, first) == []
    Path(branch.workspace, "train.py").write_text(TRAIN.replace("lr = 0.1", "lr = 0.01"))
    Path(branch.workspace, "notes.md").write_text("lr lowered\n")
    second = commit_round(branch)
    assert second != first and commit_round(branch) == second
    assert sorted((c.status, c.path) for c in branch_diff(branch, second)) == [
        ("added", "notes.md"),
        ("modified", "train.py"),
    ]
    Path(branch.workspace, "notes.md").unlink()
    third = commit_round(branch)
    assert [(c.status, c.path) for c in branch_diff(branch, third)] == [("modified", "train.py")]


def test_removing_a_branch_removes_its_worktree_and_ref_only_even_once_its_tree_is_gone(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, "git", {"train.py": TRAIN})
    kept, gone = (open_branch(workspace, tmp_path / c, call_id=c, ref=f"orchestrate/r/{c}") for c in ("c1", "c2"))
    shutil.rmtree(gone.root)  # deleted by hand: git still lists it
    remove_branch(gone)
    listed = _git("worktree", "list", "--porcelain", cwd=workspace)
    assert f"worktree {kept.root}\n" in listed and gone.root not in listed
    assert _git("for-each-ref", "--format=%(refname:short)", "refs/heads/orchestrate", cwd=workspace).split() == [
        kept.ref
    ]
    assert Path(kept.workspace, "train.py").read_text() == TRAIN
    remove_branch(kept)
    assert _git("worktree", "list", "--porcelain", cwd=workspace).count("worktree ") == 1
    assert not Path(kept.root).exists() and _git("branch", "--list", "orchestrate/*", cwd=workspace) == ""


def test_a_repository_without_commits_branches_off_its_files_and_keeps_its_index(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "train.py").write_text(TRAIN)
    _git("init", "-q", cwd=workspace)
    branch = open_branch(workspace, tmp_path / "home", call_id="c1", ref="orchestrate/r/c1")
    assert branch.kind == "worktree"
    assert _git("show", f"{branch.base}:train.py", cwd=workspace) == TRAIN
    assert _git("status", "--porcelain", cwd=workspace).splitlines() == ["?? train.py"]  # nothing staged for the user
    Path(branch.workspace, "train.py").write_text(TRAIN.replace("seed = 0", "seed = 7"))
    assert [(c.status, c.path) for c in branch_diff(branch, commit_round(branch))] == [("modified", "train.py")]


@pytest.mark.parametrize("kind", ["git", "plain"])
async def test_what_merges_is_the_commit_the_review_judged(tmp_path: Path, kind: Kind) -> None:
    from orchestrator.graphs.isolated import finish_branch

    workspace = _workspace(tmp_path, kind, {"train.py": TRAIN})
    branch = open_branch(workspace, tmp_path / "home", call_id="c1", ref="orchestrate/r/c1")
    Path(branch.workspace, "train.py").write_text(TRAIN.replace("lr = 0.1", "lr = 0.01"))
    reviewed = commit_round(branch)
    Path(branch.workspace, "train.py").write_text(TRAIN.replace("lr = 0.1", "lr = 9.9"))  # after the review
    record, conflict = await finish_branch(branch, workspace, reviewed, [], merge=True, keep=False)
    assert (record["merge"], record["commit"], conflict) == ("merged", reviewed, "")
    assert "lr = 0.01\n" in (workspace / "train.py").read_text()


@pytest.mark.parametrize("kind", ["git", "plain"])
async def test_a_writing_junior_that_uses_no_tool_makes_no_branch(tmp_path: Path, kind: Kind) -> None:
    workspace = _workspace(tmp_path, kind, {"train.py": TRAIN})
    branches = tmp_path / "branches"
    script = [
        Reply(ai("", tool_call("Task", task("lr", "Which learning rate does train.py use?"))), when=turn(SENIOR)),
        Reply(ai("It uses 0.1, as the brief quotes."), when=turn(JUNIOR)),
        verdict("approve"),
        Reply(ai("0.1."), when=turn(SENIOR, after="files changed: none]")),
    ]
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    orchestrator, model = make(agents, script, workspace, branches_dir=branches)
    result = await orchestrator.arun("lr?", agent=SENIOR)
    model.assert_complete()
    [delegation] = result.delegations
    assert delegation["status"] == "approved" and "branch" not in delegation
    assert not branches.exists()  # nothing copied, committed or removed
    if kind == "git":
        assert _git("for-each-ref", "refs/heads/orchestrate", cwd=workspace) == ""
        assert _git("worktree", "list", "--porcelain", cwd=workspace).count("worktree ") == 1


async def test_a_junior_whose_branch_cannot_be_made_fails_alone_at_its_first_tool_call(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, "plain", {"train.py": TRAIN})
    (tmp_path / "a-file").write_text("")
    briefs = task("notes", "Create notes.md with the plan"), task("lr", "Which learning rate does train.py use?")
    script = [
        Reply(ai("", *(tool_call("Task", brief) for brief in briefs)), when=turn(SENIOR)),
        Reply(ai("", tool_call("Write", {"file_path": "notes.md", "content": "x"})), when=turn(JUNIOR, brief="notes")),
        Reply(ai("It uses 0.1."), when=turn(JUNIOR, brief="learning rate")),
        verdict("approve"),
        Reply(ai("Notes failed."), when=turn(SENIOR, after="a workspace of its own")),
    ]
    agents = load_agents(cwd=tmp_path, home=tmp_path)
    orchestrator, model = make(agents, script, workspace, branches_dir=tmp_path / "a-file" / "branches")
    result = await orchestrator.arun("plan", agent=SENIOR)
    model.assert_complete()
    failed, answered = sorted(result.delegations, key=lambda d: d["description"] != "notes")
    assert failed["status"] == "error" and answered["status"] == "approved"
    [failure] = [e for _, e in orchestrator.store.events(result.run_id) if e["event"] == "failed"]
    assert failure["detail"].startswith("subagent ml-engineer failed: cannot give the subagent a workspace of its own")
    assert str(tmp_path / "a-file") in failure["detail"] and not (workspace / "notes.md").exists()


async def test_a_delegation_from_inside_a_branch_starts_from_that_branch_and_merges_back_through_it(
    tmp_path: Path,
) -> None:
    workspace = _workspace(tmp_path, "git", {"train.py": TRAIN})
    nested = task("notes plan", "Get notes.md written", agent=SENIOR)
    script = [
        Reply(ai("", tool_call("Task", nested)), when=lambda c: turn(SENIOR)(c) and "notes.md" not in c.first_human),
        Reply(ai("", tool_call("Task", task("notes", "Create notes.md"))), when=turn(SENIOR, brief="Get notes.md")),
        Reply(ai("", tool_call("Write", {"file_path": "notes.md", "content": "plan\n"})), when=turn(JUNIOR)),
        Reply(ai("Wrote notes.md."), when=turn(JUNIOR, after="notes.md")),
        verdict("approve"),
        Reply(ai("notes.md is written."), when=turn(SENIOR, brief="Get notes.md", after="approved in round 1")),
        verdict("approve"),
        Reply(ai("Done."), when=turn(SENIOR, after="approved in round 1")),
    ]
    orchestrator, model = make(load_agents(cwd=tmp_path, home=tmp_path), script, workspace)
    result = await orchestrator.arun("plan", agent=SENIOR)
    model.assert_complete()
    outer, inner = sorted(result.delegations, key=lambda d: d["depth"])
    assert outer["branch"]["changes"] == [{"status": "added", "path": "notes.md"}]  # the junior merged into it
    assert inner["branch"]["merge"] == "merged"
    assert (workspace / "notes.md").read_text() == "plan\n"


async def test_a_merged_branch_that_cannot_be_removed_is_logged_and_the_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structlog.testing import capture_logs

    from orchestrator.graphs import isolated
    from orchestrator.isolation import GitError

    def locked(branch: object) -> None:
        raise GitError("git worktree remove failed: cannot remove a locked working tree")

    monkeypatch.setattr(isolated, "remove_branch", locked)
    workspace = _workspace(tmp_path, "git", {})
    script = _notes(verdict("approve"), "merged into the workspace", "Done.")
    orchestrator, model = make(load_agents(cwd=tmp_path, home=tmp_path), script, workspace)
    with capture_logs() as logs:
        result = await orchestrator.arun("plan", agent=SENIOR)
    model.assert_complete()
    assert result.status == "completed" and (workspace / "notes.md").read_text() == "plan\n"
    where = Path(result.delegations[0]["branch"]["where"])
    [warning] = [entry for entry in logs if entry["event"] == "branch_not_removed"]
    assert warning["where"] == str(where) and "locked working tree" in warning["error"] and where.is_dir()
