"""The scripted team of tests/support/claude_team.py, spoken in OpenAI's Chat Completions format.

It decides from the request alone. A review with a forced `Verdict` tool choice gets a Verdict tool call;
a review whose forced choice the server dropped ("auto") gets what such models send instead: the verdict
as text, readable JSON or (`verdict_text`) whatever the test wants to see handled.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.claude_team import FINAL, SUBTASKS
from tests.support.openai_server import ChatReply, Responder, call

__all__ = ["APPROVE_TEXT", "openai_team"]

APPROVE_TEXT = json.dumps({"decision": "approve", "feedback": "Matches the brief."})


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def _senior(body: dict[str, Any]) -> ChatReply:
    if body["messages"][-1]["role"] == "tool":
        return ChatReply(FINAL)
    tasks = [
        call("Task", {"description": f"write {path}", "subagent_type": "ml-engineer",
                      "prompt": f"Create {path} with a small, typed, tested-looking implementation."})
        for path in SUBTASKS
    ]  # fmt: skip
    return ChatReply("I will delegate the two modules.", tasks)


def _junior(body: dict[str, Any]) -> ChatReply:
    brief = next(_text(m) for m in body["messages"] if m["role"] == "user")
    path = re.search(r"Create (\S+) with", brief)
    assert path is not None, "junior brief without a file"
    if body["messages"][-1]["role"] == "tool":
        return ChatReply(f"Wrote {path.group(1)} as asked.")
    return ChatReply(None, [call("Write", {"file_path": path.group(1), "content": SUBTASKS[path.group(1)]})])


def openai_team(*, verdict_text: str = APPROVE_TEXT) -> Responder:
    def respond(body: dict[str, Any]) -> ChatReply:
        tools = [t["function"]["name"] for t in body.get("tools", [])]
        if tools == ["Verdict"]:
            if body.get("tool_choice") in (None, "auto", "none"):
                return ChatReply(verdict_text)
            return ChatReply(None, [call("Verdict", {"decision": "approve", "feedback": "Matches the brief."})])
        if "senior machine learning engineer" in _text(body["messages"][0]):
            return _senior(body)
        return _junior(body)

    return respond
