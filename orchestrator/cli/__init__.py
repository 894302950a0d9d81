"""The `orchestrate` command: one module per group of subcommands.

`app` (the Typer app; agents, route, graph), `runs` (run, resume, runs, batch), `inspect` (show, replay),
`local` (models engine, pull, list); `common` holds what they share: the markup-free consoles, one-line
failures and the shared options. Humans get rich progress on stderr; stdout carries the answer or JSON.
"""

from orchestrator.cli.app import app

__all__ = ["app"]
