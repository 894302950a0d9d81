"""`orchestrate show / replay / branches`: see what a recorded run did, re-execute it without the API, and
list its subagents' branches.

`show` renders the run's trace (orchestrator/trace.py) as a terminal tree, JSON, Mermaid or one offline
HTML page. `replay` runs the recorded task through today's graph with the recorded answers
(orchestrator/replay.py) and says where the behaviour first differs; exit status 1 when it does, so a
recorded run works as a regression test in CI.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Optional, cast, get_args

import typer

from orchestrator.cli.common import AgentsDirOpt, DbOpt, JsonOpt, console, err, fail, load, styled
from orchestrator.config import Settings
from orchestrator.errors import OrchestrateError, UserError
from orchestrator.graphs.isolated import recorded_result, run_branches
from orchestrator.isolation import BranchWorkspace, branch_patch
from orchestrator.providers import ProviderName, select_provider
from orchestrator.replay import ReplayReport, areplay
from orchestrator.run_store import RunStore, open_store
from orchestrator.tools.permissions import PermissionMode, PermissionPolicy, load_settings
from orchestrator.trace import Trace, load_trace, render_html, render_json, render_mermaid, render_tree

__all__ = ["branches", "replay", "show", "write_trace_html"]

_FORMATS = ("tree", "json", "mermaid", "html")
_SUFFIXES = {".html": "html", ".htm": "html", ".json": "json", ".mmd": "mermaid", ".mermaid": "mermaid"}


def _format(fmt: str | None, output: Path | None) -> str:
    """--format, else from -o's suffix, else tree."""
    if fmt is None:
        return _SUFFIXES.get(output.suffix.lower(), "tree") if output is not None else "tree"
    if fmt not in _FORMATS:
        raise UserError(f"--format must be one of {', '.join(_FORMATS)}, not {fmt!r}")
    return fmt


def _render(trace: Trace, fmt: str) -> str:
    if fmt == "json":
        return render_json(trace) + "\n"
    if fmt == "mermaid":
        return render_mermaid(trace)
    if fmt == "html":
        return render_html(trace)
    buffer = io.StringIO()  # the tree, as plain text for a file or a pipe
    console(file=buffer, width=140, color_system=None).print(render_tree(trace))
    return buffer.getvalue()


def _write(path: Path, text: str, flag: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{flag} {path}: {exc.strerror}") from exc


def show(
    run_id: Annotated[str, typer.Argument(help="The run to show (see `orchestrate runs`).")],
    fmt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--format", help="tree, json, mermaid or html (default: from -o's suffix, else tree)."),
    ] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to FILE instead of stdout.")] = None,  # noqa: UP045
    db: DbOpt = None,
) -> None:
    """What a run actually did: route, turns, tool calls, delegations with briefs, verdicts, errors, and per
    node model, tokens, cost and duration. html is one offline file with a timeline of parallel branches."""
    try:
        chosen = _format(fmt, output)
        with open_store(db) as store:
            trace = load_trace(store, run_id)
        if chosen == "tree" and output is None and sys.stdout.isatty():
            console().print(render_tree(trace))
            return
        text = _render(trace, chosen)
        if output is not None:
            _write(output, text, "--output")
            return
    except UserError as exc:
        fail(str(exc))
    sys.stdout.write(text)


def write_trace_html(store: RunStore, run_id: str, path: Path) -> None:
    """`run --trace-html FILE`: the finished (or failed) run's page; a failure to write only warns, the run's
    own outcome is what the command reports."""
    try:
        _write(path, render_html(load_trace(store, run_id)), "--trace-html")
    except UserError as exc:
        err.print(styled(("warning:", "yellow"), f" {exc}"), soft_wrap=True)
        return
    err.print(f"trace: {path}", style="dim", soft_wrap=True)


def _permissions(options: Mapping[str, Any], mode: str | None) -> PermissionPolicy:
    """The permission rules and mode the run recorded at its start (the mode overridable)."""
    recorded = options.get("permissions")
    chosen = cast(PermissionMode | None, mode)
    if isinstance(recorded, dict):
        return PermissionPolicy.from_record(recorded, mode=chosen)
    files = [Path(str(options.get("workspace", "."))) / ".claude" / "settings.json"]  # a run recorded before
    if options.get("settings"):
        files.append(Path(str(options["settings"])))
    return PermissionPolicy.of(load_settings(files), mode=chosen or options.get("permission_mode"))


def _print_report(report: ReplayReport, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
        return
    for line in report.lines():
        sys.stdout.write(line + "\n")


async def _replay(
    run_id: str, db: str | None, extra_dirs: list[Path], workspace: Path | None, from_step: int | None,
    provider: str | None, mode: str | None,
) -> ReplayReport:  # fmt: skip
    store = open_store(db)
    try:
        record = store.run(run_id)
    finally:
        store.close()
    if mode is not None and mode not in get_args(PermissionMode):
        raise UserError(f"--permission-mode must be one of {', '.join(get_args(PermissionMode))}, not {mode!r}")
    if provider is not None and from_step is None:
        raise UserError("--provider goes with --from-step N: a plain replay makes no API calls at all")
    dirs = [Path(d) for d in record.options.get("agents_dirs") or []] + extra_dirs
    live = None
    if provider is not None:
        live, why = select_provider(cast(ProviderName, provider), settings=Settings.from_env())
        err.print(why, style="dim")
    return await areplay(
        run_id, db=db, agents=load(dirs), workspace=workspace, settings=Settings.from_env(),
        permissions=_permissions(record.options, mode), from_step=from_step, live=live,
    )  # fmt: skip


def replay(
    run_id: Annotated[str, typer.Argument(help="The recorded run to re-execute.")],
    workspace: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Run the tools here (default: a fresh empty temporary directory, removed afterwards)."),
    ] = None,
    agents_dir: AgentsDirOpt = None,
    from_step: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--from-step", help="Answer recorded steps 0..N-1 from the recording, later calls live."),
    ] = None,
    provider: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="With --from-step: anthropic, openai or local, where the live calls go."),
    ] = None,
    permission_mode: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Override the recorded permission mode."),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-execute a recorded run through the current graph with the recorded model answers (no API call) and
    report the first step where its behaviour diverges; exit 1 if it does. Tools really run, in a scratch
    workspace: a run whose tools read files that existed before it diverges unless --workspace holds them."""
    if provider is not None and provider not in get_args(ProviderName):
        fail(f"--provider must be anthropic, openai or local, not {provider!r}")
    try:
        report = asyncio.run(
            _replay(run_id, db, list(agents_dir or []), workspace, from_step, provider, permission_mode)
        )
    except OrchestrateError as exc:
        fail(str(exc))
    _print_report(report, as_json)
    if not report.same:
        raise typer.Exit(1)


def _branches_of(run_id: str) -> list[tuple[BranchWorkspace, dict[str, Any]]]:
    """Each branch of the run with its facts, from the records kept next to it (graphs/isolated.py)."""
    home = run_branches(Settings.from_env().branches_dir, run_id)
    if not home.is_dir():
        raise UserError(f"run {run_id} has no branches (no writing delegation worked in a workspace of its own)")
    found = []
    for meta in sorted(home.glob("*/branch.json"), key=lambda p: p.stat().st_mtime):
        branch = BranchWorkspace.of(json.loads(meta.read_text()))
        saved = recorded_result(Path(branch.home))
        record = saved["record"] if saved else {}
        outcome = record.get("branch", {})
        found.append((branch, {
            "call_id": branch.call_id, "agent": record.get("agent"), "description": record.get("description"),
            "status": record.get("status", "unfinished"), "merge": outcome.get("merge", "not merged"),
            "changes": outcome.get("changes", []), "conflicts": outcome.get("conflicts", []),
            "kind": branch.kind, "where": branch.workspace, "ref": branch.ref, "repo": branch.repo,
            "commit": outcome.get("commit"), "exists": Path(branch.root).is_dir(),
        }))  # fmt: skip
    return found


def branches(
    run_id: Annotated[str, typer.Argument(help="The run whose branches to list (see `orchestrate runs`).")],
    diff: Annotated[bool, typer.Option("--diff", help="Also print each kept branch's diff against its start.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The run's subagent branches: what each changed, whether it merged, and where it lives."""
    try:
        found = _branches_of(run_id)
    except UserError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps([row for _, row in found], indent=2) + "\n")
        return
    out = console()
    for branch, row in found:
        files = ", ".join(f"{c['status']} {c['path']}" for c in row["changes"]) or "no file changed"
        merge_style = "red" if row["merge"] == "conflict" else ""
        out.print(styled((row["call_id"], "bold"), f" {row['agent']}: {row['description']}  {row['status']}, ",
                         (row["merge"], merge_style)), soft_wrap=True)  # fmt: skip
        out.print(f"    {files}", soft_wrap=True)
        if row["conflicts"]:
            out.print(f"    conflicts: {', '.join(row['conflicts'])}", soft_wrap=True)
        place = f"{row['where']} (git branch {row['ref']} in {row['repo']})" if row["exists"] else "removed after merge"
        out.print(f"    {place}", style="dim", soft_wrap=True)
        if diff and row["exists"] and row["commit"]:
            out.print(branch_patch(branch, row["commit"]), markup=False, highlight=False, soft_wrap=True)
