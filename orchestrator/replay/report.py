"""What a replay found, for the terminal (`lines`) and for `--json` (`to_dict`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from orchestrator.replay.recording import Divergence

__all__ = ["ReplayReport"]


@dataclass(frozen=True)
class ReplayReport:
    """What a replay found: the first divergence (if any), the replayed run, recorded calls never used."""

    source: str
    run_id: str
    status: str
    final: str
    recorded_final: str | None
    replayed: int
    live: int
    unused: tuple[int, ...]
    divergence: Divergence | None
    workspace: str
    scratch: bool = True
    """The workspace was a temporary directory, removed after the replay."""
    error: str | None = None

    @property
    def same(self) -> bool:
        """The graph behaved as recorded: every answer used, nothing new asked, the same final answer."""
        return self.divergence is None and not self.unused and self.final == (self.recorded_final or "")

    def lines(self) -> list[str]:
        head = f"replay of {self.source} as run {self.run_id}: {self.status}"
        counts = f"{self.replayed} calls answered from the recording, {self.live} sent to the live provider"
        out = [head, counts, f"workspace: {self.workspace}" + (" (scratch, removed)" if self.scratch else "")]
        if self.divergence is not None:
            out.append(self.divergence.describe())
        if self.unused:
            out.append(f"recorded calls never used: steps {', '.join(map(str, self.unused))}")
        if self.divergence is None and self.final != (self.recorded_final or ""):
            out.append("the final answer differs from the recorded one")
        out.append("same behaviour as recorded" if self.same else "behaviour differs from the recording")
        return out

    def to_dict(self) -> dict[str, Any]:
        divergence = None if self.divergence is None else {
            **{f.name: getattr(self.divergence, f.name) for f in fields(self.divergence)},
            "description": self.divergence.describe(),
        }  # fmt: skip
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "divergence"}
        return {**plain, "unused": list(self.unused), "divergence": divergence, "same": self.same}
