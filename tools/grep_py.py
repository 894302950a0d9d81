"""The pure-Python Grep engine, used where the `rg` binary is not installed.

It reproduces ripgrep's file selection (ignore files from the search root down, `--glob` overrides that
beat ignore files, `--type` by file name, hidden files searched, symlinks and binary files skipped,
explicit file targets always searched) and ripgrep's line semantics (matching per line; with multiline,
over the whole file with `.` matching newlines). Regexes are Python's `re`, which agrees with ripgrep's
Rust syntax on the common subset.
"""

from __future__ import annotations

import asyncio
import os
import re
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ToolError
from orchestrator.tools.globpattern import GitGlob, glob_to_regex, parse_git_glob
from orchestrator.tools.grep_query import SKIP_GLOBS, FileHits, GrepQuery, Line, newline_error
from orchestrator.tools.ignore import IgnoreLayer, is_ignored, load_layer
from orchestrator.tools.sandbox import read_beneath

__all__ = ["FILE_TYPES", "search_python"]

FILE_TYPES: Mapping[str, tuple[str, ...]] = {
    "c": ("*.[chH]", "*.[chH].in", "*.cats"),
    "cpp": ("*.[ChH]", "*.[ChH].in", "*.[ch]pp", "*.[ch]pp.in", "*.[ch]xx", "*.[ch]xx.in", "*.cc", "*.hh"),
    "css": ("*.css", "*.scss"),
    "csv": ("*.csv",),
    "cuda": ("*.cu", "*.cuh"),
    "cython": ("*.pxd", "*.pxi", "*.pyx"),
    "docker": ("*Dockerfile*",),
    "go": ("*.go",),
    "h": ("*.h", "*.hpp"),
    "html": ("*.ejs", "*.htm", "*.html"),
    "java": ("*.java", "*.jsp", "*.jspx", "*.properties"),
    "js": ("*.js", "*.jsx", "*.vue"),
    "json": ("*.json", "composer.lock"),
    "jsonl": ("*.jsonl",),
    "jupyter": ("*.ipynb", "*.jpynb"),
    "make": ("*.mak", "*.mk", "[Gg][Nn][Uu]makefile", "[Mm]akefile", "[Mm]akefile.am", "[Mm]akefile.in"),
    "md": ("*.markdown", "*.md", "*.mdown", "*.mkdn"),
    "markdown": ("*.markdown", "*.md", "*.mdown", "*.mkdn"),
    "proto": ("*.proto",),
    "py": ("*.py",),
    "rst": ("*.rst",),
    "rust": ("*.rs",),
    "sh": (
        "*.bash",
        "*.bashrc",
        "*.csh",
        "*.ksh",
        "*.sh",
        "*.tcsh",
        "*.zsh",
        ".bashrc",
        ".profile",
        ".zshrc",
    ),
    "sql": ("*.psql", "*.sql"),
    "toml": ("*.toml", "Cargo.lock"),
    "ts": ("*.ts", "*.tsx"),
    "txt": ("*.txt",),
    "xml": ("*.dtd", "*.rng", "*.sch", "*.xhtml", "*.xjb", "*.xml", "*.xml.dist", "*.xsd", "*.xsl", "*.xslt"),
    "yaml": ("*.yaml", "*.yml"),
}
"""ripgrep's definitions of the common types (the fallback knows only these)."""


@dataclass(frozen=True)
class _Filter:
    """ripgrep's precedence: --glob overrides, then ignore files, then --type (files only)."""

    overrides: tuple[GitGlob, ...]
    has_whitelist: bool
    type_names: tuple[re.Pattern[str], ...] | None

    def allows(self, rel: str, is_dir: bool, layers: tuple[IgnoreLayer, ...]) -> bool:
        verdict = self._override(rel, is_dir)
        if verdict is not None:
            return verdict
        if is_ignored(layers, rel, is_dir):
            return False
        name = rel.rsplit("/", 1)[-1]
        return is_dir or self.type_names is None or any(t.match(name) for t in self.type_names)

    def _override(self, rel: str, is_dir: bool) -> bool | None:
        for glob in reversed(self.overrides):
            if glob.matches(rel, is_dir):
                return not glob.negated
        return False if self.has_whitelist and not is_dir else None


def _filter(query: GrepQuery) -> _Filter:
    texts = [query.glob] if query.glob else []
    overrides = tuple(g for g in map(parse_git_glob, [*texts, *SKIP_GLOBS]) if g is not None)
    has_whitelist = any(not g.negated for g in overrides)
    if query.file_type is None:
        return _Filter(overrides, has_whitelist, None)
    if query.file_type not in FILE_TYPES:
        known = ", ".join(sorted(FILE_TYPES))
        raise ToolError(f"Unknown file type {query.file_type!r} for type: the built-in search knows {known}.")
    return _Filter(overrides, has_whitelist, tuple(map(glob_to_regex, FILE_TYPES[query.file_type])))


def _compile(query: GrepQuery) -> re.Pattern[str]:
    if not query.multiline and ("\\n" in query.pattern or "\n" in query.pattern):
        raise newline_error(query.pattern)
    flags = re.IGNORECASE if query.ignore_case else 0
    flags |= re.MULTILINE | re.DOTALL if query.multiline else 0
    try:
        return re.compile(query.pattern, flags)
    except re.error as exc:
        raise ToolError(f"Invalid regex {query.pattern!r}: {exc}") from exc


def _walk(directory: Path, rel: str, layers: tuple[IgnoreLayer, ...], rules: _Filter) -> Iterator[Path]:
    """Depth-first, symlinks not followed (ripgrep's default), ignore files read per directory."""
    layer = load_layer(directory, rel)
    layers = (*layers, layer) if layer else layers
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        child = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_symlink():
            continue
        if entry.is_dir() and rules.allows(child, True, layers):
            yield from _walk(Path(entry.path), child, layers, rules)
        elif entry.is_file() and rules.allows(child, False, layers):
            yield Path(entry.path)


def _candidates(query: GrepQuery, rules: _Filter) -> Iterator[Path]:
    """An explicit file is always searched; a directory is walked with the filters."""
    if query.target.is_file():
        yield query.target
        return
    rel = query.target.relative_to(query.root).as_posix()
    yield from _walk(query.target, "" if rel == "." else rel, (), rules)


def _line_blocks(lines: list[str], regex: re.Pattern[str]) -> list[tuple[int, int]]:
    return [(n, n) for n, line in enumerate(lines, start=1) if regex.search(line)]


def _multiline_blocks(text: str, n_lines: int, regex: re.Pattern[str]) -> list[tuple[int, int]]:
    """1-based (first, last) line of each match; matches sharing a line merge, as ripgrep reports them."""
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    blocks: list[tuple[int, int]] = []
    for match in regex.finditer(text):
        first = bisect_right(starts, match.start())
        last = bisect_right(starts, max(match.end() - 1, match.start()))
        if first > n_lines:
            continue
        if blocks and first <= blocks[-1][1]:
            blocks[-1] = (blocks[-1][0], max(blocks[-1][1], last))
        else:
            blocks.append((first, last))
    return blocks


def _content(lines: list[str], blocks: list[tuple[int, int]], query: GrepQuery) -> tuple[Line, ...]:
    matched = {n for first, last in blocks for n in range(first, last + 1)}
    shown = set(matched)
    for n in matched:
        shown.update(range(max(1, n - query.before), min(len(lines), n + query.after) + 1))
    return tuple(Line(n, lines[n - 1].removesuffix("\r"), n in matched) for n in sorted(shown))


def _scan(path: Path, query: GrepQuery, regex: re.Pattern[str]) -> FileHits | None:
    try:
        data = read_beneath(query.root, path)
    except (OSError, ToolError):  # unreadable, or turned into a symlink since it was listed: skipped
        return None
    if b"\0" in data:
        return None
    text = data.decode("utf-8", errors="replace")
    lines = text.removesuffix("\n").split("\n") if text else []
    blocks = _multiline_blocks(text, len(lines), regex) if query.multiline else _line_blocks(lines, regex)
    if not blocks:
        return None
    rel = path.relative_to(query.root).as_posix()
    content = _content(lines, blocks, query) if query.mode == "content" else ()
    return FileHits(rel, len(blocks), content)


def _search(query: GrepQuery, regex: re.Pattern[str], rules: _Filter) -> list[FileHits]:
    found = (_scan(path, query, regex) for path in _candidates(query, rules))
    return [hit for hit in found if hit is not None]


async def search_python(query: GrepQuery) -> list[FileHits]:
    """Search like ripgrep would, in a worker thread (file I/O must not block the event loop)."""
    regex = _compile(query)
    rules = _filter(query)
    return await asyncio.to_thread(_search, query, regex, rules)
