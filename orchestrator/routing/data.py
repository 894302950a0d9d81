"""The router's labelled data: where it lives and how it is read.

Three sets, written for this project (see orchestrator/data/ and tests/data/routing/):

- `routing_labelled.jsonl` (shipped): ML tasks labelled with the bundled agent that should take them,
  split "train" (fits the classifier) and "calib" (error analysis and tuning; calibration is cross-fitted
  over both).
- `routing_agents_dev.json` (shipped): a few made-up non-ML agents with tasks for them; fits the gate that
  decides when a task belongs to a user-added agent rather than the ML pair.
- `tests/data/routing/test.jsonl`, `stress.jsonl` and `agents_test.json` (never shipped, never tuned on):
  the held-out sets the bench and the tests report on. `stress.jsonl` words junior work with senior cue
  words ("design", "review", "why") and the reverse; it was written after the test figures were in.

All of it was written by hand for this project, by one author: it measures generalisation to new
phrasings of the seed's split, not to any particular team's real traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "JUNIOR",
    "SENIOR",
    "AgentCase",
    "AgentSuite",
    "LabelledTask",
    "data_file",
    "load_agent_suite",
    "load_labelled",
]

SENIOR = "senior-ml-engineer"
JUNIOR = "ml-engineer"
LABELLED_FILE = "routing_labelled.jsonl"
AGENTS_DEV_FILE = "routing_agents_dev.json"
WEIGHTS_FILE = "routing_weights.json"
SEMANTIC_FILE = "routing_semantic.json"
CORPUS_TASKS_FILE = "routing_corpus_tasks.jsonl"
BODY_DF_FILE = "routing_corpus_df.json"


@dataclass(frozen=True)
class LabelledTask:
    """One task and the agent that should take it."""

    task: str
    label: str
    split: str


@dataclass(frozen=True)
class AgentCase:
    """A made-up agent (name and description) for routing to user-added agents."""

    name: str
    description: str


@dataclass(frozen=True)
class AgentSuite:
    """Agents a user might add, with tasks that belong to each."""

    agents: tuple[AgentCase, ...]
    tasks: tuple[LabelledTask, ...]


def data_file(name: str) -> Path:
    """Path of a file in orchestrator/data/ (in a checkout, the source tree: the training script writes there)."""
    return Path(__file__).resolve().parents[1] / "data" / name


def load_labelled(path: Path | None = None) -> list[LabelledTask]:
    """Read a JSONL file of {"task", "label", "split"} objects (default: the shipped training data)."""
    source = path or data_file(LABELLED_FILE)
    with source.open(encoding="utf-8") as handle:
        return [_labelled(json.loads(line)) for line in handle if line.strip()]


def load_agent_suite(path: Path | None = None) -> AgentSuite:
    """Read {"agents": [{"name", "description"}], "tasks": [{"task", "label"}]} (default: the dev suite)."""
    raw: dict[str, Any] = json.loads((path or data_file(AGENTS_DEV_FILE)).read_text(encoding="utf-8"))
    agents = tuple(AgentCase(a["name"], a["description"]) for a in raw["agents"])
    tasks = tuple(LabelledTask(t["task"], t["label"], "agents") for t in raw["tasks"])
    return AgentSuite(agents, tasks)


def _labelled(row: dict[str, Any]) -> LabelledTask:
    return LabelledTask(str(row["task"]), str(row["label"]), str(row.get("split", "")))
