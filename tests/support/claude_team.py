"""A scripted "Claude" for the Messages-API server: plays the senior, the juniors and the reviewer.

It decides from the request alone (system prompt, tools, tool_choice, tool results), the way a real model
would see it, so the same responder serves in-process tests and a CLI subprocess.
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.messages_server import Message, Reply, Responder, text, tool_use

SUBTASKS = {
    "rag/ingest.py": (
        "def chunk(text: str, size: int = 512) -> list[str]:\n"
        "    return [text[i : i + size] for i in range(0, len(text), size)]\n"
    ),
    "rag/retrieve.py": (
        "def top_k(scores: list[float], k: int = 5) -> list[int]:\n"
        "    return sorted(range(len(scores)), key=scores.__getitem__)[::-1][:k]\n"
    ),
}
FINAL = (
    "## RAG pipeline design\nComponents: ingestion and chunking (rag/ingest.py), hybrid retrieval "
    "(rag/retrieve.py), reranking, generation with citations.\nMilestones: 1) ingest, 2) retrieval eval, "
    "3) serving.\nRisks: stale index (schedule re-indexing), hallucination (cite sources)."
)

LONG_SPEC = "\n".join(f"- requirement {i}: chunks keep their source id, page and section title." for i in range(240))
"""A pasted specification (~17k characters): the senior's first prompt is over Opus 4.6's 4,096-token
minimum, and a brief quoting its start (under the Task brief's 4,000) puts the junior's over Sonnet 4.6's 2,048."""
LONG_TASK = f"Design the ingestion stage of our RAG pipeline to this spec:\n{LONG_SPEC}"


def _system(body: dict[str, Any]) -> str:
    system = body.get("system", "")
    return system if isinstance(system, str) else " ".join(block.get("text", "") for block in system)


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in body["messages"]:
        content = message["content"]
        out.extend([{"type": "text", "text": content}] if isinstance(content, str) else content)
    return out


def _first_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][0]["content"]
    return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)


def _has_tool_results(body: dict[str, Any]) -> bool:
    return any(block.get("type") == "tool_result" for block in _blocks(body))


def _senior(body: dict[str, Any]) -> Message:
    if _has_tool_results(body):
        return Message([text(FINAL)])
    calls = [
        tool_use(
            "Task",
            {
                "description": f"write {path}",
                "subagent_type": "ml-engineer",
                "prompt": f"Create {path} with a small, typed, tested-looking implementation.",
            },
        )
        for path in SUBTASKS
    ]
    return Message([text("I will delegate the two modules."), *calls])


def _junior(body: dict[str, Any], delay: float) -> Message:
    path = re.search(r"Create (\S+) with", _first_user_text(body))
    assert path is not None, "junior brief without a file"
    if _has_tool_results(body):
        return Message([text(f"Wrote {path.group(1)} as asked.")])
    write = tool_use("Write", {"file_path": path.group(1), "content": SUBTASKS[path.group(1)]})
    return Message([write], delay=delay)


def team_responder(*, junior_delay: float = 0.3) -> Responder:
    """Senior delegates both SUBTASKS at once; juniors Write them; reviews approve; senior answers FINAL.
    (The server reports the prompt cache's usage as the API would: tests/support/prompt_cache.py.)"""

    def respond(body: dict[str, Any]) -> Reply:
        if (body.get("tool_choice") or {}).get("name") == "Verdict":
            return Message([tool_use("Verdict", {"decision": "approve", "feedback": "Matches the brief."})])
        if "senior machine learning engineer" in _system(body):
            return _senior(body)
        return _junior(body, junior_delay)

    return respond
