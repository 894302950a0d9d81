"""Split a shell command line into the simple commands a permission rule can judge.

`Bash(git diff:*)` must not allow `git diff && rm -rf ~`: the policy checks every simple command of a
compound line against the rules. Some lines cannot be judged by their text at all (command or process
substitution, a redirect into a file, an unterminated quote); those are marked not analyzable, so allow
rules do not apply to them while deny and ask rules still do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SplitCommand", "split_command"]

_OPERATORS = ("&&", "||", ";;", ";", "|&", "|", "&", "\n", "(", ")")
_ASSIGNMENT = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)+")
_HARMLESS_REDIRECT = re.compile(r">>?\s*(?:&\d|/dev/null\b)|>&\d?")


@dataclass(frozen=True)
class SplitCommand:
    """The simple commands of a line, whitespace-normalized, leading `VAR=value` assignments removed."""

    parts: tuple[str, ...]
    analyzable: bool


@dataclass
class _Scanner:
    text: str
    pos: int = 0
    quote: str = ""
    analyzable: bool = True

    def step(self) -> str | None:
        """Consume one token; an operator outside quotes comes back as the operator, else None."""
        text, i = self.text, self.pos
        char = text[i]
        if self.quote:
            self._in_quote(char)
            return None
        if char == "\\":
            self.pos += 2
            return None
        if char in "'\"":
            self.quote = char
        elif text.startswith(("$(", "<(", ">("), i) or char == "`":
            self.analyzable = False
        elif char == ">":
            self._redirect()
            return None
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op, i)), None)
            if operator is not None:
                self.pos += len(operator)
                return operator
        self.pos += 1
        return None

    def _redirect(self) -> None:
        """`>&2`, `2>&1` and `> /dev/null` write no file; any other output redirect might."""
        harmless = _HARMLESS_REDIRECT.match(self.text, self.pos)
        self.analyzable = self.analyzable and harmless is not None
        self.pos = harmless.end() if harmless else self.pos + 1

    def _in_quote(self, char: str) -> None:
        if self.quote == '"' and char == "\\":
            self.pos += 1
        elif self.quote == '"' and (char == "`" or self.text.startswith("$(", self.pos)):
            self.analyzable = False
        elif char == self.quote:
            self.quote = ""
        self.pos += 1


def _clean(part: str) -> str:
    return _ASSIGNMENT.sub("", " ".join(part.split()))


def split_command(command: str) -> SplitCommand:
    """Split on `&&`, `||`, `;`, `|`, `&`, newlines and parentheses outside quotes."""
    scanner = _Scanner(command)
    parts: list[str] = []
    start = 0
    while scanner.pos < len(command):
        before = scanner.pos
        if scanner.step() is not None:
            parts.append(command[start:before])
            start = scanner.pos
    parts.append(command[start:])
    cleaned = tuple(p for p in map(_clean, parts) if p)
    return SplitCommand(cleaned, scanner.analyzable and not scanner.quote)
