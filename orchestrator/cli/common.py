"""What every `orchestrate` command shares: the stderr console, failing with a one-line reason, options."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.text import Text

from orchestrator.errors import UserError
from orchestrator.loader import AgentLintError, AgentSet, load_agents
from orchestrator.secrets import mask_secrets

__all__ = ["AgentsDirOpt", "DbOpt", "JsonOpt", "console", "err", "fail", "load", "styled"]


def console(*, stderr: bool = False, file: IO[str] | None = None, **options: Any) -> Console:
    """A rich console that never reads markup: task text, agent names, file names, model output and hints
    such as `orchestrate[graph]` print exactly as written. Style comes from `styled` / `Text` instead."""
    return Console(stderr=stderr, file=file, markup=False, highlight=False, **options)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line from plain strings and (text, style) pairs; no part is ever parsed as markup."""
    return Text.assemble(*parts)


err = console(stderr=True)

AgentsDirOpt = Annotated[
    Optional[list[Path]],  # noqa: UP045 - typer needs Optional here
    typer.Option("--agents-dir", help="Extra directory of agent .md files (highest precedence; repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
DbOpt = Annotated[
    Optional[str],  # noqa: UP045 - a str: pathlib would fold the // of a postgresql:// URL
    typer.Option(
        "--db",
        help="Where checkpoints and run records live: a SQLite file, or a postgresql://user@host/db URL "
        "(needs the postgres extra). Default: env ORCHESTRATE_DB, else a SQLite file in the per-user data dir.",
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Exit with one line on stderr: 2 for bad input, 1 for a failed run."""
    err.print(styled(("error:", "red"), " ", mask_secrets(message)), soft_wrap=True)
    raise typer.Exit(code)


def load(agents_dir: list[Path] | None, *, strict: bool = False) -> AgentSet:
    try:
        return load_agents(agents_dir or [], strict=strict)
    except AgentLintError:
        raise
    except UserError as exc:
        fail(str(exc))
