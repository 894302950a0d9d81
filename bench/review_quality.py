"""How well the local senior model reviews: known-good and known-bad delegated work, each put through the
real review request (graphs/evidence.py) and the real Verdict call on the local model. Prints each
scenario's verdict next to the expected one, and the agreement.

    .venv/bin/python bench/review_quality.py [--repeat 1]

bench/data/ holds a design that meets the brief, and one the local junior model wrote in a real main-job
run (it has no vector store and no milestones, so it does not).
Sampling is greedy, so --repeat only re-measures time; vary the scenarios to learn more.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import HumanMessage, SystemMessage

from orchestrator import load_agents
from orchestrator.graphs.evidence import missing_work, review_request
from orchestrator.graphs.prompts import VERDICT_SCHEMA, VERDICT_TOOL, review_system_prompt
from orchestrator.graphs.state import Brief, ToolEvent
from orchestrator.local import LocalProvider

DATA = Path(__file__).parent / "data"
GOOD_DOC = (DATA / "rag_pipeline_good.md").read_text()
JUNIOR_DOC = (DATA / "rag_pipeline_junior.md").read_text()
STUB_DOC = "# RAG pipeline\n\nTODO: write the design.\n"
OFF_TOPIC_DOC = "# Weekly grocery list\n\n- eggs\n- milk\n- bread\n- apples\n- coffee\n"
BRIEFS = (
    "Create {ws}/rag_pipeline.md containing the design of a RAG pipeline: its components (retriever, "
    "generator, vector store), how data flows through them, milestones, and risks with their mitigations.",
    "Write the RAG pipeline design to rag_pipeline.md.\n\nIt must cover:\n- components, including the "
    "vector store\n- the data flow\n- milestones\n- risks and how to mitigate them",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: str
    report: str
    calls: tuple[tuple[str, bool, str], ...]
    """(tool, ok, result) on rag_pipeline.md, in order."""
    content: str | None
    """What rag_pipeline.md holds afterwards (None: it does not exist)."""


MISSING = ("Read", False, "Error: File does not exist: rag_pipeline.md")
WROTE = ("Write", True, "Created file rag_pipeline.md ({n} lines).")
SCENARIOS = (
    Scenario("good doc", "approve", "Created file rag_pipeline.md.", (WROTE,), GOOD_DOC),
    Scenario("good doc after a failed Read", "approve", "Wrote the design.", (MISSING, WROTE), GOOD_DOC),
    Scenario("junior's doc: no store, no milestones", "revise", "Created file rag_pipeline.md.", (WROTE,), JUNIOR_DOC),
    Scenario("stub doc", "revise", "Created file rag_pipeline.md.", (WROTE,), STUB_DOC),
    Scenario("off-topic doc", "revise", "Done: rag_pipeline.md has the design.", (WROTE,), OFF_TOPIC_DOC),
    Scenario("claimed, never written", "revise", "I wrote the design to rag_pipeline.md.", (), None),
    Scenario("only a failed Read", "revise", "The design is complete.", (MISSING,), None),
)


def request_for(scenario: Scenario, brief_text: str, ws: Path) -> str:
    if scenario.content is not None:
        (ws / "rag_pipeline.md").write_text(scenario.content)
    lines = len((scenario.content or "").splitlines())
    log = [
        ToolEvent(
            tool=tool, args=f"file_path='{ws}/rag_pipeline.md'", ok=ok, result=result.format(n=lines),
            path="rag_pipeline.md",
        )
        for tool, ok, result in scenario.calls
    ]  # fmt: skip
    brief = Brief(
        call_id="c1", agent="ml-engineer", description="Design a RAG pipeline", prompt=brief_text.format(ws=ws),
        parent="senior-ml-engineer", parent_model="opus", depth=1, briefs=[], position=0,
    )  # fmt: skip
    changed = ["rag_pipeline.md"] if any(ok and tool == "Write" for tool, ok, _ in scenario.calls) else []
    problems = missing_work(brief, scenario.report, changed, ws)
    return review_request(brief, scenario.report, log, changed, workspace=ws, problems=problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--width", type=int, default=90, help="characters of feedback to show")
    args = parser.parse_args()
    senior = load_agents()["senior-ml-engineer"]
    chat = LocalProvider().chat_model("opus").bind_tools([VERDICT_SCHEMA], tool_choice=VERDICT_TOOL)
    agree = total = 0
    for scenario, (b, brief_text) in itertools.product(SCENARIOS * args.repeat, enumerate(BRIEFS, start=1)):
        with tempfile.TemporaryDirectory(prefix="orchestrate-review-") as tmp:
            request = request_for(scenario, brief_text, Path(tmp))
            started = time.perf_counter()
            reply = chat.invoke([SystemMessage(review_system_prompt(senior)), HumanMessage(request)])
            seconds = time.perf_counter() - started
        verdict = reply.tool_calls[0]["args"] if reply.tool_calls else {}
        decision = verdict.get("decision", "?")
        agree, total = agree + (decision == scenario.expected), total + 1
        feedback = str(verdict.get("feedback", ""))[: args.width].replace("\n", " ")
        print(f"{scenario.name:<38} b{b}{scenario.expected:>9}{decision:>9}{seconds:>7.1f}s  {feedback}")
    print(f"agreement: {agree}/{total}")


if __name__ == "__main__":
    main()
