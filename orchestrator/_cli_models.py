"""`orchestrate models pull|list`: get the local models and see what is installed.

Progress goes to stderr (rich), results to stdout, so `orchestrate models pull > paths.txt` stays clean.
"""

from __future__ import annotations

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

from orchestrator.errors import OrchestrateError
from orchestrator.local import MODELS, ModelSpec, ModelStatus, cache_path, list_models, pull, verify

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
            TextColumn("{task.description}"),
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


def _specs(roles: list[str] | None) -> list[ModelSpec]:
    unknown = [r for r in roles or [] if r not in MODELS]
    if unknown:
        raise typer.BadParameter(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    return [MODELS[r] for r in roles] if roles else list(MODELS.values())


def _fail(console: Console, exc: OrchestrateError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _already_verified(spec: ModelSpec, progress: RichProgress) -> bool:
    path = cache_path(spec)
    return path.is_file() and verify(spec, path, progress)


@models_app.command("pull")
def pull_command(
    roles: Annotated[list[str] | None, typer.Argument(help="Which models: senior, junior (default: both).")] = None,
) -> None:
    """Download, assemble and verify the local models (skips those already verified)."""
    err = Console(stderr=True)
    for spec in _specs(roles):
        try:
            with RichProgress(err) as progress:
                done = _already_verified(spec, progress)
                path = cache_path(spec) if done else pull(spec, progress=progress)
        except OrchestrateError as exc:
            raise _fail(err, exc) from exc
        note = "already installed, verified" if done else "installed, verified"
        err.print(f"{spec.key}: {spec.description}: {note}", highlight=False)
        typer.echo(f"{spec.key}\t{path}")


def _row(status: ModelStatus) -> list[str]:
    size = "-" if status.size is None else f"{status.size / 1e6:,.0f} MB"
    colour = {"verified": "green", "mismatch": "red", "missing": "yellow"}.get(status.status, "cyan")
    return [status.spec.key, status.spec.description, f"[{colour}]{status.status}[/]", size, str(status.path)]


@models_app.command("list")
def list_command() -> None:
    """Show each local model: installed or not, size, checksum status, path."""
    table = Table("role", "model", "status", "size", "path")
    table.columns[-1].overflow = "fold"
    with RichProgress(Console(stderr=True)) as progress:
        statuses = list_models(progress)
    for status in statuses:
        table.add_row(*_row(status))
    Console().print(table)
