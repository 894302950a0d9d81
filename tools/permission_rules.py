"""Permission rules in Claude Code's syntax, and loading them from settings files.

A rule is a tool name, optionally with a specifier in parentheses:
`Bash` (the whole tool), `Bash(npm test)` (exact command), `Bash(git diff:*)` (command prefix, at a word
boundary), `Bash(npm run *)` (wildcard), `Read(./src/**)` / `Edit(./docs/*.md)` (gitignore-style path
globs: `./x` and `/x` from the workspace root, `//x` absolute, `~/x` from home, a bare name at any
depth), `WebFetch(domain:example.com)` (`*.example.com` for subdomains) and `Task(agent-name)`.
`Edit(...)` rules also govern Write; `Read(...)` rules also govern Glob and Grep (by their search path).
Matching is pure string work, so the policy can be tested without a file system.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from orchestrator.errors import UserError
from orchestrator.tools.globpattern import glob_to_regex, parse_git_glob

__all__ = [
    "RULE_FAMILIES",
    "PermissionMode",
    "PermissionRules",
    "Rule",
    "RuleList",
    "command_matches",
    "load_settings",
    "parse_rule",
    "parse_settings",
    "path_pattern_matches",
    "rule_matches",
]

PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]
RuleList = Literal["allow", "ask", "deny"]

RULE_FAMILIES: Mapping[str, frozenset[str]] = {
    "Edit": frozenset({"Edit", "Write", "NotebookEdit"}),
    "Read": frozenset({"Read", "Glob", "Grep"}),
}
"""A rule on the left governs every tool on the right (Claude Code: Edit rules cover all file edits)."""
_PATH_TOOLS = frozenset({"Read", "Edit", "Write", "Glob", "Grep", "NotebookEdit"})
_SPECIFIED_TOOLS = _PATH_TOOLS | {"Bash", "WebFetch", "Task"}
_RULE = re.compile(r"(?P<tool>[A-Za-z_][\w-]*)(?:\((?P<spec>.*)\))?", re.DOTALL)


@dataclass(frozen=True)
class Rule:
    """One parsed rule, with the file it came from (for reasons that tell the user where to look)."""

    tool: str
    specifier: str | None
    text: str
    source: str = "<settings>"

    def governs(self, tool_name: str) -> bool:
        return tool_name in RULE_FAMILIES.get(self.tool, frozenset({self.tool}))


@dataclass(frozen=True)
class PermissionRules:
    """The merged allow/ask/deny lists of every settings file, and the last `defaultMode` seen."""

    allow: tuple[Rule, ...] = ()
    ask: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    default_mode: PermissionMode | None = None
    sandbox_enabled: bool | None = None
    """`"sandbox": {"enabled": false}` opts Bash out of the bubblewrap sandbox (None: not set)."""
    sandbox_network: bool | None = None
    """`"sandbox": {"network": true}` lets sandboxed commands reach the network (None: not set)."""

    def merged(self, other: PermissionRules) -> PermissionRules:
        return PermissionRules(
            allow=self.allow + other.allow,
            ask=self.ask + other.ask,
            deny=self.deny + other.deny,
            default_mode=other.default_mode or self.default_mode,
            sandbox_enabled=_later(self.sandbox_enabled, other.sandbox_enabled),
            sandbox_network=_later(self.sandbox_network, other.sandbox_network),
        )

    def to_record(self) -> dict[str, Any]:
        """Plain data for a run's record (`from_record` restores it exactly)."""
        lists = {key: [[r.text, r.source] for r in getattr(self, key)] for key in ("allow", "ask", "deny")}
        flags = {"sandbox_enabled": self.sandbox_enabled, "sandbox_network": self.sandbox_network}
        return {**lists, "default_mode": self.default_mode, **flags}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> PermissionRules:
        def rules(key: str) -> tuple[Rule, ...]:
            return tuple(parse_rule(text, source=source) for text, source in data.get(key, []))

        return cls(
            allow=rules("allow"), ask=rules("ask"), deny=rules("deny"), default_mode=data.get("default_mode"),
            sandbox_enabled=data.get("sandbox_enabled"), sandbox_network=data.get("sandbox_network"),
        )  # fmt: skip


def _later(first: bool | None, second: bool | None) -> bool | None:
    return first if second is None else second


def parse_rule(text: str, source: str = "<settings>") -> Rule:
    """Parse `Tool` or `Tool(specifier)`; a ValueError says what is wrong with it."""
    match = _RULE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'invalid rule "{text}": expected Tool or Tool(specifier), e.g. "Bash(git diff:*)"')
    tool, spec = match["tool"], match["spec"] or None
    if spec is not None and tool not in _SPECIFIED_TOOLS:
        known = ", ".join(sorted(_SPECIFIED_TOOLS))
        raise ValueError(f'invalid rule "{text}": {tool} takes no specifier (specifiers work for {known})')
    if tool == "WebFetch" and spec is not None and not spec.startswith("domain:"):
        raise ValueError(f'invalid rule "{text}": WebFetch rules look like "WebFetch(domain:example.com)"')
    return Rule(tool=tool, specifier=spec, text=text.strip(), source=source)


def command_matches(rule: Rule, command: str) -> bool:
    """Bash specifier against one simple command: `prefix:*`, a `*` wildcard, or the exact command."""
    spec = " ".join((rule.specifier or "").split())
    if spec.endswith(":*"):
        prefix = spec[:-2]
        return command == prefix or command.startswith(prefix + " ")
    if "*" in spec:
        return re.fullmatch(".*".join(map(re.escape, spec.split("*"))), command, re.DOTALL) is not None
    return command == spec


def _path_candidates(raw: str, workspace: Path) -> tuple[PurePosixPath, PurePosixPath | None]:
    """The absolute path, and the workspace-relative one (None when outside), lexically normalized."""
    joined = Path(os.path.normpath(workspace / os.path.expanduser(raw)))
    absolute = PurePosixPath(joined.as_posix())
    root = PurePosixPath(workspace.as_posix())
    return absolute, absolute.relative_to(root) if absolute.is_relative_to(root) else None


def path_pattern_matches(pattern: str, raw: str, workspace: Path) -> bool:
    """gitignore semantics: the path matches, or one of its directories does (covering its contents)."""
    absolute, rel = _path_candidates(raw, workspace)
    if pattern.startswith(("//", "~/")):
        anchored = os.path.expanduser(pattern[1:] if pattern.startswith("//") else pattern).lstrip("/")
        target, regex = absolute.relative_to("/"), glob_to_regex(anchored)
        return any(regex.match(p.as_posix()) for p in (target, *target.parents[:-1]))
    glob = parse_git_glob("/" + pattern[2:] if pattern.startswith("./") else pattern)
    if rel is None or glob is None or rel == PurePosixPath("."):
        return False
    return glob.matches(rel.as_posix(), is_dir=False) or any(
        glob.matches(parent.as_posix(), is_dir=True) for parent in rel.parents[:-1]
    )


def _path_arg(tool_name: str, args: Mapping[str, object]) -> str:
    key = "file_path" if tool_name in ("Read", "Edit", "Write") else "path"
    value = args.get(key) or args.get("notebook_path") or "."
    return str(value)


def _host(url: object) -> str:
    return (urlsplit(str(url)).hostname or "").lower()


def rule_matches(rule: Rule, tool_name: str, args: Mapping[str, object], workspace: Path) -> bool:
    """Whether `rule` covers this call (Bash is judged per simple command by the policy, not here)."""
    if not rule.governs(tool_name):
        return False
    spec = rule.specifier
    if spec is None:
        return True
    if rule.tool in _PATH_TOOLS:
        return path_pattern_matches(spec, _path_arg(tool_name, args), workspace)
    if rule.tool == "WebFetch":
        domain, host = spec.removeprefix("domain:").lower(), _host(args.get("url", ""))
        return host == domain or (domain.startswith("*.") and host.endswith(domain[1:]))
    if rule.tool == "Task":
        return args.get("subagent_type") == spec
    return command_matches(rule, str(args.get("command", "")))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON in settings: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read settings: {exc}") from exc


def _rule_list(source: str, permissions: Mapping[str, Any], key: RuleList) -> tuple[Rule, ...]:
    texts = permissions.get(key, [])
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise UserError(f"{source}: permissions.{key} must be a list of strings")
    rules = []
    for index, text in enumerate(texts):
        try:
            rules.append(parse_rule(text, source=source))
        except ValueError as exc:
            raise UserError(f"{source}: permissions.{key}[{index}]: {exc}") from exc
    return tuple(rules)


def _default_mode(source: str, permissions: Mapping[str, Any]) -> PermissionMode | None:
    mode = permissions.get("defaultMode")
    if mode is not None and mode not in get_args(PermissionMode):
        known = ", ".join(get_args(PermissionMode))
        raise UserError(f"{source}: permissions.defaultMode {mode!r} is not one of {known}")
    return mode


def _sandbox(source: str, data: Mapping[str, Any]) -> tuple[bool | None, bool | None]:
    sandbox = data.get("sandbox", {})
    if not isinstance(sandbox, dict):
        raise UserError(f'{source}: "sandbox" must be an object like {{"enabled": true, "network": false}}')
    for key in ("enabled", "network"):
        if key in sandbox and not isinstance(sandbox[key], bool):
            raise UserError(f"{source}: sandbox.{key} must be true or false, not {sandbox[key]!r}")
    return sandbox.get("enabled"), sandbox.get("network")


def parse_settings(data: object, source: str) -> PermissionRules:
    """The permission rules of one settings object in Claude Code's JSON (`{"permissions": {"allow": [...],
    "ask": [...], "deny": [...], "defaultMode": ...}, "sandbox": {"enabled": ..., "network": ...}}`); a
    malformed one is a UserError naming `source` and the key."""
    permissions = data.get("permissions", {}) if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(permissions, dict):
        raise UserError(f'{source}: settings must be a JSON object whose "permissions" is an object')
    enabled, network = _sandbox(source, data)
    return PermissionRules(
        allow=_rule_list(source, permissions, "allow"),
        ask=_rule_list(source, permissions, "ask"),
        deny=_rule_list(source, permissions, "deny"),
        default_mode=_default_mode(source, permissions),
        sandbox_enabled=enabled,
        sandbox_network=network,
    )


def load_settings(paths: Sequence[Path]) -> PermissionRules:
    """Merge the permission rules of several settings files (missing files are skipped, since the user
    and project settings files are optional); a malformed file is a UserError naming it."""
    rules = PermissionRules()
    for path in paths:
        if path.exists():
            rules = rules.merged(parse_settings(_read_json(path), str(path)))
    return rules
