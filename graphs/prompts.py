"""Everything the models read that we write: system prompts, the Task and Verdict tool schemas, briefs.

Kept in one module so a prompt change is one diff, and snapshot tests catch silent drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langchain_core.messages import SystemMessage

from orchestrator.agent_spec import AgentSpec

__all__ = [
    "FEEDBACK_MAX",
    "TASK_ALIASES",
    "TASK_TOOL",
    "VERDICT_SCHEMA",
    "VERDICT_TOOL",
    "agent_system_prompt",
    "review_system_prompt",
    "revision_message",
    "system_message",
    "task_tool_schema",
]

TASK_TOOL = "Task"
TASK_ALIASES = frozenset({"Task", "Agent"})
VERDICT_TOOL = "Verdict"
FEEDBACK_MAX = 800


def system_message(text: str, *, cache: bool) -> SystemMessage:
    """The system prompt, as a prompt-cache breakpoint on Claude: tools and system prompt come first in
    every request of an agent, so later calls read that prefix from cache (~10 % of the input price)."""
    if not cache:
        return SystemMessage(text)
    return SystemMessage([{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}])


def agent_system_prompt(spec: AgentSpec, workspace: Path, *, tools_left: bool) -> str:
    footer = [f"Workspace: all file paths are relative to {workspace}."]
    if not tools_left:
        footer.append("You have used all your turns: give your final answer now, without tools.")
    return f"{spec.prompt}\n\n---\n" + "\n".join(footer)


def task_tool_schema(candidates: Iterable[AgentSpec]) -> dict[str, Any]:
    """Claude Code's Task tool: `description`, `prompt`, `subagent_type`."""
    listed = sorted(candidates, key=lambda spec: spec.name)
    roster = "\n".join(f"- {spec.name}: {spec.description}" for spec in listed)
    return {
        "name": TASK_TOOL,
        "description": (
            "Delegates one well-scoped piece (a module, a script, a config) to a subagent, which works with "
            "its own tools in a fresh context holding only your prompt; you review its result before it "
            "returns here. Independent subtasks in one turn run in parallel.\n"
            f"Available subagents:\n{roster}"
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "description": {
                    "type": "string",
                    "maxLength": 80,
                    "description": "A short (3-5 word) title.",
                },
                "prompt": {
                    "type": "string",
                    "maxLength": 4000,
                    "description": (
                        'The brief, naming the file(s) to create or change ("Create <path> containing ..."), then '
                        "the interfaces and how to check the result."
                    ),
                },
                "subagent_type": {"type": "string", "enum": [spec.name for spec in listed]},
            },
            "required": ["description", "prompt", "subagent_type"],
        },
    }


VERDICT_SCHEMA: dict[str, Any] = {
    "name": VERDICT_TOOL,
    "description": "Your verdict on the delegated work.",
    "input_schema": {
        "type": "object",
        "properties": {
            "feedback": {
                "type": "string",
                "maxLength": FEEDBACK_MAX,
                "description": (
                    "Written before the decision: check the work against each point of the brief. "
                    "For revise: exactly what is missing or wrong and what to do. For approve: one line."
                ),
            },
            "decision": {"type": "string", "enum": ["approve", "revise"]},
        },
        "required": ["feedback", "decision"],
    },
}


def review_system_prompt(reviewer: AgentSpec) -> str:
    return (
        f"You are {reviewer.name}, reviewing work you delegated. The work is the files changed, shown with "
        "their content as it is now; the tool calls are the evidence of what was done; the summary is only "
        "what the subagent says (it is the work itself only when the brief asks for no file). Judge the "
        "work against the brief. Work the evidence does not show must be revised. Approve work that meets "
        f"the brief. Answer with the {VERDICT_TOOL} tool."
    )


def revision_message(feedback: str, round_number: int) -> str:
    return f"Review of round {round_number}: revise. {feedback}\nFix this with your tools, then report again."
