"""A run's recorded progress events read back as facts: the route it took and the permission answers it
got. Events carry these as typed fields (graphs/progress.py), so nothing here parses display text; the
trace and replay both read them through this one module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from orchestrator.graphs.state import RouteInfo

__all__ = [
    "RecordedEvents",
    "RunIssue",
    "granted_rules",
    "issues_of",
    "permission_answers",
    "recordable",
    "replayed",
    "route_of",
]

RecordedEvents = Sequence[tuple[float, Mapping[str, Any]]]
"""(timestamp, event) pairs as `RunStore.events` returns them."""


def route_of(events: RecordedEvents) -> RouteInfo | None:
    """The run's routing decision (its first route event), or None if it never got that far."""
    event = next((e for _, e in events if e.get("event") == "route"), None)
    if event is None:
        return None
    return RouteInfo(
        agent=str(event["agent"]), confidence=float(event.get("confidence", 0.0)),
        reason=str(event.get("detail", "")), method=str(event.get("method", "")),
    )  # fmt: skip


def permission_answers(events: RecordedEvents) -> list[tuple[str, str]]:
    """(what was asked, the answer) for every permission ask, in the order they were answered."""
    return [
        (str(e.get("summary", "")), str(e.get("answer", "")))
        for _, e in events
        if e.get("event") == "permission" and "answer" in e
    ]


def recordable(event: Mapping[str, Any]) -> bool:
    """Whether a progress event belongs in the run's records: a streamed piece of a reply does not (the
    reply is recorded whole with its call)."""
    return event.get("event") != "text"


def replayed(event: Mapping[str, Any], seen: set[str]) -> bool:
    """Whether `event` is one a resumed node sends again (and note it in `seen`): after a permission ask
    the `delegate` node runs again from its start (its branch resumes from the checkpoint) and so does the
    tool node, whose earlier asks' answers come back again, so their "delegate" and "permission" events
    come twice."""
    if event.get("event") not in ("delegate", "permission"):
        return False
    key = f"{event.get('event')}:{event.get('call_id')}"
    again = key in seen
    seen.add(key)
    return again


def granted_rules(events: RecordedEvents) -> set[str]:
    """The exact rules the user answered "always" to: allowed for the rest of the run."""
    return {str(e["rule"]) for _, e in events if e.get("event") == "permission" and e.get("answer") == "always"}


IssueKind = Literal["unapproved", "unreadable", "conflict", "refused", "failed", "denied"]
"""conflict: an approved delegation's branch could not merge; nothing of it landed (its branch is kept)."""


class RunIssue(TypedDict):
    """Something the run could not do: why it ends `incomplete` rather than `completed`."""

    kind: IssueKind
    agent: str
    what: str
    """The delegation's description, or the tool that was denied."""
    reason: str
    call_id: str


_ISSUES: dict[str, IssueKind] = {
    "refused": "refused",
    "failed": "failed",
    "denied": "denied",
}


def issues_of(events: RecordedEvents) -> list[RunIssue]:
    """Each unapproved, refused or failed delegation and each denied tool call, in the order they
    happened (a Task call counted once, by its last outcome)."""
    found: dict[str, RunIssue] = {}
    for _, e in events:
        kind: IssueKind | None = _ISSUES.get(str(e.get("event")))
        if e.get("event") == "returned" and e.get("status") in ("unapproved", "unreadable"):
            kind = "unreadable" if e.get("status") == "unreadable" else "unapproved"
        elif e.get("event") == "returned" and e.get("merge") == "conflict":
            kind = "conflict"
        call_id = str(e.get("call_id", ""))
        if e.get("event") == "returned" and kind is None:
            found.pop(call_id, None)  # approved after all (a later attempt of the same call)
        if kind is None:
            continue
        what = str(e.get("description") or e.get("detail", ""))
        reason = str(e.get("reason") or e.get("detail", ""))
        if kind == "conflict":
            reason = "its branch conflicts with the workspace; nothing of it landed (see `orchestrate branches`)"
        found[call_id] = RunIssue(kind=kind, agent=str(e.get("agent", "?")), what=what, reason=reason, call_id=call_id)
    return list(found.values())
