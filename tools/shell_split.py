"""Read a Bash command line the way a permission rule needs: is it one simple command, and which?

Claude Code's semantics: a prefix rule `Bash(git diff:*)` allows one simple command and nothing more. A
line with a separator (`;`, `&&`, `||`, `|`, `&`, a newline), a substitution (`$( )`, backticks, `<( )`),
a redirection into a file (`>`, `>>`, `>&file`, `&>`), a here-document, a subshell, or a leading
`VAR=value` (which can change what the command does: `GIT_CONFIG_*`, `LD_PRELOAD`) is not simple, so no
prefix rule allows it: it asks. The only redirections kept simple are the ones that write no file:
`2>&1`, `>&2`, `>/dev/null`, `&>/dev/null` at the end of the line.

Quoting is the standard library's `shlex` (POSIX mode, with the shell's operator characters as
punctuation), not a parser of our own; when it cannot tell (an operator character quoted on its own),
the line counts as compound, which errs towards asking. Deny and ask rules look at every part of a
compound line (`parts`), so `echo ok; rm -rf x` still meets `Bash(rm:*)`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

__all__ = ["ShellLine", "parse_line", "writes_files"]

_OPERATOR_CHARS = ";&|()<>\n"
_SEPARATORS = frozenset({";", ";;", "&&", "||", "|", "|&", "&", "\n"})
_SUBSTITUTION = ("$(", "`", "<(", ">(")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_HARMLESS_TAIL = re.compile(r"(?:\s+(?:\d?>>?\s*/dev/null|\d?>&\d|&>\s*/dev/null))+\s*$")

_WRITE_OPTIONS: dict[str, tuple[str, ...]] = {
    # Options that make a reading command write files, run other programs or load configuration: a rule
    # like `Bash(git diff:*)` means "show me diffs", not `git diff --output=~/.bashrc`.
    "git": ("--output", "-o", "-c", "--config-env", "--exec-path", "--upload-pack", "--receive-pack", "--ext-diff"),
    "sort": ("-o", "--output"),
    "curl": ("-o", "--output", "-O", "--remote-name", "--remote-name-all", "-K", "--config", "-D",
             "--dump-header", "-c", "--cookie-jar", "--trace", "--trace-ascii", "--stderr"),
    "sed": ("-i", "--in-place"),
    "find": ("-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls"),
    "rg": ("--pre",),
    "uniq": ("-o",),
}  # fmt: skip


@dataclass(frozen=True)
class ShellLine:
    """One command line, as far as permission rules care."""

    words: tuple[str, ...]
    """The simple command's words (empty when the line is not simple)."""
    parts: tuple[str, ...]
    """Each simple command of the line, its words joined by single spaces, leading assignments dropped:
    what deny and ask rules are matched against."""
    compound: str = ""
    """Why the line is not one simple command (empty when it is): the reason text names it."""

    @property
    def simple(self) -> bool:
        return not self.compound


def _tokens(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=_OPERATOR_CHARS)
    lexer.whitespace_split = True
    lexer.whitespace = " \t\r"  # a newline separates commands, as in bash
    lexer.commenters = ""  # a `#` comment could hide a newline: keep it a word, so the line stays compound
    return list(lexer)


def _describe(token: str) -> str:
    if token in _SEPARATORS:
        return "a newline between commands" if token == "\n" else f"a command separator ({token})"
    if token in ("(", ")"):
        return "a subshell"
    if token.startswith("<<"):
        return "a here-document"
    return f"a redirection ({token})"


def _parts(tokens: list[str]) -> tuple[str, ...]:
    parts: list[str] = []
    current: list[str] = []
    for token in [*tokens, ";"]:
        if all(ch in _OPERATOR_CHARS for ch in token):
            words = current
            while words and _ASSIGNMENT.match(words[0]):
                words = words[1:]
            if words:
                parts.append(" ".join(words))
            current = []
        else:
            current.append(token)
    return tuple(parts)


def _inner_parts(command: str) -> tuple[str, ...]:
    """Best-effort parts of a line that cannot be judged whole: substitutions opened up like subshells,
    so a deny rule still meets the commands inside them."""
    opened = command.replace("$(", " ( ").replace("<(", " ( ").replace(">(", " ( ").replace("`", " ; ")
    try:
        return _parts(_tokens(opened)) or (" ".join(command.split()),)
    except ValueError:
        return (" ".join(command.split()),)


def parse_line(command: str) -> ShellLine:
    """The line's simple command, or why it has none (see the module docstring)."""
    if any(marker in command for marker in _SUBSTITUTION):
        return ShellLine((), (" ".join(command.split()), *_inner_parts(command)), "a command substitution")
    try:
        tokens = _tokens(_HARMLESS_TAIL.sub("", command))
    except ValueError:
        return ShellLine((), (" ".join(command.split()),), "an unterminated quote")
    operator = next((t for t in tokens if all(ch in _OPERATOR_CHARS for ch in t)), None)
    if operator is not None:
        return ShellLine((), _parts(tokens) or (" ".join(command.split()),), _describe(operator))
    if tokens and _ASSIGNMENT.match(tokens[0]):
        return ShellLine((), _parts(tokens), f"an environment assignment ({tokens[0].split('=', 1)[0]}=…)")
    return ShellLine(tuple(tokens), (" ".join(tokens),) if tokens else ())


def _has_option(word: str, option: str) -> bool:
    if option.startswith("--") or len(option) > 2:
        return word == option or word.startswith(option + "=")
    return word.startswith("-") and not word.startswith("--") and option[1] in word[1:]


def writes_files(words: tuple[str, ...]) -> str | None:
    """Which word of a simple command lets it write files or run other programs, if any."""
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    options = _WRITE_OPTIONS.get(program, ())
    return next((w for w in words[1:] for option in options if _has_option(w, option)), None)
