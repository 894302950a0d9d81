"""orchestrate and deepagents side by side on one scripted job, against the loopback Messages-API server.

The job: the senior delegates two file-writing subtasks in one turn; each junior writes its file and
reports; the senior answers (orchestrate also reviews each subtask, one call each). The same scripted
"Claude" answers both, at zero model latency, from what each request shows (tests/support/claude_team.py
for orchestrate; the deepagents flavour here). deepagents and langchain-anthropic are installed into a
venv of their own (in the user cache, reused), so nothing of them touches this project's environment.
Both run as whole processes (`orchestrate run`, `python bench/peer_deepagents.py`), interleaved, RUNS
times each; the table gives medians and the ratios. Both run from bytecode, as installed packages do: pip
compiled the peer's at install, and this checkout's sources are compiled first (an editable install
compiles nothing, and PYTHONDONTWRITEBYTECODE, set on some machines, stops Python from caching them).

Input characters: the JSON of each request's `system`, `messages` and `tools`, summed over the run.

    python bench/peer.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import platformdirs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.claude_team import FINAL, SUBTASKS, team_responder  # noqa: E402
from tests.support.messages_server import Message, MessagesServer, RecordedRequest, Reply, text, tool_use  # noqa: E402

PEER = ("deepagents==0.7.32", "langchain-anthropic==1.7.10")
TASK = "design a RAG pipeline"


def peer_python() -> Path:
    """The peer venv's interpreter, made on first use."""
    venv = Path(platformdirs.user_cache_dir("orchestrate")) / "peer-venv" / "-".join(p.replace("==", "") for p in PEER)
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing {', '.join(PEER)} into {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER], check=True)
    return python


def _has_results(body: dict[str, Any]) -> bool:
    return any(
        isinstance(m["content"], list) and any(b.get("type") == "tool_result" for b in m["content"])
        for m in body["messages"]
    )


def _first_user(body: dict[str, Any]) -> str:
    content = body["messages"][0]["content"]
    return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)


def _deep(body: dict[str, Any]) -> Message:
    """deepagents' side of the job: `task` to delegate, `write_file` to write (absolute, virtual paths)."""
    brief = re.search(r"Create (\S+) with", _first_user(body))
    if brief is None:  # the main agent
        if _has_results(body):
            return Message([text(FINAL)])
        calls = [
            tool_use("task", {"description": f"Create {path} with a small, typed, tested-looking implementation.",
                              "subagent_type": "ml-engineer"})
            for path in SUBTASKS
        ]  # fmt: skip
        return Message([text("I will delegate the two modules."), *calls])
    path = brief.group(1)
    if _has_results(body):
        return Message([text(f"Wrote {path} as asked.")])
    return Message([tool_use("write_file", {"file_path": f"/{path}", "content": SUBTASKS[path]})])


def responder() -> Any:
    team = team_responder(junior_delay=0.0)

    def respond(body: dict[str, Any]) -> Reply:
        if "write_file" in {t.get("name") for t in body.get("tools", [])}:  # deepagents' file tools
            return _deep(body)
        return team(body)

    return respond


def _chars(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def characters(request: RecordedRequest) -> int:
    return sum(_chars(request.body.get(k)) for k in ("system", "messages", "tools"))


def _who(body: dict[str, Any]) -> str:
    if (body.get("tool_choice") or {}).get("name") == "Verdict":
        return "review"
    return "junior" if re.search(r"Create (\S+) with", _first_user(body)) else "senior"


def breakdown(requests: list[RecordedRequest]) -> str:
    """Each request of one run: who made it, its input characters, how many of them are tool schemas."""
    return "\n".join(
        f"  {_who(r.body):7} {characters(r):7,} characters, tools {_chars(r.body.get('tools')):6,} "
        f"({len(r.body.get('tools') or [])} tools)"
        for r in requests
    )


def _run(command: list[str], env: dict[str, str], workspace: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not (FINAL in done.stdout or json.dumps(FINAL) in done.stdout):
        raise SystemExit(f"{command[1:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    missing = [p for p in SUBTASKS if not (workspace / p).is_file()]
    if missing:
        raise SystemExit(f"{command[1:3]} did not write {missing}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = peer_python()
    sources = [str(REPO / d) for d in ("orchestrator", "graphs", "tools")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True, capture_output=True)
    rows: dict[str, list[tuple[int, int, float]]] = {"orchestrate": [], "deepagents": []}
    last: dict[str, list[RecordedRequest]] = {}
    with MessagesServer(responder()) as server, tempfile.TemporaryDirectory(prefix="orchestrate-peer-") as tmp:
        base = {**os.environ, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-peer-bench",
                "XDG_DATA_HOME": f"{tmp}/data", "ORCHESTRATE_DB": f"{tmp}/runs.sqlite"}  # fmt: skip
        for n in range(args.runs):
            for name in rows:
                workspace = Path(tmp) / f"{name}-{n}"
                workspace.mkdir()
                command = (
                    [sys.executable, "-m", "orchestrator", "run", "--json", "--permission-mode", "acceptEdits",
                     "--workspace", str(workspace), TASK]
                    if name == "orchestrate"
                    else [str(python), str(REPO / "bench" / "peer_deepagents.py"), str(REPO / "agents"),
                          str(workspace), TASK]
                )  # fmt: skip
                before = len(server.requests)
                seconds = _run(command, base, workspace)
                requests = last[name] = server.requests[before:]
                rows[name].append((len(requests), sum(characters(r) for r in requests), seconds))
                print(f"{name:12} run {n + 1}: {len(requests)} requests, {rows[name][-1][1]:,} input characters, "
                      f"{seconds:.2f} s", flush=True)  # fmt: skip
    for name, requests in last.items():
        print(f"\n{name}, the last run's requests:\n{breakdown(requests)}")
    med = {name: [statistics.median(r[i] for r in runs) for i in range(3)] for name, runs in rows.items()}
    ours, peer = med["orchestrate"], med["deepagents"]
    print(f"\n| | orchestrate | deepagents {PEER[0].split('==')[1]} | ratio |\n|---|---|---|---|")
    print(f"| requests | {ours[0]:.0f} | {peer[0]:.0f} | |")
    print(f"| input characters sent, whole run | {ours[1]:,.0f} | {peer[1]:,.0f} | {ours[1] / peer[1]:.2f}x |")
    print(f"| whole-process wall time | {ours[2]:.2f} s | {peer[2]:.2f} s | {ours[2] / peer[2]:.2f}x |")


if __name__ == "__main__":
    main()
