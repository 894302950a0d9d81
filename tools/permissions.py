"""Whether a tool call may run: Claude Code's permission modes plus allow/ask/deny rules.

Precedence is deny rule > plan mode's read-only ceiling > ask rule > allow rule > the mode's default,
so a deny can never be lifted by a broader allow, and plan mode stays read-only whatever is allowed.
Every `Decision` carries a reason that names what decided and, when the call is not simply allowed,
the flag or settings line that would allow it: the user reads it to fix their configuration.
The policy is pure (the tool node passes the sandbox-resolved arguments in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from orchestrator.tools.permission_rules import (
    PermissionMode,
    PermissionRules,
    Rule,
    command_matches,
    load_settings,
    parse_rule,
    rule_matches,
)
from orchestrator.tools.shell_split import split_command

__all__ = [
    "EDIT_TOOLS",
    "READ_ONLY_TOOLS",
    "SETTINGS_HINT",
    "Decision",
    "DecisionKind",
    "PermissionMode",
    "PermissionPolicy",
    "PermissionRules",
    "Rule",
    "load_settings",
    "parse_rule",
]

DecisionKind = Literal["allow", "ask", "deny"]

READ_ONLY_TOOLS = frozenset({"Read", "Glob", "Grep", "Task"})
"""Allowed in every mode: they change nothing (Task's agents are judged call by call)."""
EDIT_TOOLS = frozenset({"Edit", "Write", "NotebookEdit"})
_PLAN_REFUSED = EDIT_TOOLS | {"Bash"}
SETTINGS_HINT = ".claude/settings.json"


@dataclass(frozen=True)
class Decision:
    """What to do with one call, and why (the why names the rule or mode, and the way out)."""

    kind: DecisionKind
    reason: str


def _first_word(command: str) -> str:
    parts = split_command(command).parts
    return parts[0].split()[0] if parts else ""


def _path_rule(raw: str, workspace: Path) -> str:
    path = Path(raw)
    if not path.is_absolute():
        return f"Edit(./{raw.removeprefix('./')})"
    if path.is_relative_to(workspace):
        return f"Edit(./{path.relative_to(workspace).as_posix()})"
    return f"Edit(/{path.as_posix()})"


def _suggested_rule(tool: str, args: Mapping[str, object], workspace: Path) -> str:
    """The narrowest rule that would allow this call, for the reason text."""
    if tool == "Bash" and (word := _first_word(str(args.get("command", "")))):
        return f"Bash({word}:*)"
    if tool in EDIT_TOOLS and args.get("file_path"):
        return _path_rule(str(args["file_path"]), workspace)
    if tool == "WebFetch" and (host := urlsplit(str(args.get("url", ""))).hostname):
        return f"WebFetch(domain:{host})"
    return tool


def _way_out(tool: str, args: Mapping[str, object], workspace: Path) -> str:
    add = f'add "{_suggested_rule(tool, args, workspace)}" to permissions.allow in {SETTINGS_HINT}'
    if tool in EDIT_TOOLS:
        return f"use --permission-mode acceptEdits, or {add}"
    return f"{add}, or use --permission-mode bypassPermissions"


_RULE_REASONS: Mapping[DecisionKind, str] = {
    "deny": 'denied by the rule "{text}" in permissions.deny ({source}); remove that rule to allow it',
    "ask": 'the rule "{text}" in permissions.ask ({source}) requires approval; '
    "remove it from permissions.ask to run without asking",
    "allow": 'allowed by the rule "{text}" in permissions.allow ({source})',
}


def _by_rule(kind: DecisionKind, rule: Rule | None) -> Decision | None:
    if rule is None:
        return None
    return Decision(kind, _RULE_REASONS[kind].format(text=rule.text, source=rule.source))


@dataclass(frozen=True)
class PermissionPolicy:
    """A permission mode and the rules from settings; `decide` is the whole policy."""

    mode: PermissionMode = "default"
    rules: PermissionRules = field(default_factory=PermissionRules)

    def decide(self, tool_name: str, args: Mapping[str, object], workspace: Path) -> Decision:
        """allow, ask or deny this call, with the reason (the first step with an opinion decides)."""
        return (
            _by_rule("deny", self._first(self.rules.deny, tool_name, args, workspace))
            or self._plan_ceiling(tool_name)
            or _by_rule("ask", self._first(self.rules.ask, tool_name, args, workspace))
            or _by_rule("allow", self._allowing(tool_name, args, workspace))
            or self._mode_default(tool_name, args, workspace)
        )

    def _plan_ceiling(self, tool: str) -> Decision | None:
        if self.mode != "plan" or tool not in _PLAN_REFUSED:
            return None
        return Decision(
            "deny",
            f"{tool} is refused in permission mode plan (read-only); "
            "use --permission-mode default or acceptEdits to let it run",
        )

    def _first(self, rules: tuple[Rule, ...], tool: str, args: Mapping[str, object], workspace: Path) -> Rule | None:
        """The first rule that covers the call; for Bash, any simple command (or the whole line) counts."""
        if tool != "Bash":
            return next((r for r in rules if rule_matches(r, tool, args, workspace)), None)
        command = str(args.get("command", ""))
        candidates = (" ".join(command.split()), *split_command(command).parts)
        for rule in rules:
            if rule.governs(tool) and (rule.specifier is None or any(command_matches(rule, c) for c in candidates)):
                return rule
        return None

    def _allowing(self, tool: str, args: Mapping[str, object], workspace: Path) -> Rule | None:
        """An allow rule covering the call; a Bash line needs every simple command allowed, and a line
        the splitter cannot judge (substitution, a redirect into a file) is only allowed by a bare rule."""
        if tool != "Bash":
            return self._first(self.rules.allow, tool, args, workspace)
        bare = next((r for r in self.rules.allow if r.governs(tool) and r.specifier is None), None)
        split = split_command(str(args.get("command", "")))
        if bare is not None or not split.analyzable or not split.parts:
            return bare
        deciding = [
            next((r for r in self.rules.allow if r.governs(tool) and command_matches(r, part)), None)
            for part in split.parts
        ]
        return deciding[0] if all(deciding) else None

    def _mode_default(self, tool: str, args: Mapping[str, object], workspace: Path) -> Decision:
        allowed = (
            self.mode == "bypassPermissions"
            or tool in READ_ONLY_TOOLS
            or (self.mode == "acceptEdits" and tool in EDIT_TOOLS)
        )
        if allowed:
            return Decision("allow", f"{tool} is allowed in permission mode {self.mode}")
        return Decision(
            "ask",
            f"{tool} needs approval in permission mode {self.mode}; to allow it, {_way_out(tool, args, workspace)}",
        )
