"""Read, Write and Edit on real files: output format, limits, and the read-before-write rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext
from orchestrator.tools.edit import EditArgs, run_edit
from orchestrator.tools.read import MAX_FILE_BYTES, ReadArgs, run_read
from orchestrator.tools.write import WriteArgs, run_write


async def read(ctx: ToolContext, path: str, **kw: int) -> str:
    return await run_read(ReadArgs(file_path=path, **kw), ctx)


async def write(ctx: ToolContext, path: str, content: str) -> str:
    return await run_write(WriteArgs(file_path=path, content=content), ctx)


async def edit(ctx: ToolContext, path: str, old: str, new: str, replace_all: bool = False) -> str:
    return await run_edit(EditArgs(file_path=path, old_string=old, new_string=new, replace_all=replace_all), ctx)


def bump_mtime(path: Path) -> None:
    """Change the file's mtime the way another writer would (no sleeping for the clock to tick)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


# --- Read -----------------------------------------------------------------------------------------


async def test_read_numbers_lines_like_cat_n(ws: Path, ctx: ToolContext) -> None:
    (ws / "a.py").write_text("import os\n\nprint(os.sep)\n")
    assert await read(ctx, "a.py") == "     1\timport os\n     2\t\n     3\tprint(os.sep)"
    assert ctx.files_read == {"a.py"}


async def test_read_accepts_absolute_path_inside_workspace_and_strips_crlf(ws: Path, ctx: ToolContext) -> None:
    (ws / "w.txt").write_bytes(b"one\r\ntwo")
    assert await read(ctx, str(ws / "w.txt")) == "     1\tone\n     2\ttwo"


async def test_read_offset_and_limit_say_where_to_go_on(ws: Path, ctx: ToolContext) -> None:
    (ws / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = await read(ctx, "n.txt", offset=4, limit=2)
    assert out == "     4\tline 4\n     5\tline 5\n\n(Showing lines 4-5 of 10; use offset=6 to read on.)"


async def test_read_default_limit_is_2000_lines(ws: Path, ctx: ToolContext) -> None:
    (ws / "big.txt").write_text("x\n" * 2500)
    out = await read(ctx, "big.txt")
    assert out.splitlines()[-1] == "(Showing lines 1-2000 of 2500; use offset=2001 to read on.)"
    assert "  2000\tx" in out
    assert "  2001\t" not in out


async def test_read_cuts_long_lines(ws: Path, ctx: ToolContext) -> None:
    (ws / "min.js").write_text("a" * 2500 + "\n")
    assert await read(ctx, "min.js") == "     1\t" + "a" * 2000 + " [... line cut at 2000 of 2500 characters]"


async def test_read_empty_file(ws: Path, ctx: ToolContext) -> None:
    (ws / "empty.txt").write_text("")
    assert await read(ctx, "empty.txt") == "(File empty.txt exists but is empty.)"
    assert "empty.txt" in ctx.files_read


async def test_read_binary_file_is_refused(ws: Path, ctx: ToolContext) -> None:
    (ws / "w.bin").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(ToolError, match=r"^File w\.bin looks binary \(11 bytes\); Read only shows text files\.$"):
        await read(ctx, "w.bin")
    assert ctx.files_read == set()


async def test_read_over_size_cap_needs_offset_and_limit(ws: Path, ctx: ToolContext) -> None:
    (ws / "huge.log").write_text("y" * 99 + "\n" + "z" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ToolError) as err:
        await read(ctx, "huge.log")
    assert str(err.value) == (
        f"File huge.log is {MAX_FILE_BYTES + 101} bytes, over the {MAX_FILE_BYTES}-byte limit for reading a "
        "whole file. Pass offset and limit to read part of it, or use Grep to find the lines you need."
    )
    assert await read(ctx, "huge.log", offset=1, limit=1) == (
        "     1\t" + "y" * 99 + "\n\n(Showing lines 1-1 of 2; use offset=2 to read on.)"
    )


async def test_read_missing_directory_and_past_end(ws: Path, ctx: ToolContext) -> None:
    (ws / "d").mkdir()
    (ws / "three.txt").write_text("1\n2\n3\n")
    with pytest.raises(ToolError, match=r"^File does not exist: nope\.txt$"):
        await read(ctx, "nope.txt")
    with pytest.raises(ToolError, match=r"^d is a directory, not a file; use Glob or Bash ls to list it\.$"):
        await read(ctx, "d")
    with pytest.raises(ToolError, match=r"^File three\.txt has 3 lines; offset 9 is past the end of the file\.$"):
        await read(ctx, "three.txt", offset=9)


# --- Write ----------------------------------------------------------------------------------------


async def test_write_creates_file_and_parents(ws: Path, ctx: ToolContext) -> None:
    assert await write(ctx, "pkg/sub/mod.py", "x = 1\ny = 2\n") == "Created file pkg/sub/mod.py (2 lines)."
    assert (ws / "pkg/sub/mod.py").read_text() == "x = 1\ny = 2\n"
    assert ctx.files_changed == ["pkg/sub/mod.py"]


async def test_write_over_unread_file_is_refused(ws: Path, ctx: ToolContext) -> None:
    (ws / "keep.txt").write_text("precious\n")
    with pytest.raises(ToolError) as err:
        await write(ctx, "keep.txt", "gone")
    assert str(err.value) == (
        "File keep.txt has not been read yet in this conversation. Read it first, then change it."
    )
    assert (ws / "keep.txt").read_text() == "precious\n"


async def test_write_after_read_overwrites_and_records_once(ws: Path, ctx: ToolContext) -> None:
    (ws / "f.txt").write_text("old\n")
    await read(ctx, "f.txt")
    assert await write(ctx, "f.txt", "new\n") == "Updated file f.txt (1 lines)."
    assert await write(ctx, "f.txt", "newer\n") == "Updated file f.txt (1 lines)."
    assert (ws / "f.txt").read_text() == "newer\n"
    assert ctx.files_changed == ["f.txt"]


async def test_write_refuses_file_changed_since_read(ws: Path, ctx: ToolContext) -> None:
    (ws / "f.txt").write_text("v1\n")
    await read(ctx, "f.txt")
    bump_mtime(ws / "f.txt")
    with pytest.raises(ToolError, match=r"^File f\.txt has been modified since you last read it"):
        await write(ctx, "f.txt", "v2\n")


async def test_read_state_is_per_agent_context(ws: Path, ctx: ToolContext) -> None:
    (ws / "f.txt").write_text("v1\n")
    await read(ctx, "f.txt")
    other = ToolContext(workspace=ws)
    with pytest.raises(ToolError, match="has not been read yet"):
        await write(other, "f.txt", "v2\n")


# --- Edit -----------------------------------------------------------------------------------------


async def test_edit_requires_prior_read(ws: Path, ctx: ToolContext) -> None:
    (ws / "e.py").write_text("a = 1\n")
    with pytest.raises(ToolError) as err:
        await edit(ctx, "e.py", "a = 1", "a = 2")
    assert str(err.value) == "File e.py has not been read yet in this conversation. Read it first, then change it."


async def test_edit_replaces_unique_string_and_shows_snippet(ws: Path, ctx: ToolContext) -> None:
    (ws / "e.py").write_text("".join(f"l{i}\n" for i in range(1, 11)))
    await read(ctx, "e.py")
    out = await edit(ctx, "e.py", "l6\n", "six\n")
    assert out == (
        "Edited e.py: replaced 1 occurrence. Snippet of the result (cat -n):\n"
        "     2\tl2\n     3\tl3\n     4\tl4\n     5\tl5\n     6\tsix\n"
        "     7\tl7\n     8\tl8\n     9\tl9\n    10\tl10"
    )
    assert (ws / "e.py").read_text().count("six") == 1
    assert ctx.files_changed == ["e.py"]


async def test_edit_not_unique_says_how_many(ws: Path, ctx: ToolContext) -> None:
    (ws / "e.py").write_text("x = 0\nx = 0\nx = 0\n")
    await read(ctx, "e.py")
    with pytest.raises(ToolError) as err:
        await edit(ctx, "e.py", "x = 0", "x = 1")
    assert str(err.value) == (
        "Found 3 matches of old_string in e.py, but replace_all is false. "
        "Add surrounding lines to old_string "
        "to make it unique, or set replace_all to true to replace every occurrence."
    )
    out = await edit(ctx, "e.py", "x = 0", "x = 1", replace_all=True)
    assert out.startswith("Edited e.py: replaced 3 occurrences.")
    assert (ws / "e.py").read_text() == "x = 1\nx = 1\nx = 1\n"


async def test_edit_not_found_and_identical(ws: Path, ctx: ToolContext) -> None:
    (ws / "e.py").write_text("def f():\n    return 1\n")
    await read(ctx, "e.py")
    with pytest.raises(ToolError) as err:
        await edit(ctx, "e.py", "def f():\n  return 1", "def f():\n    return 2")
    assert str(err.value) == (
        "String to replace not found in e.py. old_string must match the file exactly, including whitespace "
        "and indentation; Read the file again and copy the text."
    )
    with pytest.raises(ToolError, match=r"^old_string and new_string are identical; there is nothing to change\.$"):
        await edit(ctx, "e.py", "return 1", "return 1")


async def test_edit_missing_file_and_create_with_empty_old_string(ws: Path, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"^File does not exist: ghost\.py$"):
        await edit(ctx, "ghost.py", "a", "b")
    assert await edit(ctx, "new/ghost.py", "", "print('hi')\n") == "Created file new/ghost.py."
    assert (ws / "new/ghost.py").read_text() == "print('hi')\n"


async def test_edit_preserves_crlf_bytes(ws: Path, ctx: ToolContext) -> None:
    (ws / "w.txt").write_bytes(b"a\r\nb\r\n")
    await read(ctx, "w.txt")
    await edit(ctx, "w.txt", "b", "c")
    assert (ws / "w.txt").read_bytes() == b"a\r\nc\r\n"


async def test_edit_refuses_file_changed_since_read(ws: Path, ctx: ToolContext) -> None:
    (ws / "e.py").write_text("a = 1\n")
    await read(ctx, "e.py")
    bump_mtime(ws / "e.py")
    with pytest.raises(ToolError, match="has been modified since you last read it"):
        await edit(ctx, "e.py", "a = 1", "a = 2")
    await read(ctx, "e.py")
    await edit(ctx, "e.py", "a = 1", "a = 2")
    assert (ws / "e.py").read_text() == "a = 2\n"
