"""Ignore files (.gitignore, .ignore, .rgignore) as ripgrep reads them, for the Python Grep fallback.

ripgrep skips what the project ignores, so the fallback must too or the two implementations would
disagree on the same tree. We read ignore files from the search root downwards (ripgrep runs with
--no-ignore-parent, --no-ignore-global and --no-ignore-exclude so neither side looks elsewhere); a deeper
file overrides a shallower one and, within a file, the last matching line wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.tools.globpattern import GitGlob, parse_git_glob

__all__ = ["IGNORE_FILE_NAMES", "IgnoreLayer", "is_ignored", "load_layer"]

IGNORE_FILE_NAMES = (".gitignore", ".ignore", ".rgignore")
"""In rising precedence, as ripgrep ranks them."""


@dataclass(frozen=True)
class IgnoreLayer:
    """The ignore patterns of one directory; `base` is that directory relative to the search root."""

    base: str
    globs: tuple[GitGlob, ...]


def load_layer(directory: Path, base: str) -> IgnoreLayer | None:
    """The patterns of the ignore files in `directory`, or None when it has none."""
    globs: list[GitGlob] = []
    for name in IGNORE_FILE_NAMES:
        candidate = directory / name
        if candidate.is_file():
            lines = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
            globs.extend(g for g in map(parse_git_glob, lines) if g is not None)
    return IgnoreLayer(base, tuple(globs)) if globs else None


def is_ignored(layers: Sequence[IgnoreLayer], rel_path: str, is_dir: bool) -> bool:
    """Whether the deepest layer with an opinion ignores `rel_path` (relative to the search root)."""
    for layer in reversed(layers):
        sub = rel_path[len(layer.base) + 1 :] if layer.base else rel_path
        for glob in reversed(layer.globs):
            if glob.matches(sub, is_dir):
                return not glob.negated
    return False
