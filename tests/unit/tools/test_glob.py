"""Glob on a real tree: pattern dialect, newest-first order, the cap, and staying inside the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext
from orchestrator.tools.glob import MAX_RESULTS, GlobArgs, run_glob
from orchestrator.tools.globpattern import glob_to_regex, parse_git_glob


def touch(root: Path, rel: str, age: int) -> None:
    """Create `rel` with an mtime `age` seconds in the past, so order does not depend on the clock."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rel)
    when = 1_700_000_000 - age
    os.utime(path, (when, when))


@pytest.fixture
def tree(ws: Path) -> Path:
    touch(ws, "main.py", 50)
    touch(ws, "src/app.py", 10)
    touch(ws, "src/util.py", 30)
    touch(ws, "src/ui/view.tsx", 20)
    touch(ws, "src/ui/model.ts", 40)
    touch(ws, "README.md", 60)
    touch(ws, ".git/hooks/pre.py", 0)
    return ws


async def glob(ctx: ToolContext, pattern: str, path: str | None = None) -> str:
    return await run_glob(GlobArgs(pattern=pattern, path=path), ctx)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/*.py", None, "src/app.py\nsrc/util.py\nmain.py"),
        ("*.py", None, "main.py"),
        ("src/*.py", None, "src/app.py\nsrc/util.py"),
        ("src/**", None, "src/app.py\nsrc/ui/view.tsx\nsrc/util.py\nsrc/ui/model.ts"),
        ("**/*.{ts,tsx}", None, "src/ui/view.tsx\nsrc/ui/model.ts"),
        ("*.py", "src", "src/app.py\nsrc/util.py"),
        ("[Rr]EADME.?d", None, "README.md"),
        ("**/*.rs", None, "No files found"),
        ("nowhere/**", None, "No files found"),
    ],
)
async def test_glob_patterns_newest_first(
    tree: Path, ctx: ToolContext, pattern: str, path: str | None, expected: str
) -> None:
    assert await glob(ctx, pattern, path) == expected


async def test_glob_absolute_pattern_inside_workspace(tree: Path, ctx: ToolContext) -> None:
    assert await glob(ctx, f"{tree}/src/*.py") == "src/app.py\nsrc/util.py"


async def test_glob_caps_results_and_says_so(ws: Path, ctx: ToolContext) -> None:
    for i in range(MAX_RESULTS + 5):
        touch(ws, f"many/f{i:03}.txt", i)
    out = (await glob(ctx, "many/*.txt")).splitlines()
    assert out[0] == "many/f000.txt"
    assert len(out) == MAX_RESULTS + 1
    assert out[-1] == (
        "(Results are truncated: showing the 100 most recently modified of 105 matches. "
        "Use a more specific pattern or path.)"
    )


async def test_glob_does_not_enter_symlinked_directories(ws: Path, ctx: ToolContext) -> None:
    (ws / "outlink").symlink_to(ws.parent / "outside", target_is_directory=True)
    touch(ws, "in.txt", 1)
    assert await glob(ctx, "**/*.txt") == "in.txt"


async def test_glob_path_must_be_a_directory(tree: Path, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"^path 'main\.py' is not a directory\.$"):
        await glob(ctx, "*", "main.py")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "a.py", True),
        ("*.py", "d/a.py", False),
        ("**/*.py", "a.py", True),
        ("**/*.py", "d/e/a.py", True),
        ("src/**", "src/a/b", True),
        ("src/**", "src", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("*.{js,jsx}", "x.jsx", True),
        ("[!a]*", "a1", False),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file/.txt", False),
    ],
)
def test_glob_dialect(pattern: str, path: str, matches: bool) -> None:
    assert (glob_to_regex(pattern).match(path) is not None) is matches


@pytest.mark.parametrize(
    ("line", "path", "is_dir", "expected"),
    [
        ("*.log", "deep/x.log", False, True),
        ("/build", "build", True, True),
        ("/build", "sub/build", True, False),
        ("build/", "build", False, False),
        ("build/", "x/build", True, True),
        ("docs/*.md", "docs/a.md", False, True),
        ("docs/*.md", "x/docs/a.md", False, False),
    ],
)
def test_gitignore_anchoring(line: str, path: str, is_dir: bool, expected: bool) -> None:
    glob = parse_git_glob(line)
    assert glob is not None
    assert glob.matches(path, is_dir) is expected


def test_gitignore_comments_blanks_and_negation() -> None:
    assert parse_git_glob("# comment") is None
    assert parse_git_glob("   ") is None
    negated = parse_git_glob("!keep.log")
    assert negated is not None
    assert negated.negated
    assert negated.matches("keep.log", False)
