"""Glob patterns, one dialect for every place we match paths.

Glob's `pattern`, Grep's `glob`, ignore files and permission rules (`Read(./src/**)`) all speak the same
slash-separated glob: `*` and `?` stay within one path segment, `**` spans directories, `[...]` is a
character class and `{a,b}` an alternation. Gitignore-style patterns add the anchoring rule: a pattern
without a slash matches a name at any depth, one with a slash is relative to its base directory, and a
trailing slash matches directories only. Sharing one translator keeps the Python Grep fallback faithful to
ripgrep and the permission rules faithful to the tools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["GitGlob", "glob_to_regex", "has_magic", "parse_git_glob"]

_MAX_ALTERNATIVES = 256
_MAGIC = re.compile(r"[*?\[{]")


def has_magic(segment: str) -> bool:
    """Whether a path segment contains glob syntax (else it is a literal name)."""
    return _MAGIC.search(segment) is not None


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob to a regex that must match a whole POSIX relative path."""
    alternatives = [_translate(p) for p in _expand_braces(pattern)]
    return re.compile("(?s:" + "|".join(alternatives) + r")\Z")


def _expand_braces(pattern: str) -> list[str]:
    """`a.{x,y}` -> [`a.x`, `a.y`], recursively; patterns without a balanced group stay as they are."""
    start = pattern.find("{")
    end = _closing_brace(pattern, start) if start >= 0 else -1
    if end < 0:
        return [pattern]
    head, tail = pattern[:start], pattern[end + 1 :]
    results: list[str] = []
    for choice in _split_top_level(pattern[start + 1 : end]):
        results.extend(_expand_braces(head + choice + tail))
        if len(results) > _MAX_ALTERNATIVES:
            break
    return results[:_MAX_ALTERNATIVES]


def _closing_brace(pattern: str, start: int) -> int:
    depth = 0
    for i in range(start, len(pattern)):
        depth += {"{": 1, "}": -1}.get(pattern[i], 0)
        if depth == 0:
            return i
    return -1


def _split_top_level(body: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in body:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _translate(pattern: str) -> str:
    """Regex source for one brace-free glob, segment by segment so `**` can mean "any directories"."""
    segments = pattern.split("/")
    if segments == ["**"]:
        return ".*"
    out = ""
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            out += ".*" if last else "(?:[^/]*/)*"
        else:
            out += _translate_segment(segment) + ("" if last else "/")
    return out


def _translate_segment(segment: str) -> str:
    out, i = "", 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[" and (end := segment.find("]", i + 2)) > 0:
            out += _char_class(segment[i + 1 : end])
            i = end
        elif char == "\\" and i + 1 < len(segment):
            i += 1
            out += re.escape(segment[i])
        else:
            out += re.escape(char)
        i += 1
    return out


def _char_class(body: str) -> str:
    negate = body[:1] in ("!", "^")
    inner = body[1:] if negate else body
    inner = inner.replace("\\", "\\\\").replace("[", "\\[")
    return "[" + ("^" if negate else "") + inner + "]"


@dataclass(frozen=True)
class GitGlob:
    """One gitignore-style pattern (an ignore-file line, a `-g` glob or a permission-rule path)."""

    text: str
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool

    def matches(self, rel_path: str, is_dir: bool) -> bool:
        """Whether `rel_path` (POSIX, relative to the pattern's base directory) matches."""
        if self.dir_only and not is_dir:
            return False
        return self.regex.match(rel_path) is not None


def parse_git_glob(line: str) -> GitGlob | None:
    """Parse one gitignore line (None for blanks and comments); `!` negates, as in gitignore."""
    text = line.rstrip("\n").rstrip("\r")
    if not text.strip() or text.startswith("#"):
        return None
    negated = text.startswith("!")
    body = text[1:] if negated else text
    if body.startswith("\\"):
        body = body[1:]
    dir_only = body.endswith("/")
    body = body.rstrip("/")
    anchored = "/" in body
    body = body.lstrip("/")
    if not body:
        return None
    regex = glob_to_regex(body if anchored else "**/" + body)
    return GitGlob(text=text, regex=regex, negated=negated, dir_only=dir_only)
