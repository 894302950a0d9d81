"""The `orchestrate` command: one module per group of subcommands.

`app` (the Typer app; agents, route, graph), `runs` (run, resume, runs, batch), `inspect` (show, replay),
`local` (models engine, pull, list); `common` holds what they share: the markup-free consoles, one-line
failures and the shared options; `exit` ends the process (`main`, the console script). Humans get rich
progress on stderr; stdout carries the answer or JSON.
"""

from orchestrator.cli.app import app
from orchestrator.cli.exit import main

__all__ = ["app", "main"]
