"""The permission policy as a table: mode defaults, rule syntax, precedence, and the reasons it gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.tools.permissions import (
    Decision,
    PermissionMode,
    PermissionPolicy,
    PermissionRules,
    Rule,
    load_settings,
    parse_rule,
)
from orchestrator.tools.shell_split import split_command

WS = Path("/work/project")


def rules(allow: tuple[str, ...] = (), ask: tuple[str, ...] = (), deny: tuple[str, ...] = ()) -> PermissionRules:
    def parse(texts: tuple[str, ...]) -> tuple[Rule, ...]:
        return tuple(parse_rule(t, source=".claude/settings.json") for t in texts)

    return PermissionRules(allow=parse(allow), ask=parse(ask), deny=parse(deny))


def decide(tool: str, args: dict[str, object], mode: PermissionMode = "default", **lists: tuple[str, ...]) -> Decision:
    return PermissionPolicy(mode=mode, rules=rules(**lists)).decide(tool, args, WS)


BASH_PYTEST: dict[str, object] = {"command": "pytest -q tests"}
EDIT_DOC: dict[str, object] = {"file_path": "docs/a.md", "old_string": "a", "new_string": "b"}

MODE_TABLE = [
    ("default", "Read", {"file_path": "a.py"}, "allow", "Read is allowed in permission mode default"),
    ("default", "Grep", {"pattern": "x"}, "allow", "Grep is allowed in permission mode default"),
    (
        "default",
        "Task",
        {"subagent_type": "ml-engineer"},
        "allow",
        "Task is allowed in permission mode default",
    ),
    (
        "default",
        "Bash",
        BASH_PYTEST,
        "ask",
        "Bash needs approval in permission mode default; to allow it, "
        'add "Bash(pytest:*)" to permissions.allow in .claude/settings.json, '
        "or use --permission-mode bypassPermissions",
    ),
    (
        "default",
        "Edit",
        EDIT_DOC,
        "ask",
        "Edit needs approval in permission mode default; to allow it, use --permission-mode acceptEdits, "
        'or add "Edit(./docs/a.md)" to permissions.allow in .claude/settings.json',
    ),
    (
        "default",
        "WebFetch",
        {"url": "https://docs.python.org/3/", "prompt": "p"},
        "ask",
        "WebFetch needs approval in permission mode default; to allow it, "
        'add "WebFetch(domain:docs.python.org)" to permissions.allow in .claude/settings.json, '
        "or use --permission-mode bypassPermissions",
    ),
    ("acceptEdits", "Edit", EDIT_DOC, "allow", "Edit is allowed in permission mode acceptEdits"),
    (
        "acceptEdits",
        "Write",
        {"file_path": "n.py", "content": ""},
        "allow",
        "Write is allowed in permission mode",
    ),
    ("acceptEdits", "Bash", BASH_PYTEST, "ask", "Bash needs approval in permission mode acceptEdits"),
    ("plan", "Read", {"file_path": "a.py"}, "allow", "Read is allowed in permission mode plan"),
    (
        "plan",
        "Bash",
        BASH_PYTEST,
        "deny",
        "Bash is refused in permission mode plan (read-only); use --permission-mode default or acceptEdits "
        "to let it run",
    ),
    (
        "plan",
        "Write",
        {"file_path": "n.py", "content": ""},
        "deny",
        "Write is refused in permission mode plan",
    ),
    ("plan", "Edit", EDIT_DOC, "deny", "Edit is refused in permission mode plan"),
    ("plan", "WebFetch", {"url": "https://x.org", "prompt": "p"}, "ask", "WebFetch needs approval"),
    (
        "bypassPermissions",
        "Bash",
        BASH_PYTEST,
        "allow",
        "Bash is allowed in permission mode bypassPermissions",
    ),
    ("bypassPermissions", "Write", {"file_path": "n.py"}, "allow", "Write is allowed in permission mode"),
]


@pytest.mark.parametrize(("mode", "tool", "args", "kind", "reason"), MODE_TABLE)
def test_mode_defaults(mode: PermissionMode, tool: str, args: dict[str, object], kind: str, reason: str) -> None:
    decision = decide(tool, args, mode)
    assert decision.kind == kind
    assert decision.reason.startswith(reason)


RULE_TABLE: list[tuple[str, dict[str, object], dict[str, tuple[str, ...]], PermissionMode, str]] = [
    # Bash prefix rules match at a word boundary, and every simple command of a line must be allowed
    ("Bash", {"command": "git diff --stat"}, {"allow": ("Bash(git diff:*)",)}, "default", "allow"),
    ("Bash", {"command": "git diff"}, {"allow": ("Bash(git diff:*)",)}, "default", "allow"),
    ("Bash", {"command": "git   diff  HEAD"}, {"allow": ("Bash(git diff:*)",)}, "default", "allow"),
    ("Bash", {"command": "git difftool"}, {"allow": ("Bash(git diff:*)",)}, "default", "ask"),
    ("Bash", {"command": "git diff && rm -rf /"}, {"allow": ("Bash(git diff:*)",)}, "default", "ask"),
    ("Bash", {"command": "git diff | less"}, {"allow": ("Bash(git diff:*)",)}, "default", "ask"),
    (
        "Bash",
        {"command": "git diff | wc -l"},
        {"allow": ("Bash(git diff:*)", "Bash(wc:*)")},
        "default",
        "allow",
    ),
    ("Bash", {"command": "git diff $(rm -rf ~)"}, {"allow": ("Bash(git diff:*)",)}, "default", "ask"),
    ("Bash", {"command": "git diff `id`"}, {"allow": ("Bash(git diff:*)",)}, "default", "ask"),
    ("Bash", {"command": "git diff > patch.txt"}, {"allow": ("Bash(git diff:*)",)}, "default", "ask"),
    ("Bash", {"command": "git diff 2>&1"}, {"allow": ("Bash(git diff:*)",)}, "default", "allow"),
    ("Bash", {"command": "git diff 'a && b'"}, {"allow": ("Bash(git diff:*)",)}, "default", "allow"),
    # exact and wildcard Bash rules
    ("Bash", {"command": "npm test"}, {"allow": ("Bash(npm test)",)}, "default", "allow"),
    ("Bash", {"command": "npm test --watch"}, {"allow": ("Bash(npm test)",)}, "default", "ask"),
    ("Bash", {"command": "npm run build"}, {"allow": ("Bash(npm run *)",)}, "default", "allow"),
    # deny > ask > allow, whatever the mode
    ("Bash", {"command": "rm -rf build"}, {"allow": ("Bash",), "deny": ("Bash(rm:*)",)}, "default", "deny"),
    (
        "Bash",
        {"command": "ls; rm -rf build"},
        {"allow": ("Bash",), "deny": ("Bash(rm:*)",)},
        "default",
        "deny",
    ),
    ("Bash", {"command": "CI=1 rm -rf x"}, {"deny": ("Bash(rm:*)",)}, "bypassPermissions", "deny"),
    ("Bash", {"command": "echo $(rm -rf x)"}, {"deny": ("Bash(rm:*)",)}, "bypassPermissions", "deny"),
    ("Bash", {"command": "git push"}, {"allow": ("Bash",), "ask": ("Bash(git push:*)",)}, "default", "ask"),
    ("Bash", {"command": "git push"}, {"ask": ("Bash(git push:*)",)}, "bypassPermissions", "ask"),
    ("Bash", {"command": "git push"}, {"ask": ("Bash",), "deny": ("Bash(git push:*)",)}, "default", "deny"),
    ("Bash", {"command": "pytest"}, {"allow": ("Bash(pytest:*)",)}, "plan", "deny"),
    # path rules: gitignore-style, relative to the workspace;
    # Edit rules cover Write, Read rules cover Grep and Glob
    ("Edit", EDIT_DOC, {"allow": ("Edit(./docs/*.md)",)}, "default", "allow"),
    ("Write", {"file_path": "docs/new.md"}, {"allow": ("Edit(./docs/*.md)",)}, "default", "allow"),
    ("Edit", {"file_path": "/work/project/docs/a.md"}, {"allow": ("Edit(./docs/*.md)",)}, "default", "allow"),
    ("Edit", {"file_path": "docs/sub/a.md"}, {"allow": ("Edit(./docs/*.md)",)}, "default", "ask"),
    ("Edit", {"file_path": "docs/../src/x.py"}, {"allow": ("Edit(./docs/**)",)}, "default", "ask"),
    ("Edit", {"file_path": "src/a.py"}, {"allow": ("Edit(./src/**)",)}, "default", "allow"),
    ("Read", {"file_path": ".env"}, {"deny": ("Read(./.env)",)}, "default", "deny"),
    ("Read", {"file_path": "sub/.env"}, {"deny": ("Read(./.env)",)}, "default", "allow"),
    ("Read", {"file_path": "sub/.env"}, {"deny": ("Read(.env)",)}, "default", "deny"),
    ("Read", {"file_path": "a/b.key"}, {"deny": ("Read(*.key)",)}, "default", "deny"),
    ("Read", {"file_path": "secrets/k.txt"}, {"deny": ("Read(./secrets)",)}, "default", "deny"),
    ("Grep", {"pattern": "x", "path": "secrets"}, {"deny": ("Read(./secrets)",)}, "default", "deny"),
    ("Glob", {"pattern": "*"}, {"deny": ("Read",)}, "bypassPermissions", "deny"),
    ("Read", {"file_path": "/etc/passwd"}, {"deny": ("Read(//etc/**)",)}, "bypassPermissions", "deny"),
    ("Read", {"file_path": "/etc/passwd"}, {"deny": ("Read(./etc/**)",)}, "default", "allow"),
    # WebFetch domains and Task agents
    (
        "WebFetch",
        {"url": "https://example.com/a"},
        {"allow": ("WebFetch(domain:example.com)",)},
        "default",
        "allow",
    ),
    (
        "WebFetch",
        {"url": "https://api.example.com"},
        {"allow": ("WebFetch(domain:example.com)",)},
        "default",
        "ask",
    ),
    (
        "WebFetch",
        {"url": "https://api.example.com"},
        {"allow": ("WebFetch(domain:*.example.com)",)},
        "default",
        "allow",
    ),
    (
        "WebFetch",
        {"url": "https://example.com.evil.io"},
        {"allow": ("WebFetch(domain:example.com)",)},
        "default",
        "ask",
    ),
    ("Task", {"subagent_type": "deployer"}, {"deny": ("Task(deployer)",)}, "default", "deny"),
    ("Task", {"subagent_type": "ml-engineer"}, {"deny": ("Task(deployer)",)}, "default", "allow"),
]


@pytest.mark.parametrize(("tool", "args", "lists", "mode", "kind"), RULE_TABLE)
def test_rule_precedence(
    tool: str, args: dict[str, object], lists: dict[str, tuple[str, ...]], mode: PermissionMode, kind: str
) -> None:
    assert decide(tool, args, mode, **lists).kind == kind


def test_reasons_name_the_deciding_rule_and_the_way_out() -> None:
    denied = decide("Bash", {"command": "rm -rf x"}, deny=("Bash(rm:*)",), allow=("Bash",))
    assert denied.reason == (
        'denied by the rule "Bash(rm:*)" in permissions.deny (.claude/settings.json); remove that rule to allow it'
    )
    asked = decide("Bash", {"command": "git push"}, ask=("Bash(git push:*)",))
    assert asked.reason == (
        'the rule "Bash(git push:*)" in permissions.ask (.claude/settings.json) requires approval; '
        "remove it from permissions.ask to run without asking"
    )
    allowed = decide("Bash", {"command": "git diff"}, allow=("Bash(git diff:*)",))
    assert allowed.reason == 'allowed by the rule "Bash(git diff:*)" in permissions.allow (.claude/settings.json)'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Bash(", 'invalid rule "Bash(": expected Tool or Tool(specifier), e.g. "Bash(git diff:*)"'),
        ("WebFetch(example.com)", 'invalid rule "WebFetch(example.com)": WebFetch rules look like'),
        ("WebSearch(cats)", 'invalid rule "WebSearch(cats)": WebSearch takes no specifier'),
    ],
)
def test_bad_rules(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse_rule(text)


def test_bare_mcp_style_rule_parses() -> None:
    rule = parse_rule("mcp__github__create_issue")
    assert (rule.tool, rule.specifier) == ("mcp__github__create_issue", None)


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def test_load_settings_merges_files_and_skips_missing(tmp_path: Path) -> None:
    user = write_json(tmp_path / "user.json", {"permissions": {"allow": ["Bash(git diff:*)"], "defaultMode": "plan"}})
    project = write_json(tmp_path / "project.json", {"permissions": {"deny": ["Read(./.env)"], "ask": ["Bash"]}})
    merged = load_settings([user, tmp_path / "absent.json", project])
    assert [r.text for r in merged.allow] == ["Bash(git diff:*)"]
    assert [r.text for r in merged.ask] == ["Bash"]
    assert [(r.text, r.source) for r in merged.deny] == [("Read(./.env)", str(project))]
    assert merged.default_mode == "plan"


def test_load_settings_names_file_and_line_of_bad_json(tmp_path: Path) -> None:
    bad = tmp_path / "settings.json"
    bad.write_text('{\n  "permissions": {\n    "allow": ["Bash",]\n  }\n}\n')
    with pytest.raises(UserError, match=rf"^{bad}:3:\d+: invalid JSON in settings: "):
        load_settings([bad])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], 'settings must be a JSON object whose "permissions" is an object'),
        ({"permissions": []}, 'settings must be a JSON object whose "permissions" is an object'),
        ({"permissions": {"allow": "Bash"}}, "permissions.allow must be a list of strings"),
        ({"permissions": {"deny": ["Read", "Bash("]}}, 'permissions.deny[1]: invalid rule "Bash("'),
        ({"permissions": {"defaultMode": "yolo"}}, "permissions.defaultMode 'yolo' is not one of default,"),
    ],
)
def test_load_settings_shape_errors(tmp_path: Path, data: object, message: str) -> None:
    path = write_json(tmp_path / "s.json", data)
    with pytest.raises(UserError) as err:
        load_settings([path])
    assert str(err.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize(
    ("command", "parts", "analyzable"),
    [
        ("git diff && rm -rf /", ("git diff", "rm -rf /"), True),
        ("pytest -q 2>&1 | tail -5", ("pytest -q 2>&1", "tail -5"), True),
        ('echo "a && b"', ('echo "a && b"',), True),
        ("echo 'x;y'; ls", ("echo 'x;y'", "ls"), True),
        ("FOO=1 BAR=2 make", ("make",), True),
        ("(cd a; make)", ("cd a", "make"), True),
        ("ls > /dev/null", ("ls > /dev/null",), True),
        ("git diff > out.txt", ("git diff > out.txt",), False),
        ('echo "$(whoami)"', ('echo "$(whoami)"',), False),
        ('echo "open', ('echo "open',), False),
    ],
)
def test_split_command(command: str, parts: tuple[str, ...], analyzable: bool) -> None:
    split = split_command(command)
    assert (split.parts, split.analyzable) == (parts, analyzable)
