"""Whether a tool call may run: Claude Code's permission modes plus allow/ask/deny rules.

Precedence is deny rule > plan mode's read-only ceiling > protected configuration > ask rule > allow rule
> the mode's default, so a deny can never be lifted by a broader allow, plan mode stays read-only whatever
is allowed, and no mode but bypassPermissions lets an agent change what defines agents' rights
(`.claude/settings*.json`, `.claude/agents/**`, the run's own settings file) without the user's yes.

Every `Decision` carries a `reason` that names what decided (the model reads it in a refusal) and, when
the call is not simply allowed, a `hint` with the flag or settings line that would allow it, which only
the user sees: an agent is never told which rule it could write for itself. `exact_rule` is the narrowest
rule that allows one call, the one "always" stores. The policy is pure (the tool node passes the
sandbox-resolved arguments in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from orchestrator.tools.permission_rules import (
    PermissionMode,
    PermissionRules,
    Rule,
    command_matches,
    load_settings,
    parse_rule,
    path_pattern_matches,
    rule_matches,
)
from orchestrator.tools.shell_split import parse_line, writes_files

__all__ = [
    "EDIT_TOOLS",
    "PROTECTED_PATHS",
    "READ_ONLY_TOOLS",
    "SETTINGS_HINT",
    "Decision",
    "DecisionKind",
    "PermissionMode",
    "PermissionPolicy",
    "PermissionRules",
    "Rule",
    "exact_rule",
    "load_settings",
    "parse_rule",
]

DecisionKind = Literal["allow", "ask", "deny"]

READ_ONLY_TOOLS = frozenset({"Read", "Glob", "Grep", "Task"})
"""Allowed in every mode: they change nothing (Task's agents are judged call by call)."""
EDIT_TOOLS = frozenset({"Edit", "Write", "NotebookEdit"})
_PLAN_REFUSED = EDIT_TOOLS | {"Bash"}
SETTINGS_HINT = ".claude/settings.json"
PROTECTED_PATHS = (".claude/settings*.json", ".claude/agents/**")
"""Workspace paths (gitignore-style) whose change would change an agent's rights or definition."""


@dataclass(frozen=True)
class Decision:
    """What to do with one call, and why."""

    kind: DecisionKind
    reason: str
    """What decided, for the model and the user alike."""
    hint: str = ""
    """The way out (a flag, a settings line) for the user only; never shown to the model."""


def _path_rule(raw: str, workspace: Path) -> str:
    path = Path(raw)
    if not path.is_absolute():
        return f"Edit(./{raw.removeprefix('./')})"
    if path.is_relative_to(workspace):
        return f"Edit(./{path.relative_to(workspace).as_posix()})"
    return f"Edit(/{path.as_posix()})"


def exact_rule(tool: str, args: Mapping[str, object], workspace: Path) -> str:
    """The narrowest rule that allows this one call: the exact command, the one file, the one domain."""
    if tool == "Bash" and (command := " ".join(str(args.get("command", "")).split())):
        return f"Bash({command})"
    if tool in EDIT_TOOLS and args.get("file_path"):
        return _path_rule(str(args["file_path"]), workspace)
    if tool == "WebFetch" and (host := urlsplit(str(args.get("url", ""))).hostname):
        return f"WebFetch(domain:{host})"
    return tool


def _mode(mode: str) -> str:
    """How a user picks a permission mode: the CLI flag, or a server run's context."""
    return f"--permission-mode {mode} (a server: permission_mode in the run's context)"


def _way_out(tool: str, args: Mapping[str, object], workspace: Path) -> str:
    rule = exact_rule(tool, args, workspace)
    add = f'add "{rule}" to permissions.allow in {SETTINGS_HINT} (a server: the context\'s settings)'
    if tool in EDIT_TOOLS:
        return f"to allow it, use {_mode('acceptEdits')}, or {add}"
    return f"to allow it, {add}, or use {_mode('bypassPermissions')}"


_RULE_REASONS: Mapping[DecisionKind, tuple[str, str]] = {
    "deny": ('denied by the rule "{text}" in permissions.deny', "remove that rule from {source} to allow it"),
    "ask": (
        'the rule "{text}" in permissions.ask requires approval',
        "remove it from permissions.ask in {source} to run without asking",
    ),
    "allow": ('allowed by the rule "{text}" in permissions.allow ({source})', ""),
}


def _by_rule(kind: DecisionKind, rule: Rule | None) -> Decision | None:
    if rule is None:
        return None
    reason, hint = _RULE_REASONS[kind]
    return Decision(kind, reason.format(text=rule.text, source=rule.source), hint.format(source=rule.source))


@dataclass(frozen=True)
class PermissionPolicy:
    """A permission mode and the rules from settings; `decide` is the whole policy."""

    mode: PermissionMode = "default"
    rules: PermissionRules = field(default_factory=PermissionRules)
    protected: tuple[str, ...] = PROTECTED_PATHS
    """Workspace paths (gitignore-style) that define agents' rights: changing them always asks."""
    sandbox: bool = True
    """Run Bash under bubblewrap (tools/bash_sandbox.py); False only when the user opted out."""
    sandbox_network: bool = False
    """Let sandboxed commands reach the network."""

    @classmethod
    def of(
        cls, rules: PermissionRules, *, mode: PermissionMode | None = None, sandbox: bool = True
    ) -> PermissionPolicy:
        """The policy for settings `rules`: the mode given, else their defaultMode, else "default"; the
        sandbox on unless `sandbox` is False or the settings turn it off."""
        return cls(
            mode=mode or rules.default_mode or "default", rules=rules,
            sandbox=sandbox and rules.sandbox_enabled is not False, sandbox_network=bool(rules.sandbox_network),
        )  # fmt: skip

    def to_record(self) -> dict[str, object]:
        """What a run records, read once at its start: `resume` and `replay` use it, not the files again
        (which an agent might have changed in between)."""
        return {"mode": self.mode, "rules": self.rules.to_record(), "sandbox": self.sandbox,
                "sandbox_network": self.sandbox_network}  # fmt: skip

    @classmethod
    def from_record(cls, data: Mapping[str, Any], *, mode: PermissionMode | None = None) -> PermissionPolicy:
        return cls(
            mode=mode or data.get("mode", "default"), rules=PermissionRules.from_record(data.get("rules", {})),
            sandbox=bool(data.get("sandbox", True)), sandbox_network=bool(data.get("sandbox_network", False)),
        )  # fmt: skip

    def decide(self, tool_name: str, args: Mapping[str, object], workspace: Path) -> Decision:
        """allow, ask or deny this call, with the reason (the first step with an opinion decides)."""
        return (
            _by_rule("deny", self._first(self.rules.deny, tool_name, args, workspace))
            or self._plan_ceiling(tool_name)
            or self._protected(tool_name, args, workspace)
            or _by_rule("ask", self._first(self.rules.ask, tool_name, args, workspace))
            or _by_rule("allow", self._allowing(tool_name, args, workspace))
            or self._mode_default(tool_name, args, workspace)
        )

    def protects(self, raw: str, workspace: Path) -> bool:
        """Whether the path (as a tool argument) is protected configuration."""
        return any(path_pattern_matches(f"./{pattern}", raw, workspace) for pattern in self.protected)

    def _protected(self, tool: str, args: Mapping[str, object], workspace: Path) -> Decision | None:
        if self.mode == "bypassPermissions":
            return None
        if tool in EDIT_TOOLS and self.protects(str(args.get("file_path", "")), workspace):
            path = str(args["file_path"])
        elif tool == "Bash" and not self.sandbox and ".claude" in str(args.get("command", "")):
            path = ".claude/"  # sandboxed, the shell sees .claude read-only; unsandboxed, its mention asks
        else:
            return None
        return Decision(
            "ask",
            f"{path} defines agents' permissions or definitions (protected configuration): "
            "every change to it needs the user's approval",
            f"approve it only if you asked for this change; {_mode('bypassPermissions')} skips the check",
        )

    def _plan_ceiling(self, tool: str) -> Decision | None:
        if self.mode != "plan" or tool not in _PLAN_REFUSED:
            return None
        return Decision(
            "deny",
            f"{tool} is refused in permission mode plan (read-only)",
            f"use {_mode('default')} or acceptEdits to let it run",
        )

    def _first(self, rules: tuple[Rule, ...], tool: str, args: Mapping[str, object], workspace: Path) -> Rule | None:
        """The first rule that covers the call; for Bash, any simple command of the line (or the whole
        line) counts, so a deny or ask rule cannot be dodged by compounding."""
        if tool != "Bash":
            return next((r for r in rules if rule_matches(r, tool, args, workspace)), None)
        command = str(args.get("command", ""))
        candidates = (" ".join(command.split()), *parse_line(command).parts)
        for rule in rules:
            if rule.governs(tool) and (rule.specifier is None or any(command_matches(rule, c) for c in candidates)):
                return rule
        return None

    def _allowing(self, tool: str, args: Mapping[str, object], workspace: Path) -> Rule | None:
        """An allow rule covering the call. A Bash specifier rule covers one simple command only, and not
        one whose options make it write files or run other programs (`git diff --output=…`); a bare
        `Bash` rule covers every line."""
        if tool != "Bash":
            return self._first(self.rules.allow, tool, args, workspace)
        bare = next((r for r in self.rules.allow if r.governs(tool) and r.specifier is None), None)
        line = parse_line(str(args.get("command", "")))
        if bare is not None or not line.simple or not line.words or writes_files(line.words):
            return bare
        command = " ".join(line.words)
        return next((r for r in self.rules.allow if r.governs(tool) and command_matches(r, command)), None)

    def _mode_default(self, tool: str, args: Mapping[str, object], workspace: Path) -> Decision:
        allowed = (
            self.mode == "bypassPermissions"
            or tool in READ_ONLY_TOOLS
            or (self.mode == "acceptEdits" and tool in EDIT_TOOLS)
        )
        if allowed:
            return Decision("allow", f"{tool} is allowed in permission mode {self.mode}")
        return Decision(
            "ask", f"{tool} needs approval in permission mode {self.mode}{_why_no_rule(tool, args)}",
            _way_out(tool, args, workspace),
        )  # fmt: skip


def _why_no_rule(tool: str, args: Mapping[str, object]) -> str:
    """Why no prefix rule could have allowed this Bash line (empty for a simple command)."""
    if tool != "Bash":
        return ""
    line = parse_line(str(args.get("command", "")))
    if not line.simple:
        return f" (the line has {line.compound}: a command rule covers one simple command only)"
    if option := writes_files(line.words):
        return f" ({option} can write files or run other programs: a command rule does not cover it)"
    return ""
