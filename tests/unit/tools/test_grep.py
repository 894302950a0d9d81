"""Grep with ripgrep semantics: every expectation runs against each engine this machine has.

The Python fallback always runs; ripgrep runs too where `rg` is installed (CI installs it), and both must
produce the same text for the same fixture, which is the point of the shared renderer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext
from orchestrator.tools.grep import GREP, GrepArgs, available_engines, grep
from orchestrator.tools.grep_query import Engine, GrepQuery
from orchestrator.tools.grep_rg import rg_argv

ENGINES = available_engines()

FILES: dict[str, bytes] = {
    ".gitignore": b"build/\n*.log\n!keep.log\n",
    "src/app.py": b"import os\n\ndef main():\n    print('Hello World')\n    return 0\n",
    "src/util.py": b"def helper():\n    return 'hello'\n",
    "src/sub/deep.py": b"HELLO = 1\n",
    "src/sub/.gitignore": b"generated.py\n",
    "src/sub/generated.py": b"hello generated\n",
    "docs/guide.md": b"# Guide\nhello docs\nmore\n",
    "build/out.py": b"hello build\n",
    "app.log": b"hello log\n",
    "keep.log": b"hello keep\n",
    ".hidden/notes.txt": b"hello hidden\n",
    ".git/config": b"hello git\n",
    "blob.bin": b"hello\0binary\n",
    "crlf.txt": b"hello there\r\nbye\r\n",
}


@pytest.fixture
def tree(ws: Path) -> Path:
    for age, (rel, data) in enumerate(FILES.items()):
        path = ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (1_700_000_000 - age, 1_700_000_000 - age))
    return ws


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> Engine:
    return ENGINES[request.param]


def test_the_python_fallback_is_always_among_the_tested_engines() -> None:
    assert "python" in ENGINES


async def search(ctx: ToolContext, engine: Engine, **raw: Any) -> str:
    return await grep(GrepArgs.model_validate(raw), ctx, engine)


CASES: list[tuple[dict[str, Any], str]] = [
    # files_with_matches: newest first; .gitignore (nested too), .git, binary files and symlinks skipped
    (
        {"pattern": "hello"},
        "Found 5 files\nsrc/util.py\ndocs/guide.md\nkeep.log\n.hidden/notes.txt\ncrlf.txt",
    ),
    (
        {"pattern": "hello", "-i": True},
        "Found 7 files\nsrc/app.py\nsrc/util.py\nsrc/sub/deep.py\ndocs/guide.md\nkeep.log\n.hidden/notes.txt\ncrlf.txt",
    ),
    ({"pattern": "hello", "path": "src"}, "Found 1 files\nsrc/util.py"),
    # a --glob whitelist beats ignore files (ripgrep's precedence), a negated glob only excludes
    (
        {"pattern": "hello", "glob": "*.py", "-i": True},
        "Found 4 files\nsrc/app.py\nsrc/util.py\nsrc/sub/deep.py\nsrc/sub/generated.py",
    ),
    ({"pattern": "hello", "glob": "src/*.py", "-i": True}, "Found 2 files\nsrc/app.py\nsrc/util.py"),
    (
        {"pattern": "hello", "glob": "!*.py"},
        "Found 4 files\ndocs/guide.md\nkeep.log\n.hidden/notes.txt\ncrlf.txt",
    ),
    ({"pattern": "hello", "glob": "*.log"}, "Found 2 files\napp.log\nkeep.log"),
    ({"pattern": "HELLO", "type": "py"}, "Found 1 files\nsrc/sub/deep.py"),
    ({"pattern": "hello", "type": "md"}, "Found 1 files\ndocs/guide.md"),
    ({"pattern": "hello", "path": "build/out.py"}, "Found 1 files\nbuild/out.py"),
    ({"pattern": "nothing-like-this"}, "No files found"),
    # content: sorted by path, path:N:line for matches, path-N-line for context, -- between groups
    (
        {"pattern": "hello", "output_mode": "content"},
        ".hidden/notes.txt:1:hello hidden\ncrlf.txt:1:hello there\ndocs/guide.md:2:hello docs\n"
        "keep.log:1:hello keep\nsrc/util.py:2:    return 'hello'",
    ),
    (
        {"pattern": "hello", "output_mode": "content", "head_limit": 2},
        ".hidden/notes.txt:1:hello hidden\ncrlf.txt:1:hello there\n"
        "(Showing the first 2 of 5 lines; raise head_limit to see more.)",
    ),
    ({"pattern": "hello", "output_mode": "content", "-n": False, "path": "docs"}, "docs/guide.md:hello docs"),
    (
        {"pattern": "print", "output_mode": "content", "-C": 1},
        "src/app.py-3-def main():\nsrc/app.py:4:    print('Hello World')\nsrc/app.py-5-    return 0",
    ),
    (
        {"pattern": "^(def|    return)", "output_mode": "content", "-B": 1, "path": "src"},
        "src/app.py-2-\nsrc/app.py:3:def main():\nsrc/app.py-4-    print('Hello World')\n"
        "src/app.py:5:    return 0\n"
        "--\nsrc/util.py:1:def helper():\nsrc/util.py:2:    return 'hello'",
    ),
    (
        {"pattern": "hello", "output_mode": "content", "-A": 1, "path": "docs/guide.md"},
        "docs/guide.md:2:hello docs\ndocs/guide.md-3-more",
    ),
    (
        {"pattern": r"def main\(\):\n\s+print", "output_mode": "content", "multiline": True},
        "src/app.py:3:def main():\nsrc/app.py:4:    print('Hello World')",
    ),
    ({"pattern": "there$", "output_mode": "content"}, "No matches found"),
    # count: matching lines per file, sorted by path, with a total
    (
        {"pattern": "hello", "output_mode": "count", "path": "src", "-i": True},
        "src/app.py:1\nsrc/sub/deep.py:1\nsrc/util.py:1\n\nFound 3 matches across 3 files.",
    ),
    (
        {"pattern": "o", "output_mode": "count", "glob": "src/*.py", "head_limit": 1},
        "src/app.py:2\n(Showing the first 1 of 2 files; raise head_limit to see more.)\n\n"
        "Found 3 matches across 2 files.",
    ),
    (
        {"pattern": "main.*?return", "output_mode": "count", "multiline": True, "path": "src"},
        "src/app.py:1\n\nFound 1 matches across 1 files.",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=[str(raw) for raw, _ in CASES])
async def test_grep_output(tree: Path, ctx: ToolContext, engine: Engine, raw: dict[str, Any], expected: str) -> None:
    assert await search(ctx, engine, **raw) == expected


async def test_grep_invalid_regex_is_a_tool_error(tree: Path, ctx: ToolContext, engine: Engine) -> None:
    with pytest.raises(ToolError, match=r"^Invalid regex '\(unclosed': "):
        await search(ctx, engine, pattern="(unclosed")


async def test_grep_newline_needs_multiline(tree: Path, ctx: ToolContext, engine: Engine) -> None:
    with pytest.raises(ToolError) as err:
        await search(ctx, engine, pattern=r"main()\n")
    assert str(err.value) == (
        "Invalid regex 'main()\\\\n': it contains a newline (\\n), which can only match with multiline set to true."
    )


async def test_grep_missing_path(tree: Path, ctx: ToolContext, engine: Engine) -> None:
    with pytest.raises(ToolError, match=r"^path 'nope' does not exist\.$"):
        await search(ctx, engine, pattern="x", path="nope")


async def test_grep_skips_symlinks_to_outside(ws: Path, ctx: ToolContext, engine: Engine) -> None:
    (ws / "link.txt").symlink_to(ws.parent / "outside" / "secret.txt")
    (ws / "linkdir").symlink_to(ws.parent / "outside", target_is_directory=True)
    assert await search(ctx, engine, pattern="secret") == "No files found"


def test_grep_aliases_follow_ripgrep_flags() -> None:
    args = GrepArgs.model_validate({"pattern": "x", "-i": True, "-n": False, "-A": 1, "-B": 2, "-C": 3})
    assert (args.case_insensitive, args.line_numbers, args.after, args.before, args.context) == (
        True,
        False,
        1,
        2,
        3,
    )
    by_name = GrepArgs.model_validate({"pattern": "x", "case_insensitive": True})
    assert by_name.case_insensitive
    properties = GREP.schema()["input_schema"]["properties"]
    assert {"-i", "-n", "-A", "-B", "-C", "output_mode", "head_limit", "multiline"} <= set(properties)
    assert properties["output_mode"]["default"] == "files_with_matches"


def test_rg_argv_is_a_pinned_argument_list(ws: Path) -> None:
    query = GrepQuery(root=ws, target=ws / "src", pattern="-e; rm -rf /", mode="content", glob="*.py", after=2)
    argv = rg_argv("/usr/bin/rg", query)
    assert argv[0] == "/usr/bin/rg"
    assert {"--no-config", "--hidden", "--no-require-git", "--no-ignore-parent", "--json"} <= set(argv)
    assert argv[-4:] == ["--regexp", "-e; rm -rf /", "--", "src"]
    assert argv[argv.index("--after-context") + 1] == "2"
