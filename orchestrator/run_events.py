"""A run's recorded progress events read back as facts: the route it took and the permission answers it
got. Events carry these as typed fields (graphs/progress.py), so nothing here parses display text; the
trace and replay both read them through this one module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.graphs.state import RouteInfo

__all__ = ["RecordedEvents", "permission_answers", "route_of"]

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
