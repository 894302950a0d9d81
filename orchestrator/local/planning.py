"""The local senior's plan for a design or debugging request. Claude plans for itself; a 1.5B model hands
its whole task to the junior and then answers generically, so for a delegating agent (one offered Task)
whose request has a guide (guides.py) the adapter:

1. reads the guide's expansion of the domain terms to the model before every step (`reference_note`);
2. delegates first (`delegate_piece`): the model writes a Task for one concrete, checkable piece (the
   guide's pieces are examples), in a short brief (`BRIEF_MAX_TOKENS`);
3. once the delegation came back, answers (`answer_by_sections`): for each of the guide's sections the
   model answers each point of its `Cover:` line in one sentence, one short request per point, shown
   under the point as its label ("- **Top-k retrieval**: ..."); a sentence that only repeats its point is
   shown as "(not answered)" (`items_unanswered`), except at a point that lists options to choose
   from: there the model is asked again under a grammar that admits only one of them and a reason
   (`option_picked`). Then the adapter states what each delegation did, from
   its record (the Task result's artifact), and drops sentences that claim otherwise (claims.py:
   `false_claim_removed`).

The headings and labels are the guide's; every word after them is the model's, written for the task (a
pick is one of the guide's options, chosen by the model).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from orchestrator.claims import false_claims
from orchestrator.local.guides import Guide, Section, guide_for
from orchestrator.local.policy import PolicyDecision
from orchestrator.local.schema import ToolDef
from orchestrator.local.steps import (
    ANSWER,
    MARKERS,
    GenerationSettings,
    cut_at_max_tokens,
    json_request,
    parse_text,
    request_of,
)
from orchestrator.routing.text import content_terms
from orchestrator.tools.permissions import EDIT_TOOLS

__all__ = [
    "BRIEF_MAX_TOKENS",
    "ITEM_MAX_TOKENS",
    "PICK_MAX_TOKENS",
    "SECTION_MAX_TOKENS",
    "brief_hint",
    "brief_note",
    "delegation_outcomes",
    "guided_task",
    "item_sentence",
    "pick_sentence",
    "planned_action",
    "planning_guide",
    "reference_note",
    "sectioned_answer",
]

BRIEF_MAX_TOKENS = 220
"""A Task brief for one piece: the file, what it must contain, the command that checks it."""
SECTION_MAX_TOKENS = 140
"""A section whose `Cover:` line is one item: three or four short bullets."""
ITEM_MAX_TOKENS = 48
"""One point of a section (an item of its `Cover:` line): one sentence."""
PICK_MAX_TOKENS = 80
"""A pick among a point's options as JSON: the option and a reason of at most `PICK_WHY_CHARS`."""
PICK_WHY_CHARS = 150


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


def _request(chat: list[dict[str, str]], instruction: str, max_tokens: int, s: GenerationSettings,
             stop: Sequence[str] = ()) -> dict[str, Any]:  # fmt: skip
    """A llama request: the conversation with the step's instruction last (so the KV cache keeps the rest)."""
    last = chat[-1]
    messages = [*chat[:-1], {"role": last["role"], "content": f"{last['content']}\n\n{instruction}"}]
    stops = list(dict.fromkeys([*s.stop, *MARKERS, "\n#", *stop]))
    return {"messages": messages, "max_tokens": max_tokens, "stop": stops, "temperature": s.temperature,
            "repeat_penalty": s.repeat_penalty, "seed": s.seed}  # fmt: skip


def _section_request(
    chat: list[dict[str, str]], guide: Guide, section: Section, request: str, s: GenerationSettings
) -> dict[str, Any]:
    """A one-item section in one request: 3 or 4 bullets."""
    instruction = (
        f'[Next step] {reference_note(guide)}\nWrite only the section "{section.heading}" of your answer to: '
        f"{request.strip()[:300]}\nCover: {section.cover}\nReply with 3 or 4 short bullets ('- '), specific to "
        "this request: name the concrete choices. No heading, no other section."
    )
    return _request(chat, instruction, SECTION_MAX_TOKENS, s)


def _item_request(
    chat: list[dict[str, str]], guide: Guide, section: Section, item: str, request: str, s: GenerationSettings
) -> dict[str, Any]:
    """One point of a section in its own request: a model asked for a bullet per point of a list skips
    points, merges them and repeats them back; asked one at a time it answers each. A point that lists
    options asks only for a pick among them: asked "how it applies" (and then to pick), the 1.5B model
    answered the NaN rerun point with "check the learning rate schedule" in 3 of 5 runs, naming neither
    way to rerun."""
    ask = {"design": "what you choose for this request and why",
           "debugging": "how it applies to this problem: what to check or change, and why"}[guide.kind]  # fmt: skip
    if _is_choice(item):
        ask = "which of the options in parentheses you choose for this request (name it), and why"
    instruction = (
        f'[Next step] {reference_note(guide)}\nYou are writing the section "{section.heading}" of your answer '
        f"to: {request.strip()[:300]}\nThe point: {item}\nIn one short sentence (at most 25 words), say {ask}."
        " Do not repeat the point."
    )
    return _request(chat, instruction, ITEM_MAX_TOKENS, s, stop=("\n\n",))


_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_MIN_NEW_TERMS = 2
"""A sentence that adds fewer content words than this to its point only restates it."""


_OPENER = re.compile(
    r"^(?:(?:for|in|as for|regarding|to) [^,.]{0,80}, )?(?:(?:(?:i|we|you) (?:would |will |can |should )?)?"
    r"(?:choose|chose|pick|need) to )?",
    re.IGNORECASE,
)
"""Filler a small model opens every sentence with ("For the retrieval step, I choose to ...")."""
_SENTENCE_END = re.compile(r"[.!?)`\]]$")
_ENUMERATOR = re.compile(r"^(?:(?:i )?choose:? )?\(\d\)\s*", re.IGNORECASE)
"""An option's number the model puts first ("Choose (1) Resume from ...", "(1) Check ...")."""


def _pick_request(
    chat: list[dict[str, str]], guide: Guide, section: Section, item: str, request: str, s: GenerationSettings
) -> dict[str, Any]:
    """A choice point the model's sentence left open (it named no option, or all of them), asked again
    under a grammar that admits only one of the point's options and a short reason."""
    instruction = (
        f'[Next step] {reference_note(guide)}\nYou are writing the section "{section.heading}" of your answer '
        f"to: {request.strip()[:300]}\nThe point: {item}\nPick the one option that fits this request best, "
        "and say why in one short sentence."
    )
    schema = {
        "type": "object",
        "properties": {"choice": {"enum": _option_names(item)}, "why": {"type": "string", "maxLength": PICK_WHY_CHARS}},
        "required": ["choice", "why"],
    }
    return json_request(chat, instruction, schema, PICK_MAX_TOKENS, s)


def pick_sentence(text: str, item: str, *, context: str = "") -> str | None:
    """The pick's reply rendered as the point's answer ("Resume from the last good checkpoint. Keeps the
    healthy steps."): the option, then the reason unless it only restates the point. None when the reply
    names no option (cut before it)."""
    try:
        reply = json.loads(text, strict=False)
    except json.JSONDecodeError:  # cut at max_tokens inside the reason: the option came first
        found = re.search(r'"choice"\s*:\s*"([^"]*)"', text)
        reply = {"choice": found.group(1)} if found else {}
    choice = str(reply.get("choice", "")) if isinstance(reply, dict) else ""
    if choice not in _option_names(item):
        return None
    why = str(reply.get("why") or "").strip()
    cut = len(why) >= PICK_WHY_CHARS - 1 or why.endswith("\u2026")  # the grammar ended it mid-sentence
    why = item_sentence(why.rstrip("\u2026"), item, cut=cut, context=f"{context} {choice}") or ""
    choice = choice[:1].upper() + choice[1:]
    return f"{choice}. {why}" if why else f"{choice}."


def _answer_point(complete: Callable[[dict[str, Any]], Mapping[str, Any]], request: dict[str, Any],
                  item: str, context: str) -> str | None:  # fmt: skip
    response = complete(request)
    return item_sentence(parse_text(response), item, cut=cut_at_max_tokens(response), context=context)


def item_sentence(text: str, item: str, *, cut: bool = False, context: str = "") -> str | None:
    """The model's sentence for one point, without a restated label ("Top-k retrieval: use k=8" keeps
    "use k=8") or filler; `cut` (it ran into max_tokens): ending at its last full sentence, else marked "…".
    None when it is empty or only repeats the point (its words, the `context`'s: the section and request),
    unless it picks among the options the point lists ("ResNet-50" for "(ResNet-50, ConvNeXt or ViT)")."""
    lines = [_BULLET.sub("", line).strip() for line in text.strip().splitlines() if line.strip()]
    said = " ".join(lines[:1] + [f"{line.rstrip('.;')};" for line in lines[1:-1]] + lines[1:][-1:])
    if said.lower().startswith(item.lower()):
        said = said[len(item) :].lstrip(" :,-\u2013\u2014").strip()
    label, colon, rest = said.partition(":")
    if colon and label.strip() and set(content_terms(label)) <= set(content_terms(item)):
        said = rest.strip()
    said = _ENUMERATOR.sub("", _OPENER.sub("", said, count=1).strip()).strip()
    if said.startswith("(") and said.endswith(")") and "(" not in said[1:]:
        said = said[1:-1].strip()  # "(Resume from the last good checkpoint)"
    if cut and said and not _SENTENCE_END.search(said):
        end = max(said.rfind(". "), said.rfind("; "))
        said = said[: end + 1] if end >= len(said) // 3 else f"{said}…"
    new = set(content_terms(said)) - set(content_terms(f"{item} {context}"))
    answered = len(new) >= _MIN_NEW_TERMS or _makes_a_choice(said, item)
    return said[:1].upper() + said[1:] if answered else None


_OPTIONS = re.compile(r"\(([^()]*)\)")
_OPTION_SPLIT = re.compile(r",\s*(?:or\s+)?|\s+or\s+")


def _option_names(item: str) -> list[str]:
    """The options a point lists in parentheses, as written: "(for images: ResNet-50, ConvNeXt or ViT)"."""
    found = []
    for group in _OPTIONS.findall(item):
        body = group.rpartition(":")[2]
        body = re.sub(r"^\s*(?:for example|e\.g\.|such as)\s+", "", body, flags=re.IGNORECASE)
        found += [o.strip() for o in _OPTION_SPLIT.split(body) if o.strip()]
    return found if len(found) > 1 else []


def _options(item: str) -> list[str]:
    return [o.lower() for o in _option_names(item)]


def _is_choice(item: str) -> bool:
    """Whether the point asks to choose: options in parentheses joined by "or" ("(5, 10 or 20)"), not a
    list of parts ("(source, title, date)")."""
    return bool(_options(item)) and any(re.search(r"\bor\b", group) for group in _OPTIONS.findall(item))


def _makes_a_choice(said: str, item: str) -> bool:
    """Naming some but not all of the point's listed options is an answer: picking one is the point.
    A verbatim echo of the list does not count."""
    options = _options(item)
    text = said.lower()
    for group in _OPTIONS.findall(item):
        text = text.replace(f"({group.lower()})", " ")
    named = [o for o in options if o in text]
    return 0 < len(named) < len(options)


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
        if len(section.items) > 1:
            context = f"{section.heading} {request}"
            said = []
            for item in section.items:
                text = _answer_point(complete, _item_request(chat, guide, section, item, request, s), item, context)
                if text is None and _is_choice(item):
                    reply = parse_text(complete(_pick_request(chat, guide, section, item, request, s)))
                    text = pick_sentence(reply, item, context=context)
                    decisions.append(PolicyDecision("option_picked", f"{item[:60]}: {text or 'no option named'}"))
                said.append(text)
            lines = [f"- **{item[:1].upper()}{item[1:]}**: {text or '(not answered)'}"
                     for item, text in zip(section.items, said, strict=True)]  # fmt: skip
            if said.count(None):
                decisions.append(PolicyDecision("items_unanswered", f"{section.heading}: {said.count(None)} of "
                                                f"{len(section.items)} points empty or only repeated"))  # fmt: skip
        else:
            lines = parse_text(complete(_section_request(chat, guide, section, request, s))).splitlines()
        kept = []
        for line in lines:
            wrong = false_claims(line, outcomes, own_files=own)
            if wrong:
                decisions.append(PolicyDecision("false_claim_removed", f"{wrong[0].sentence[:80]}: {wrong[0].why}"))
                continue
            kept.append(line)
        parts.append(f"## {section.heading}\n" + ("\n".join(kept).strip() or "- (nothing written)"))
    if outcomes:
        parts.append("## Delegated work\n" + "\n".join(_outcome_line(r) for r in outcomes))
    return "\n\n".join(parts), decisions
