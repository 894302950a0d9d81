"""Split a Markdown file into YAML frontmatter and body, tolerating the flat frontmatter people publish.

Many published agent files have descriptions with unquoted colons ("Triggers on: 'x'"), which strict YAML
rejects. Claude Code still loads them, so we do too: when `yaml.safe_load` fails we re-read the block as
flat `key: value` lines and report that as a warning (an error under `--strict`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

_KEY_LINE = re.compile(r"^([A-Za-z_][\w-]*)\s*:(.*)$")


@dataclass(frozen=True)
class Frontmatter:
    """The parsed header of an agent file."""

    data: dict[str, Any]
    key_lines: dict[str, int]
    """1-based line number of each top-level key in the file (for error messages)."""
    body: str
    strict_yaml_error: tuple[int, str] | None
    """(line, problem) where strict YAML rejected the block when the flat reading was used, else None."""


class FrontmatterError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


def split_frontmatter(text: str) -> Frontmatter:
    """Parse `---`-delimited frontmatter at the top of `text`."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise FrontmatterError(1, "no YAML frontmatter: the file must start with a '---' line")
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        raise FrontmatterError(1, "frontmatter is not closed: no second '---' line")
    block = lines[1:end]
    body = "\n".join(lines[end + 1 :]).strip("\n")
    key_lines = {m.group(1): i + 2 for i, line in enumerate(block) if (m := _KEY_LINE.match(line))}
    data, error = _load_block(block)
    return Frontmatter(data, key_lines, body, error)


def _load_block(block: list[str]) -> tuple[dict[str, Any], tuple[int, str] | None]:
    try:
        loaded = yaml.safe_load("\n".join(block))
    except yaml.YAMLError as exc:
        return _flat(block, yaml_error=exc), _describe(exc)
    if loaded is None:
        return {}, None
    if not isinstance(loaded, dict):
        raise FrontmatterError(2, f"frontmatter must be a mapping of keys to values, not {type(loaded).__name__}")
    return loaded, None


def _describe(exc: yaml.YAMLError) -> tuple[int, str]:
    """(file line, problem) of a YAML error inside the block (which starts on file line 2)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return (mark.line + 2 if mark is not None else 2), str(problem)


def _flat(block: list[str], *, yaml_error: yaml.YAMLError) -> dict[str, Any]:
    """Read `key: value` lines literally; indented lines continue the previous value."""
    data: dict[str, Any] = {}
    key: str | None = None
    for offset, line in enumerate(block):
        match = _KEY_LINE.match(line)
        if match:
            key = match.group(1)
            data[key] = _unquote(match.group(2).strip())
        elif line.strip() and key is not None and line[:1].isspace():
            data[key] = f"{data[key]} {line.strip()}".strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            raise FrontmatterError(offset + 2, f"not valid YAML ({_describe(yaml_error)}) nor a 'key: value' line")
    return data


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
