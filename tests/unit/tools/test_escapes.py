"""The escape table: every way out of the workspace, the LAN or the permission mode we could think of,
each refused with a message that says what was refused and why.

File and network escapes are refused by the tools themselves (ToolError text the model reads); mode
and rule escapes are refused by the permission policy (a deny Decision whose reason the user reads).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext
from orchestrator.tools.edit import EditArgs, run_edit
from orchestrator.tools.glob import GlobArgs, run_glob
from orchestrator.tools.grep import GrepArgs, run_grep
from orchestrator.tools.permissions import PermissionMode, PermissionPolicy, PermissionRules, parse_rule
from orchestrator.tools.read import ReadArgs, run_read
from orchestrator.tools.web_fetch import WebFetchArgs, run_web_fetch
from orchestrator.tools.write import WriteArgs, run_write

from .local_http import HttpServer


@dataclass
class Env:
    ws: Path
    outside: Path
    ctx: ToolContext
    server: HttpServer


Attempt = Callable[[Env], Awaitable[str]]


async def refused(action: Awaitable[Any]) -> str:
    """The ToolError text of an action that must be refused."""
    try:
        result = await action
    except ToolError as exc:
        return str(exc)
    raise AssertionError(f"not refused; the tool returned {result!r}")


def read(path: str | Callable[[Env], str]) -> Attempt:
    return lambda env: refused(run_read(ReadArgs(file_path=_path(path, env)), env.ctx))


def write(path: str | Callable[[Env], str]) -> Attempt:
    return lambda env: refused(run_write(WriteArgs(file_path=_path(path, env), content="pwned\n"), env.ctx))


def edit(path: str) -> Attempt:
    args = EditArgs(file_path=path, old_string="top", new_string="bottom")
    return lambda env: refused(run_edit(args, env.ctx))


def glob(pattern: str, path: str | None = None) -> Attempt:
    return lambda env: refused(run_glob(GlobArgs(pattern=pattern, path=path), env.ctx))


def grep(path: str) -> Attempt:
    return lambda env: refused(run_grep(GrepArgs(pattern="secret", path=path), env.ctx))


def fetch(url: Callable[[Env], str]) -> Attempt:
    return lambda env: refused(run_web_fetch(WebFetchArgs(url=url(env), prompt="p"), env.ctx))


def _path(path: str | Callable[[Env], str], env: Env) -> str:
    return path if isinstance(path, str) else path(env)


def policy(mode: PermissionMode, tool: str, args: dict[str, object], deny: Sequence[str] = ()) -> Attempt:
    async def attempt(env: Env) -> str:
        rules = PermissionRules(deny=tuple(parse_rule(r, source="settings.json") for r in deny))
        decision = PermissionPolicy(mode=mode, rules=rules).decide(tool, args, env.ws)
        assert decision.kind == "deny", decision
        return decision.reason

    return attempt


async def redirect_to_loopback(env: Env) -> str:
    """An allowed-looking name (the injected resolver maps it to the test server) answers with a redirect
    to 127.0.0.1: the second hop is checked and refused before any connection to it."""
    env.server.routes["/go"] = (302, {"Location": env.server.url("/admin")}, b"")
    env.server.routes["/admin"] = (200, {"Content-Type": "text/plain"}, b"internal admin page")

    async def resolver(host: str) -> Sequence[str]:
        return ["127.0.0.1"] if host == "docs.example.test" else []

    ctx = ToolContext(workspace=env.ws, resolve_host=resolver, allow_private_hosts=frozenset({"docs.example.test"}))
    text = await refused(run_web_fetch(WebFetchArgs(url=env.server.url("/go", "docs.example.test"), prompt="p"), ctx))
    assert env.server.hosts == [f"docs.example.test:{env.server.port}"]
    return text


OUT = "is outside the workspace"
LINK = "leads through a symlink to"
LOOPBACK = "a loopback address. WebFetch only reaches public hosts"

ESCAPES: list[tuple[str, Attempt, str]] = [
    ("read ../", read("../outside/secret.txt"), rf"^file_path '\.\./outside/secret\.txt' {OUT} /"),
    ("read /etc/passwd", read("/etc/passwd"), rf"^file_path '/etc/passwd' {OUT} /"),
    (
        "read sub/../../",
        read("sub/../../outside/secret.txt"),
        rf"^file_path 'sub/\.\./\.\./outside/secret\.txt' {OUT}",
    ),
    (
        "read symlinked file",
        read("link.txt"),
        rf"^file_path 'link\.txt' {LINK} .*/outside/secret\.txt, outside",
    ),
    (
        "read via symlinked dir",
        read("outdir/secret.txt"),
        rf"^file_path 'outdir/secret\.txt' {LINK} .*/outside/secret",
    ),
    ("glob path ..", glob("*", ".."), rf"^path '\.\.' {OUT}"),
    (
        "glob pattern ../",
        glob("../outside/*"),
        r"^pattern '\.\./outside/\*' contains '\.\.'; pass a path inside",
    ),
    ("glob absolute pattern", glob("/etc/*"), r"^pattern '/etc/\*' is outside the search directory"),
    ("glob into symlinked dir", glob("outdir/**"), rf"^pattern 'outdir' {LINK} .*/outside, outside"),
    ("grep path /etc", grep("/etc"), rf"^path '/etc' {OUT}"),
    ("grep path ../", grep("../outside"), rf"^path '\.\./outside' {OUT}"),
    ("grep symlinked dir", grep("outdir"), rf"^path 'outdir' {LINK}"),
    ("write ../", write("../evil.txt"), rf"^file_path '\.\./evil\.txt' {OUT}"),
    (
        "write absolute outside",
        write(lambda env: str(env.outside / "evil.txt")),
        rf"^file_path '/.*/evil\.txt' {OUT}",
    ),
    ("write via symlinked dir", write("outdir/evil.txt"), rf"^file_path 'outdir/evil\.txt' {LINK}"),
    ("edit symlinked file", edit("link.txt"), rf"^file_path 'link\.txt' {LINK}"),
    (
        "bash in plan mode",
        policy("plan", "Bash", {"command": "ls"}),
        r"^Bash is refused in permission mode plan",
    ),
    (
        "write in plan mode",
        policy("plan", "Write", {"file_path": "a.py"}),
        r"^Write is refused in permission mode plan",
    ),
    (
        "fetch 127.0.0.1",
        fetch(lambda env: env.server.url("/")),
        rf"^Refusing to fetch from 127\.0\.0\.1: .*{LOOPBACK}",
    ),
    (
        "fetch localhost",
        fetch(lambda env: env.server.url("/", "localhost")),
        rf"^Refusing .* localhost: .*{LOOPBACK}",
    ),
    (
        "fetch [::1]",
        fetch(lambda env: f"http://[::1]:{env.server.port}/"),
        rf"^Refusing .* ::1: it resolves to ::1, {LOOPBACK}",
    ),
    (
        "fetch 10.0.0.1",
        fetch(lambda env: "http://10.0.0.1/"),
        r"^Refusing .* 10\.0\.0\.1, a private address\.",
    ),
    (
        "fetch metadata",
        fetch(lambda env: "http://169.254.169.254/latest/meta-data/"),
        r"a cloud metadata address\.",
    ),
    (
        "fetch redirect to loopback",
        redirect_to_loopback,
        rf"^Refusing to fetch from 127\.0\.0\.1: .*{LOOPBACK}",
    ),
    (
        "deny Read(./.env)",
        policy("bypassPermissions", "Read", {"file_path": ".env"}, ["Read(./.env)"]),
        r'"Read\(\./\.env\)" in permissions\.deny',
    ),
    (
        "deny Bash(rm:*)",
        policy("bypassPermissions", "Bash", {"command": "ls && rm -rf /"}, ["Bash(rm:*)"]),
        r'"Bash\(rm:\*\)" in permissions\.deny',
    ),
]


@pytest.fixture
def env(ws: Path, ctx: ToolContext, http_server: HttpServer) -> Env:
    outside = ws.parent / "outside"
    (ws / "link.txt").symlink_to(outside / "secret.txt")
    (ws / "outdir").symlink_to(outside, target_is_directory=True)
    (ws / ".env").write_text("API_KEY=x\n")
    return Env(ws=ws, outside=outside, ctx=ctx, server=http_server)


def test_the_table_is_big_enough() -> None:
    assert len(ESCAPES) >= 15


@pytest.mark.parametrize(("attempt", "expected"), [(a, e) for _, a, e in ESCAPES], ids=[i for i, _, _ in ESCAPES])
async def test_escape_is_refused(env: Env, attempt: Attempt, expected: str) -> None:
    message = await attempt(env)
    assert re.search(expected, message), message
    assert sorted(p.name for p in env.outside.iterdir()) == ["secret.txt"]
    assert (env.outside / "secret.txt").read_text() == "top secret\n"
    assert not (env.ws.parent / "evil.txt").exists()
    assert env.ctx.files_read == set()
    assert env.ctx.files_changed == []


# ---- the check-then-open race: a path component swapped for a symlink in between ----


def _swapper(link: Path, outside: Path, stop: threading.Event) -> threading.Thread:
    """Flip the directory `link` with a symlink to `outside` and back, as fast as it goes (each step an
    atomic rename or symlink, so the tools see a real directory, a symlink, or nothing)."""
    parked = link.with_name(link.name + ".parked")

    def flip() -> None:
        while not stop.is_set():
            for step in (lambda: os.rename(link, parked), lambda: os.symlink(outside, link), lambda: os.unlink(link)):
                with contextlib.suppress(OSError):  # Write may have made the directory again meanwhile
                    step()
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rename(parked, link)
            stop.wait(0.0002)  # leave the real directory in place a moment, so both outcomes happen

    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    return thread


async def test_a_swapped_symlink_never_lets_a_read_or_write_out(ws: Path, ctx: ToolContext) -> None:
    """Bounded: 1,500 reads and 1,500 writes while a thread swaps the path under them."""
    outside = ws.parent / "outside"
    (ws / "dir").mkdir()
    (ws / "dir" / "f.txt").write_text("inside\n")
    (outside / "f.txt").write_text("top secret\n")
    stop = threading.Event()
    thread = _swapper(ws / "dir", outside, stop)
    leaked, written = [], []
    try:
        for _ in range(1500):
            with contextlib.suppress(ToolError):
                leaked.append(await run_read(ReadArgs(file_path="dir/f.txt"), ctx))
            ctx.files_read.clear()
            ctx.file_versions.clear()
            with contextlib.suppress(ToolError):
                written.append(await run_write(WriteArgs(file_path="dir/new.txt", content="mine\n"), ctx))
    finally:
        stop.set()
        thread.join()
    assert leaked and written  # the race really ran both ways
    assert not any("top secret" in text for text in leaked)
    assert (outside / "f.txt").read_text() == "top secret\n" and not (outside / "new.txt").exists()
