"""Secrets masked by value: the actual values of the API keys and tokens in this process's environment.

Patterns catch what looks like a key (`sk-ant-…`, `Bearer …`); they miss a key of another shape and a
key cut or quoted oddly. So every place orchestrate writes text that came from a model, a tool or a
server (run records, checkpointed messages, traces, logs, error messages, `--json`, and tool results sent
back to a model) also replaces each secret's exact value with a marker naming the variable. A value is
a secret when its variable is ANTHROPIC_API_KEY, OPENAI_API_KEY, or named like `*_API_KEY`, `*_TOKEN`,
`*_SECRET` or `*_PASSWORD`, and it is at least 8 characters long (shorter ones would mask ordinary words).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["mask_secrets", "secret_values"]

_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
"""What a secret's variable name ends with (ANTHROPIC_API_KEY, OPENAI_API_KEY, ANTHROPIC_AUTH_TOKEN too)."""
_MIN_LENGTH = 8


def secret_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Secret value -> the variable it came from, longest values first (a key containing another masks whole)."""
    env = os.environ if environ is None else environ
    names = [name for name in env if name.upper().endswith(_SUFFIXES)]  # names first: most values are never read
    found = {value: name for name in names if len(value := env[name]) >= _MIN_LENGTH}
    return dict(sorted(found.items(), key=lambda item: -len(item[0])))


def mask_secrets(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every secret value of the environment replaced by `[NAME masked]`."""
    for value, name in secret_values(environ).items():
        if value in text:
            text = text.replace(value, f"[{name} masked]")
    return text
