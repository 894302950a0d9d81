"""The local senior's plan for a design or debugging request. Claude plans for itself; a 1.5B model hands
its whole task to the junior and then answers generically, so for a delegating agent (one offered Task)
whose request has a guide (guides.py) the adapter:

1. reads the guide's expansion of the domain terms to the model before every step (`reference_note`);
2. delegates first (`delegate_piece`): the model writes a Task for one concrete, checkable piece (the
   guide's pieces are examples), in a short brief (`BRIEF_MAX_TOKENS`);
3. once the delegation came back, answers (`answer_by_sections`): the model writes each of the guide's
   sections for the task, one short step each; then the adapter states what each delegation did, from
   its record (the Task result's artifact), and drops sentences that claim otherwise (claims.py:
   `false_claim_removed`).

The sections are the guide's; every word under them is the model's, written for the task at hand.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from orchestrator.claims import false_claims
from orchestrator.local.guides import Guide, Section, guide_for
from orchestrator.local.policy import PolicyDecision
from orchestrator.local.schema import ToolDef
from orchestrator.local.steps import ANSWER, MARKERS, GenerationSettings, parse_text, request_of
from orchestrator.tools.permissions import EDIT_TOOLS

__all__ = [
    "BRIEF_MAX_TOKENS",
    "SECTION_MAX_TOKENS",
    "brief_hint",
    "brief_note",
    "delegation_outcomes",
    "guided_task",
    "planned_action",
    "planning_guide",
    "reference_note",
    "sectioned_answer",
]

BRIEF_MAX_TOKENS = 220
"""A Task brief for one piece: the file, what it must contain, the command that checks it."""
SECTION_MAX_TOKENS = 140
"""One section of the answer: three or four short bullets."""


def planning_guide(messages: Sequence[BaseMessage], tools: Sequence[ToolDef]) -> Guide | None:
    """The guide for this turn's request, when the agent delegates (Task is offered) and one matches."""
    if "Task" not in {t.name for t in tools}:
        return None
    return guide_for(request_of(messages))


def delegation_outcomes(messages: Sequence[BaseMessage]) -> list[Mapping[str, Any]]:
    """The records of the delegations that came back (each Task result's artifact), in order."""
    return [
        m.artifact for m in messages if isinstance(m, ToolMessage) and m.name == "Task" and isinstance(m.artifact, dict)
    ]


def planned_action(messages: Sequence[BaseMessage], actions: Sequence[str]) -> tuple[str, PolicyDecision] | None:
    """Delegate first; once a delegation came back, answer. None: let the model choose."""
    came_back = bool(delegation_outcomes(messages))
    if not came_back and "Task" in actions:
        return "Task", PolicyDecision("delegate_piece", "a design or debugging request: delegate one checkable piece")
    if came_back and ANSWER in actions:
        return ANSWER, PolicyDecision("answer_by_sections", "the delegated piece came back: answer, section by section")
    return None


def reference_note(guide: Guide) -> str:
    """The guide's expansion of the request's terms and the parts an answer covers."""
    parts = "; ".join(s.heading for s in guide.sections)
    return f"[Reference: {guide.title}] {guide.expands} A complete answer covers: {parts}."


def brief_note(guide: Guide) -> str:
    """For the Task call: one concrete piece, never the whole request."""
    examples = " | ".join(guide.pieces)
    return (
        "Delegate ONE concrete piece of code that a command can check, never the whole request: you write the "
        f"design yourself afterwards. Examples: {examples}. The brief, in at most 6 lines, names the exact file "
        "to create, what it must contain (function names and behaviour) and the command that checks it."
    )


def _pieces(guide: Guide) -> dict[str, str]:
    """The guide's pieces that name their file, by the Task description that picks one ("Write rag/x.py")."""
    named = ((re.match(r"`([^`]+)`", piece), piece) for piece in guide.pieces)
    return {f"Write {m.group(1)}": piece for m, piece in named if m}


def guided_task(tool: ToolDef, guide: Guide) -> ToolDef:
    """The Task tool with its description limited to the guide's pieces (when they name files), so the
    model picks one concrete piece instead of handing over the whole request."""
    pieces = _pieces(guide)
    properties = tool.schema.get("properties", {})
    if not pieces or "description" not in properties:
        return tool
    schema = copy.deepcopy(tool.schema)
    schema["properties"]["description"] = {"type": "string", "enum": list(pieces), "description": "The piece"}
    return ToolDef(tool.name, tool.description, schema)


def brief_hint(guide: Guide, args: Mapping[str, Any]) -> str:
    """For the brief, once the piece is picked: the piece to restate, else the general rule."""
    piece = _pieces(guide).get(str(args.get("description")))
    if piece is None:
        return brief_note(guide)
    return (
        f"The piece to delegate: {piece}\nWrite the brief for exactly this piece, in at most 6 lines: the file "
        "to create, the function(s) it must contain and what they do, and the command that checks it."
    )


def _section_request(
    chat: list[dict[str, str]], guide: Guide, section: Section, request: str, s: GenerationSettings
) -> dict[str, Any]:
    instruction = (
        f'[Next step] {reference_note(guide)}\nWrite only the section "{section.heading}" of your answer to: '
        f"{request.strip()[:300]}\nCover: {section.cover}\nReply with 3 or 4 short bullets ('- '), specific to "
        "this request: name the concrete choices (tools, sizes, numbers, metrics). No heading, no other section."
    )
    last = chat[-1]
    messages = [*chat[:-1], {"role": last["role"], "content": f"{last['content']}\n\n{instruction}"}]
    stop = list(dict.fromkeys([*s.stop, *MARKERS, "\n#"]))
    return {"messages": messages, "max_tokens": SECTION_MAX_TOKENS, "stop": stop, "temperature": s.temperature,
            "repeat_penalty": s.repeat_penalty, "seed": s.seed}  # fmt: skip


def _outcome_line(record: Mapping[str, Any]) -> str:
    files = ", ".join(f"`{f}`" for f in record.get("files_changed") or ()) or "no file changed"
    status, rounds = record["status"], record.get("rounds", 0)
    said = {
        "approved": f"approved in review round {rounds}",
        "unapproved": f"NOT approved after {rounds} review rounds",
        "unreadable": "its review could not be read, so it is not approved",
        "refused": "refused, not run",
        "error": "failed",
    }.get(str(status), str(status))
    merge = (record.get("branch") or {}).get("merge")
    landed = {"merged": "; merged into the workspace", "conflict": "; NOT merged (conflict)",
              "not merged": "; kept unmerged in its branch"}.get(str(merge), "")  # fmt: skip
    return f"- {record['agent']}: {record['description']}: {said}; {files}{landed}."


def _own_files(messages: Sequence[BaseMessage]) -> list[str]:
    """Files the answering agent wrote itself (its own successful Write/Edit calls)."""
    ok = {m.tool_call_id for m in messages if isinstance(m, ToolMessage) and m.status != "error"}
    return [
        str(call["args"].get("file_path", ""))
        for m in messages if isinstance(m, AIMessage)
        for call in m.tool_calls if call["name"] in EDIT_TOOLS and call.get("id") in ok
    ]  # fmt: skip


def sectioned_answer(
    complete: Callable[[dict[str, Any]], Mapping[str, Any]],
    chat: list[dict[str, str]],
    guide: Guide,
    messages: Sequence[BaseMessage],
    s: GenerationSettings,
) -> tuple[str, list[PolicyDecision]]:
    """The answer: each guide section written by the model (`complete` runs one llama request), then the
    delegations' outcomes from their records; sentences the records contradict are dropped."""
    request = request_of(messages)
    outcomes = delegation_outcomes(messages)
    own = _own_files(messages)
    decisions: list[PolicyDecision] = []
    parts = []
    for section in guide.sections:
        text = parse_text(complete(_section_request(chat, guide, section, request, s)))
        kept = []
        for line in text.splitlines():
            wrong = false_claims(line, outcomes, own_files=own)
            if wrong:
                decisions.append(PolicyDecision("false_claim_removed", f"{wrong[0].sentence[:80]}: {wrong[0].why}"))
                continue
            kept.append(line)
        parts.append(f"## {section.heading}\n" + ("\n".join(kept).strip() or "- (nothing written)"))
    if outcomes:
        parts.append("## Delegated work\n" + "\n".join(_outcome_line(r) for r in outcomes))
    return "\n\n".join(parts), decisions
