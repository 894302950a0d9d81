"""The local adapter's turn policy: what a small model is offered in a turn, and which of its moves are
overruled. Claude needs none of this; a 0.5B-1.5B model does, because it loops.

It decides, for one turn:

- `hold_answer`: no answer is offered while it is too early: the request names files to create and no
  tool call has worked yet, or review feedback came back and no Write/Edit (for file work) or no tool
  call at all (other work) has worked since. After six calls the model may answer anyway.
- `close_tool`: a tool that failed twice since the latest request or feedback is not offered again
  (small models retry a failing Edit forever; Write is the way out). Never all of them.
- `repeat_answered`: repeating the call that just succeeded becomes the answer instead (for Write: writing
  the file it just wrote again, whatever the new body).
- `repeat_refused`: repeating a call that failed with nothing succeeding since (or the one that just
  succeeded, while it is too early to answer), or a call with no usable arguments, goes back to the
  choice without that tool.
- `body_repeated_result`: a Write/Task body that only repeats a tool result ("Updated file a.md (17
  lines).") is asked for once more, and never used if it repeats one again.
- `body_orchestration_text`: lines of a Write/Edit body that copy the orchestration's own text (review
  feedback headers, "Fix this with your tools", the adapter's markers) are left out of the file.
- `write_requested`: a request that asks for new files and names no other file (nothing to read first)
  starts with Write, its path one of those files (`requested_write`): small models otherwise open with
  an Edit or a Read of the file that does not exist yet, or write it under a path of their own.

Every decision is a `PolicyDecision` that travels on the reply (`response_metadata["policy"]`); the
graph's model-call site emits each as a "policy" progress event, and `orchestrate show` lists them under
their call, so the graph, the trace and replay see what was decided on the model's behalf.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from orchestrator.file_mentions import mentioned_paths, requested_files
from orchestrator.local.schema import ToolDef
from orchestrator.local.steps import ANSWER, Call, calls_of, request_of
from orchestrator.logs import get_logger
from orchestrator.tools.permissions import EDIT_TOOLS

__all__ = [
    "POLICY_KEY",
    "PolicyDecision",
    "Rule",
    "TurnPolicy",
    "is_orchestration_text",
    "open_actions",
    "requested_write",
    "write_first",
]

log = get_logger(__name__)

POLICY_KEY = "policy"
"""Where a reply carries its turn's decisions: `response_metadata[POLICY_KEY]`, a list of dicts."""

Rule = Literal[
    "hold_answer",
    "close_tool",
    "repeat_answered",
    "repeat_refused",
    "body_repeated_result",
    "body_orchestration_text",
    "delegate_piece",
    "answer_by_sections",
    "false_claim_removed",
    "write_requested",
    "items_unanswered",
    "option_picked",
]
"""`body_orchestration_text` and `write_requested`: see below; `delegate_piece`, `answer_by_sections`,
`false_claim_removed`, `items_unanswered` and `option_picked`: planning.py, the senior's plan."""
Move = Literal["call", "answer", "choose_again"]


@dataclass(frozen=True)
class PolicyDecision:
    rule: Rule
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "detail": self.detail}


def _calls_this_round(messages: Sequence[BaseMessage]) -> list[Call]:
    """The tool calls since the latest human turn (the request, or the latest review feedback)."""
    turns = [i for i, m in enumerate(messages) if m.type == "human"]
    return calls_of(messages[turns[-1] :]) if turns else []


def _too_early_to_answer(messages: Sequence[BaseMessage], patience: int = 6) -> bool:
    """See `hold_answer` in the module docstring."""
    since = _calls_this_round(messages)
    files = bool(requested_files(request_of(messages)))
    revising = sum(m.type == "human" for m in messages) > 1
    if not (files or revising) or len(since) >= patience:
        return False
    needed = EDIT_TOOLS if files and revising else None
    return not any(c.ok and (needed is None or c.name in needed) for c in since)


def open_actions(actions: Sequence[str], messages: Sequence[BaseMessage], max_failures: int = 2) -> list[str]:
    """The actions offered this turn (`hold_answer`, `close_tool`); never empty: when everything would be
    closed, everything stays open."""
    failures = Counter(c.name for c in _calls_this_round(messages) if c.ok is False)
    early = len(actions) > 1 and ANSWER in actions and _too_early_to_answer(messages)
    kept = [a for a in actions if failures[a] < max_failures and not (early and a == ANSWER)]
    return kept or list(actions)


def write_first(messages: Sequence[BaseMessage], actions: Sequence[str]) -> tuple[list[str], PolicyDecision] | None:
    """The files to Write first (`write_requested`), with the decision; None when the rule does not apply:
    Write not offered, a call already made, review feedback came back, or the request names other files."""
    if "Write" not in actions or calls_of(messages) or sum(m.type == "human" for m in messages) != 1:
        return None
    request = request_of(messages)
    wanted = requested_files(request)
    if not wanted or set(mentioned_paths(request)) - set(wanted):
        return None
    return wanted, PolicyDecision("write_requested", f"the request asks for {', '.join(wanted)}: Write it first")


def requested_write(tool: ToolDef, files: Sequence[str]) -> ToolDef:
    """The Write tool with its path limited to the requested files."""
    if "file_path" not in tool.schema.get("properties", {}):
        return tool
    schema = copy.deepcopy(tool.schema)
    schema["properties"]["file_path"] = {"type": "string", "enum": list(files), "description": "The file to write"}
    return ToolDef(tool.name, tool.description, schema)


def _last_success(messages: Sequence[BaseMessage]) -> tuple[str, dict[str, Any]] | None:
    """The previous turn's single tool call, if the conversation ends with it and it succeeded."""
    if len(messages) < 2 or not isinstance(messages[-1], ToolMessage) or messages[-1].status == "error":
        return None
    previous = messages[-2]
    if not isinstance(previous, AIMessage) or len(previous.tool_calls) != 1:
        return None
    return previous.tool_calls[0]["name"], previous.tool_calls[0]["args"]


def _same_call(call: tuple[str, dict[str, Any] | None], last: tuple[str, dict[str, Any]] | None) -> bool:
    """Whether `call` repeats `last`: the same arguments, or a Write of the file the last call just wrote
    (a small model writes it again with the body generated anew, never because it learned something)."""
    if last is None or call[0] != last[0]:
        return False
    if call[0] == "Write" and call[1] is not None and "file_path" in last[1]:
        return bool(call[1].get("file_path") == last[1]["file_path"])
    return call[1] == last[1]


def _failed_since_success(messages: Sequence[BaseMessage]) -> list[tuple[str, dict[str, Any]]]:
    """The calls that failed since the last call that succeeded: repeating one cannot help."""
    failed: list[tuple[str, dict[str, Any]]] = []
    for call in calls_of(messages):
        if call.ok:
            failed.clear()
        elif call.ok is False:
            failed.append((call.name, call.args))
    return failed


_ORCHESTRATION_LINE = re.compile(
    r"review of round \d+|fix this with your tools|then report again|^\W*\[(?:you called|progress|next step|reference"
    r"|review:|[\w-]+ (?:result|error)\])",
    re.IGNORECASE,
)
"""A line of the orchestration's own text: the revision message (graphs/prompts.py), the adapter's markers
and rendered tool results (render.py), the Task result's review footer."""


def is_orchestration_text(line: str) -> bool:
    """Whether a line copies the orchestration's own text (`body_orchestration_text`)."""
    return bool(_ORCHESTRATION_LINE.search(line))


def _shape(text: str) -> str:
    """Text with its numbers blanked, so "Updated file a.md (18 lines)." matches "... (17 lines)."."""
    return re.sub(r"\d+", "#", text.strip())


@dataclass
class TurnPolicy:
    """The policy for one turn over `messages`, and the decisions it made (in order)."""

    messages: Sequence[BaseMessage]
    model: str = "local"
    decisions: list[PolicyDecision] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._last = _last_success(self.messages)
        self._failed = _failed_since_success(self.messages)
        self._results = frozenset(_shape(c.result) for c in calls_of(self.messages) if c.result.strip())

    def offered(self, actions: Sequence[str]) -> list[str]:
        """What the model may choose from this turn."""
        kept = open_actions(actions, self.messages)
        for closed in (a for a in actions if a not in kept):
            rule: Rule = "hold_answer" if closed == ANSWER else "close_tool"
            what = "no answer yet: the work is not done" if closed == ANSWER else f"{closed} failed twice: not offered"
            self.decisions.append(PolicyDecision(rule, what))
        return kept

    def repeats_a_result(self, tool: str, body: str, *, again: bool) -> bool:
        """Whether a body only repeats a tool result (`again`: the second try, which is then dropped)."""
        if _shape(body) not in self._results:
            return False
        if not again:
            log.info("local_body_repeated_a_result", model=self.model, tool=tool)
        what = "dropped" if again else "asked for again"
        self.decisions.append(PolicyDecision("body_repeated_result", f"{tool} body repeated a tool result: {what}"))
        return True

    def without_orchestration_text(self, tool: str, body: str) -> str:
        """The body without the lines that copy the orchestration's own text (`body_orchestration_text`)."""
        lines = body.splitlines(keepends=True)
        kept = [line for line in lines if not is_orchestration_text(line)]
        if len(kept) < len(lines):
            detail = f"{tool} body: {len(lines) - len(kept)} line(s) copying review or tool text left out"
            self.decisions.append(PolicyDecision("body_orchestration_text", detail))
        return "".join(kept)

    def judge(self, tool: str, args: dict[str, Any] | None, open_now: Sequence[str]) -> Move:
        """What becomes of the call the model just made."""
        repeated = _same_call((tool, args), self._last)
        if repeated and ANSWER in open_now:
            log.info("local_repeat_call_answered", model=self.model, tool=tool)
            self.decisions.append(PolicyDecision("repeat_answered", f"{tool} repeated the call that just worked"))
            return "answer"
        if (args is None or repeated or (tool, args) in self._failed) and len(open_now) > 1:
            log.info("local_call_not_repeated", model=self.model, tool=tool, failed=not repeated)
            why = "no usable arguments" if args is None else "repeated" if repeated else "repeated a failed call"
            self.decisions.append(PolicyDecision("repeat_refused", f"{tool}: {why}; choosing again without it"))
            return "choose_again"
        return "answer" if args is None else "call"  # nothing usable, nothing else: answer, never clobber a file
