"""Load: many runs at once on one database, through the real CLI, against the loopback Messages API.

    .venv/bin/python bench/load.py [--tasks 200] [--concurrency 16] [--processes 3]

One `orchestrate batch` with --tasks tasks at --concurrency, then --processes batches of the same file on one
SQLite database at once. Counts what matters: runs lost (a task without a JSON line), runs stuck (a record
left `running`), tracebacks on stderr, and exit codes; prints wall time and runs per second. The server
answers at once, so the database is the bottleneck being measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.messages_server import Message, MessagesServer, text


@dataclass(frozen=True)
class Row:
    label: str
    runs: int
    lost: int
    stuck: int
    tracebacks: int
    exit_codes: tuple[int, ...]
    seconds: float


def _batch(
    db: Path, tasks: Path, workspace: Path, concurrency: int, env: dict[str, str], out: Path
) -> subprocess.Popen[bytes]:
    """One batch process, its output into files (pipes read one after the other would fill up and stall it)."""
    command = [sys.executable, "-m", "orchestrator", "batch", str(tasks), "--max-concurrency", str(concurrency)]
    command += ["--workspace", str(workspace), "--db", str(db)]
    with out.with_suffix(".out").open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
        return subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)


def _stuck(db: Path, env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "orchestrator", "runs", "--json", "--db", str(db)]
    listed = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    return sum(r["status"] in ("running", "interrupted") for r in listed)


def measure(label: str, count: int, concurrency: int, processes: int, url: str, scratch: Path) -> Row:
    env = {**os.environ, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "x", "HOME": str(scratch)}
    tasks = scratch / f"{label}.txt"
    tasks.write_text("".join(f"write a pytest for helper_{i} in utils.py\n" for i in range(count)))
    db, workspace = scratch / f"{label}.sqlite", scratch / "ws"
    workspace.mkdir(exist_ok=True)
    started = time.perf_counter()
    logs = [scratch / f"{label}-{n}" for n in range(processes)]
    batches = [_batch(db, tasks, workspace, concurrency, env, log) for log in logs]
    for batch in batches:
        batch.wait(timeout=3600)
    seconds = time.perf_counter() - started
    outputs = [(log.with_suffix(".out").read_text(), log.with_suffix(".err").read_text()) for log in logs]
    lines = [json.loads(line) for out, _ in outputs for line in out.splitlines() if line.strip()]
    return Row(
        label, len(lines), count * processes - len(lines), _stuck(db, env),
        sum(err.count("Traceback") for _, err in outputs), tuple(b.returncode for b in batches), seconds,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=3)
    args = parser.parse_args()
    print("label                       runs  lost  stuck  tracebacks  exit codes   seconds  runs/s")
    with MessagesServer(lambda body: Message([text("Done.")])) as server, tempfile.TemporaryDirectory() as tmp:
        cases = [
            (f"{args.tasks} at {args.concurrency}", args.tasks, 1),
            (f"{args.processes} batches x {args.tasks // 2}", args.tasks // 2, args.processes),
        ]
        for label, count, processes in cases:
            row = measure(label.replace(" ", "_"), count, args.concurrency, processes, server.url, Path(tmp))
            print(
                f"{label:<27} {row.runs:>4}  {row.lost:>4}  {row.stuck:>5}  {row.tracebacks:>10}  "
                f"{','.join(map(str, row.exit_codes)):<11} {row.seconds:>8.1f}  {row.runs / row.seconds:>6.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
