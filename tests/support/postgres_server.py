"""A throwaway PostgreSQL server for the tests, from the Debian package's binaries (`apt-get install postgresql`).

Why a real server rather than a fake: what the Postgres path can get wrong only shows on the real thing:
LangGraph's checkpoint migrations, advisory locks between connections, column types (a 4-byte REAL would
round a timestamp to minutes), NUL bytes in text. The server lives in a temporary directory on a free
loopback port and is gone after the session; Postgres refuses to run as root, so under root the cluster
belongs to the `postgres` user the package creates and every server command goes through `runuser`.

As a pytest plugin (`pytest_plugins = ["tests.support.postgres_server"]`): `postgres_server` (one per
session; skipped, naming the package, only when the server binaries are absent) and `postgres_url` (a
fresh database per test). The bench starts one the same way: `PostgresServer.start(find_bindir())`.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "find_bindir", "postgres_server", "postgres_url"]

SKIP_REASON = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"

_databases = itertools.count(1)


def find_bindir() -> Path | None:
    """initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<major>/bin (newest major wins)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()]
    found = [p for p in found if (p / "pg_ctl").is_file() and p.parent.name.isdigit()]
    return max(found, key=lambda p: int(p.parent.name), default=None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    as_user: str | None
    """The OS user the server runs as when we are root (else ourselves)."""

    @classmethod
    def start(cls, bindir: Path, *, durable: bool = False) -> PostgresServer:
        """initdb + pg_ctl start -w. `durable=False` turns fsync off: the tests test logic, not disks."""
        root = Path(tempfile.mkdtemp(prefix="orchestrate-pg-"))
        as_user = "postgres" if os.geteuid() == 0 else None
        if as_user is not None:
            account = pwd.getpwnam(as_user)
            os.chown(root, account.pw_uid, account.pw_gid)
        server = cls(bindir, root, _free_port(), as_user)
        server._run("initdb", "-D", str(root / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--locale=C", "--no-sync")  # fmt: skip
        settings = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root}" + ("" if durable else " -c fsync=off")
        try:
            server._run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-t", "60",
                        "-o", settings, "start")  # fmt: skip
        except subprocess.CalledProcessError as exc:
            log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from exc
        return server

    def _run(self, program: str, *args: str) -> None:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        command = [*prefix, str(self.bindir / program), *args]
        subprocess.run(command, cwd=self.root, check=True, capture_output=True, text=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(SKIP_REASON)
    server = PostgresServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database on the session's server, so tests never see each other's runs."""
    return postgres_server.create_database()
