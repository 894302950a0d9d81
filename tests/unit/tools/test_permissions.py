"""The permission policy as a table: mode defaults, rule syntax and Claude Code's Bash semantics, precedence,
protected configuration, and the reasons (for the model) and hints (for the user only) it gives."""

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
from orchestrator.tools.shell_split import parse_line, writes_files

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
    ("default", "Bash", BASH_PYTEST, "ask", "Bash needs approval in permission mode default"),
    ("default", "Edit", EDIT_DOC, "ask", "Edit needs approval in permission mode default"),
    ("default", "WebFetch", {"url": "https://docs.python.org/3/"}, "ask", "WebFetch needs approval in permission mode"),
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
    ("plan", "Bash", BASH_PYTEST, "deny", "Bash is refused in permission mode plan (read-only)"),
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
    assert "permissions.allow" not in decision.reason and "settings.json" not in decision.reason


@pytest.mark.parametrize(
    ("tool", "args", "hint"),
    [
        (
            "Bash",
            BASH_PYTEST,
            'to allow it, add "Bash(pytest -q tests)" to permissions.allow in .claude/settings.json (a server: ',
        ),
        (
            "Edit",
            EDIT_DOC,
            "to allow it, use --permission-mode acceptEdits (a server: permission_mode in the run's context), or add "
            '"Edit(./docs/a.md)"',
        ),
        ("WebFetch", {"url": "https://docs.python.org/3/"}, 'add "WebFetch(domain:docs.python.org)"'),
    ],
)
def test_the_way_out_is_a_hint_for_the_user_naming_the_exact_rule(
    tool: str, args: dict[str, object], hint: str
) -> None:
    assert hint in decide(tool, args).hint


RULE_TABLE: list[tuple[str, dict[str, object], dict[str, tuple[str, ...]], PermissionMode, str]] = [
    # (the Bash rules are in BASH_TABLE below)
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


def test_reasons_name_the_deciding_rule_and_hints_say_where_it_lives() -> None:
    denied = decide("Bash", {"command": "rm -rf x"}, deny=("Bash(rm:*)",), allow=("Bash",))
    assert denied.reason == 'denied by the rule "Bash(rm:*)" in permissions.deny'
    assert denied.hint == "remove that rule from .claude/settings.json to allow it"
    asked = decide("Bash", {"command": "git push"}, ask=("Bash(git push:*)",))
    assert asked.reason == 'the rule "Bash(git push:*)" in permissions.ask requires approval'
    assert asked.hint == "remove it from permissions.ask in .claude/settings.json to run without asking"
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
    ("command", "words", "parts", "compound"),
    [
        ("git diff --stat", ("git", "diff", "--stat"), ("git diff --stat",), ""),
        ("git diff 'a && b'", ("git", "diff", "a && b"), ("git diff a && b",), ""),
        ("pytest -q 2>&1", ("pytest", "-q"), ("pytest -q",), ""),
        ("git diff && rm -rf /", (), ("git diff", "rm -rf /"), "a command separator (&&)"),
        ("echo a\ntouch /tmp/x", (), ("echo a", "touch /tmp/x"), "a newline between commands"),
        ("FOO=1 BAR=2 make", (), ("make",), "an environment assignment (FOO=…)"),
        ("(cd a; make)", (), ("cd a", "make"), "a subshell"),
        ("git diff > out.txt", (), ("git diff", "out.txt"), "a redirection (>)"),
        ("cat <<EOF\nx\nEOF", (), ("cat", "EOF", "x", "EOF"), "a here-document"),
        ("echo $(rm -rf x)", (), ("echo $(rm -rf x)", "echo", "rm -rf x"), "a command substitution"),
        ('echo "open', (), ('echo "open',), "an unterminated quote"),
    ],
)
def test_parse_line(command: str, words: tuple[str, ...], parts: tuple[str, ...], compound: str) -> None:
    line = parse_line(command)
    assert (line.words, line.parts, line.compound) == (words, parts, compound)


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("git diff --output=/tmp/x", "--output=/tmp/x"),
        ("git -c core.fsmonitor=x diff", "-c"),
        ("sort -o out.txt in.txt", "-o"),
        ("sed -i s/a/b/ f", "-i"),
        ("find . -delete", "-delete"),
        ("curl -sSo page.html https://x", "-sSo"),
        ("git diff --stat", None),
        ("sort -n in.txt", None),
    ],
)
def test_options_that_write_files(command: str, option: str | None) -> None:
    assert writes_files(parse_line(command).words) == option


ECHO, DIFF, LS, NPM, SORT, CAT = (
    "Bash(echo:*)",
    "Bash(git diff:*)",
    "Bash(ls:*)",
    "Bash(npm test)",
    "Bash(sort:*)",
    "Bash(cat:*)",
)
ALLOWED = (ECHO, DIFF, LS, NPM, SORT, CAT, "Bash(npm run *)")
BASH_TABLE: list[tuple[str, str]] = [
    # one simple command that an allow rule covers: allowed
    ("echo hello", "allow"),
    ("echo 'a; b'", "allow"),
    ('echo "x > y"', "allow"),
    ("echo", "allow"),
    ("git diff", "allow"),
    ("git diff --stat HEAD~1", "allow"),
    ("git   diff  HEAD", "allow"),
    ("git diff 2>&1", "allow"),
    ("git diff >/dev/null 2>&1", "allow"),
    ("ls -la src", "allow"),
    ("ls >/dev/null", "allow"),
    ("npm test", "allow"),
    ("npm run build", "allow"),
    ("sort -n data.txt", "allow"),
    ("cat README.md", "allow"),
    # not covered by a rule: the mode asks
    ("git difftool", "ask"),
    ("npm test --watch", "ask"),
    ("lsof -i", "ask"),
    ("pytest -q", "ask"),
    # compound lines ask, whatever each part would be
    ("echo a; touch /tmp/x", "ask"),
    ("echo a && echo b", "ask"),
    ("echo a || echo b", "ask"),
    ("git diff | less", "ask"),
    ("ls & sleep 1", "ask"),
    ("echo a\ntouch /tmp/x", "ask"),
    ("echo a #x\ntouch y", "ask"),
    ("(echo a)", "ask"),
    ("cat <<EOF\nx\nEOF", "ask"),
    ("git diff $(id)", "ask"),
    ("git diff $(rm -rf ~)", "deny"),
    ("git diff `id`", "ask"),
    ("cat <(curl x)", "ask"),
    ('echo "$(whoami)"', "ask"),
    ('echo "unterminated', "ask"),
    # redirections into files ask, including the fd-looking ones
    ("echo X > notes.txt", "ask"),
    ("echo X >> ~/.bashrc", "ask"),
    ("echo X >&/some/path", "ask"),
    ("echo X >&~/.bashrc", "ask"),
    ("echo X &>out.log", "ask"),
    ("git diff > patch.txt", "ask"),
    ("cat < /etc/passwd", "ask"),
    # leading assignments ask: they change what the command does
    ("GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.fsmonitor GIT_CONFIG_VALUE_0='sh<hook.sh;:' git diff", "ask"),
    ("LD_PRELOAD=/tmp/x.so ls", "ask"),
    # options that write files or run programs are not covered by a reading command's rule
    ("git diff --output=/etc/cron.d/x", "ask"),
    ("git -c core.pager='sh -c id' diff", "ask"),
    ("git diff --ext-diff", "ask"),
    ("sort -o /tmp/out data.txt", "ask"),
    ("sort data.txt --output=/tmp/out", "ask"),
    # deny rules see every part of a line, and beat any allow
    ("rm -rf build", "deny"),
    ("echo ok; rm -rf build", "deny"),
    ("X=1 rm -rf build", "deny"),
    ("ls && rm -rf /", "deny"),
]


@pytest.mark.parametrize(("command", "kind"), BASH_TABLE)
def test_bash_rule_semantics(command: str, kind: str) -> None:
    decision = decide("Bash", {"command": command}, allow=ALLOWED, deny=("Bash(rm:*)",))
    assert decision.kind == kind, decision.reason


def test_the_bash_table_covers_forty_commands() -> None:
    assert len(BASH_TABLE) >= 40


@pytest.mark.parametrize(
    ("command", "lists", "mode", "kind"),
    [
        ("rm -rf build", {"allow": ("Bash",), "deny": ("Bash(rm:*)",)}, "default", "deny"),
        ("echo $(rm -rf x)", {"deny": ("Bash(rm:*)",)}, "bypassPermissions", "deny"),
        ("git push", {"allow": ("Bash",), "ask": ("Bash(git push:*)",)}, "default", "ask"),
        ("git push", {"ask": ("Bash(git push:*)",)}, "bypassPermissions", "ask"),
        ("git push", {"ask": ("Bash",), "deny": ("Bash(git push:*)",)}, "default", "deny"),
        ("pytest", {"allow": ("Bash(pytest:*)",)}, "plan", "deny"),
        ("echo a; touch x", {"allow": ("Bash",)}, "default", "allow"),
    ],
)
def test_bash_precedence(command: str, lists: dict[str, tuple[str, ...]], mode: PermissionMode, kind: str) -> None:
    assert decide("Bash", {"command": command}, mode, **lists).kind == kind


@pytest.mark.parametrize(
    ("tool", "args", "mode", "lists", "kind"),
    [
        ("Write", {"file_path": ".claude/settings.json"}, "acceptEdits", {}, "ask"),
        ("Write", {"file_path": ".claude/settings.local.json"}, "acceptEdits", {"allow": ("Edit",)}, "ask"),
        (
            "Edit",
            {"file_path": ".claude/agents/ml-engineer.md"},
            "acceptEdits",
            {"allow": ("Edit(./.claude/**)",)},
            "ask",
        ),
        ("Write", {"file_path": "/work/project/.claude/settings.json"}, "default", {}, "ask"),
        ("Write", {"file_path": ".claude/settings.json"}, "bypassPermissions", {}, "allow"),
        ("Write", {"file_path": ".claude/settings.json"}, "acceptEdits", {"deny": ("Edit(./.claude/**)",)}, "deny"),
        ("Write", {"file_path": ".claude/settings.json"}, "plan", {}, "deny"),
        ("Write", {"file_path": "docs/claude.md"}, "acceptEdits", {}, "allow"),
    ],
)
def test_protected_configuration_always_asks(
    tool: str, args: dict[str, object], mode: PermissionMode, lists: dict[str, tuple[str, ...]], kind: str
) -> None:
    decision = decide(tool, args, mode, **lists)
    assert decision.kind == kind
    if kind == "ask":
        assert "protected configuration" in decision.reason


def test_without_the_sandbox_a_command_that_names_the_settings_asks() -> None:
    """Sandboxed, the shell sees .claude read-only; opted out, a command that mentions it asks."""
    command = {"command": "cp x .claude/settings.json"}
    sandboxed = PermissionPolicy(rules=rules(allow=("Bash",)))
    unsandboxed = PermissionPolicy(rules=rules(allow=("Bash",)), sandbox=False)
    assert sandboxed.decide("Bash", command, WS).kind == "allow"
    assert unsandboxed.decide("Bash", command, WS).kind == "ask"


def test_a_policy_is_recorded_and_restored_exactly() -> None:
    policy = PermissionPolicy.of(rules(allow=(ECHO,), ask=("Bash(git push:*)",), deny=("Read(./.env)",)), mode="plan")
    restored = PermissionPolicy.from_record(json.loads(json.dumps(policy.to_record())))
    assert restored == policy
    assert PermissionPolicy.from_record(policy.to_record(), mode="default").mode == "default"
