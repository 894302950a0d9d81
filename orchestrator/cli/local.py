"""`orchestrate models engine|pull|list`: build the local runtime, get the models, see what is installed.

Progress goes to stderr (rich), results to stdout, so `orchestrate models pull > paths.txt` stays clean.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from orchestrator.cli.common import console, styled
from orchestrator.errors import OrchestrateError
from orchestrator.local import MODELS, ModelSpec, ModelStatus, cache_path, list_models, pull, verify
from orchestrator.local.build import LLAMA_CPP_VERSION, BuildFeatures, build_flags, ensure_engine, installed_features
from orchestrator.local.probe import ProbeVerdict, cached_verdict
from orchestrator.routing.sentence_model import NAME as SENTENCE_MODEL
from orchestrator.routing.sentence_model import pull_sentence_model, sentence_model_ready

__all__ = ["models_app"]

models_app = typer.Typer(
    name="models",
    help="Local GGUF models for the offline default (no API key needed).",
    no_args_is_help=True,
)


class RichProgress:
    """`ProgressSink` over a rich byte-progress bar on stderr."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._started = False

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._started:
            self._progress.stop()

    def start(self, label: str, total: int) -> None:
        """Show a bar only once there is work: a skipped model prints nothing but its summary."""
        if not self._started:
            self._progress.start()
            self._started = True
        self._task = self._progress.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._task = None


ROUTER = "router"


def _specs(roles: list[str] | None) -> list[ModelSpec]:
    unknown = [r for r in roles or [] if r not in MODELS and r != ROUTER]
    if unknown:
        raise typer.BadParameter(f"unknown model {unknown[0]!r}; choose from {', '.join([*MODELS, ROUTER])}")
    return [MODELS[r] for r in roles if r in MODELS] if roles else list(MODELS.values())


def _fail(console: Console, exc: OrchestrateError) -> typer.Exit:
    console.print(styled(("error:", "red"), f" {exc}"), soft_wrap=True)
    return typer.Exit(1)


def _already_verified(spec: ModelSpec, progress: RichProgress) -> bool:
    path = cache_path(spec)
    return path.is_file() and verify(spec, path, progress)


@models_app.command("pull")
def pull_command(
    roles: Annotated[
        list[str] | None, typer.Argument(help="Which models: senior, junior, router (default: all three).")
    ] = None,
) -> None:
    """Download, assemble and verify the local models (skips those already verified): the two chat models
    and the router's sentence encoder."""
    err = console(stderr=True)
    for spec in _specs(roles):
        try:
            with RichProgress(err) as progress:
                done = _already_verified(spec, progress)
                path = cache_path(spec) if done else pull(spec, progress=progress)
        except OrchestrateError as exc:
            raise _fail(err, exc) from exc
        note = "already installed, verified" if done else "installed, verified"
        err.print(f"{spec.key}: {spec.description}: {note}")
        typer.echo(f"{spec.key}\t{path}")
    if not roles or ROUTER in roles:
        done = sentence_model_ready()
        try:
            path = pull_sentence_model()
        except OrchestrateError as exc:
            raise _fail(err, exc) from exc
        err.print(
            f"{ROUTER}: {SENTENCE_MODEL} sentence encoder: {'already installed' if done else 'installed'}, verified"
        )
        typer.echo(f"{ROUTER}\t{path}")


@models_app.command("engine")
def engine_command(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Reinstall even if the installed build is right.")] = False,
) -> None:
    """Build and install llama.cpp (llama-cpp-python) so it runs on any x86-64 CPU with AVX2: no AVX-512,
    no AMX. Compiles once (~7 min on 2 cores) into a wheel directory keyed by its flags; checks the result."""
    err = console(stderr=True)

    def building(log: Path) -> None:
        err.print(
            f"building llama-cpp-python {LLAMA_CPP_VERSION} with {' '.join(build_flags())} "
            f"(about 7 minutes on 2 cores; log: {log})",
            soft_wrap=True,
        )

    try:
        with err.status(Text("checking the llama.cpp runtime…")):
            features, changed = ensure_engine(rebuild=rebuild, on_build=building)
    except OrchestrateError as exc:
        raise _fail(err, exc) from exc
    note = "installed" if changed else "already installed"
    err.print(f"llama-cpp-python {LLAMA_CPP_VERSION}: {note}, portable build ({features.summary()})")


def _verdict_cell(status: ModelStatus) -> Text:
    if status.status not in ("verified", "user file (unchecked)"):
        return Text("-")
    verdict: ProbeVerdict | None = cached_verdict(status.path)
    if verdict is None:
        return Text("not probed yet", "cyan")
    if verdict.outcome == "ok":
        return Text(f"ok ({verdict.checked_at[:10]})", "green")
    return Text(f"{verdict.outcome}: {verdict.detail}", "red")


def _row(status: ModelStatus) -> list[str | Text]:
    size = "-" if status.size is None else f"{status.size / 1e6:,.0f} MB"
    colour = {"verified": "green", "mismatch": "red", "missing": "yellow"}.get(status.status, "cyan")
    cells: list[str | Text] = [status.spec.key, status.spec.description, Text(status.status, colour), size]
    return [*cells, _verdict_cell(status), str(status.path)]


def _engine_line(features: BuildFeatures | None) -> Text:
    if features is None:
        return styled(("engine: llama-cpp-python not installed", "yellow"), "; run `orchestrate models engine`")
    problems = features.problems()
    if problems:
        return styled((f"engine: llama-cpp-python, not the portable build ({'; '.join(problems)})", "red"),
                      "; run `orchestrate models engine --rebuild`")  # fmt: skip
    return Text(f"engine: llama-cpp-python, portable build ({features.summary()})")


@models_app.command("list")
def list_command() -> None:
    """Show the engine build and each local model: installed or not, size, checksum status, whether the
    engine probe loaded and decoded it on this machine, path."""
    table = Table("role", "model", "status", "size", "engine probe", "path")
    table.columns[-1].overflow = "fold"
    with RichProgress(console(stderr=True)) as progress:
        statuses = list_models(progress)
    for status in statuses:
        table.add_row(*_row(status))
    out = console()
    try:
        out.print(_engine_line(installed_features()))
    except OrchestrateError as exc:
        out.print(Text(f"engine: {exc}", "red"))
    out.print(table)
