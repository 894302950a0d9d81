"""A run's process pays only for what it uses: the CLI starts without the routing model's numpy stack,
WebFetch's HTML parser, the local engine or the Claude SDK, which load when a run needs them."""

from __future__ import annotations

import subprocess
import sys

DEFERRED = ("numpy", "tokenizers", "safetensors", "bs4", "markdownify", "llama_cpp", "anthropic")


def test_the_cli_starts_without_the_heavy_optional_modules() -> None:
    probe = f"import sys, orchestrator.cli.app; print(sorted(m for m in {DEFERRED!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
