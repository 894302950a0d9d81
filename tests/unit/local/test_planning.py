"""The local senior's plan (orchestrator/local/planning.py) through the llama boundary: a guided request is
delegated as one checkable piece in a short brief, then answered section by section with the delegation's
outcome stated from its record and contradicted claims left out."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from orchestrator import load_agents
from orchestrator.graphs.prompts import task_tool_schema
from orchestrator.local.guides import guide_for, load_guides
from orchestrator.local.planning import BRIEF_MAX_TOKENS, SECTION_MAX_TOKENS
from orchestrator.local.policy import POLICY_KEY
from tests.support.scripted_llama import READ, WRITE, ScriptedLlama, call, chat_model

TASK_TOOL = task_tool_schema(load_agents(cwd=Path("/nonexistent"), home=Path("/nonexistent")).agents.values())
"""The real Task tool, as the graph offers it (the bundled agents)."""
REQUEST: list[BaseMessage] = [SystemMessage("You are the senior."), HumanMessage("design a RAG pipeline")]


def test_each_bundled_guide_has_sections_pieces_and_sources() -> None:
    guides = load_guides()
    assert {g.name for g in guides} >= {"rag-pipeline", "training-pipeline", "training-instability"}
    for guide in guides:
        assert guide.sections and all(s.cover for s in guide.sections), guide.name
        assert guide.pieces and guide.sources and guide.expands, guide.name


def test_a_request_gets_the_guide_its_terms_name_else_a_general_one_else_none() -> None:
    cases = {
        "design a RAG pipeline": "rag-pipeline",
        "build semantic search over our support tickets": "rag-pipeline",
        "plan the training pipeline for an image classifier on 2M labelled images": "training-pipeline",
        "our transformer's loss goes NaN after about 1,000 steps: find the cause and fix it": "training-instability",
        "design a feature store for fraud detection": "ml-system-design",
        "why is the nightly export job failing?": "ml-debugging",
        "rename the variable x in utils.py": None,
        "hello": None,
    }
    assert {task: (g.name if (g := guide_for(task)) else None) for task in cases} == cases


async def test_a_guided_senior_delegates_one_piece_in_a_short_brief_without_a_choice_step() -> None:
    brief = "Create rag/chunking.py with chunk_text(text, size, overlap); check it with python -c ..."
    llama = ScriptedLlama('{"description": "Write rag/chunking.py", "subagent_type": "ml-engineer"}', brief)
    reply = await chat_model(llama).bind_tools([READ, WRITE, TASK_TOOL]).ainvoke(REQUEST)
    assert llama.steps == ["tool", "body"]  # the plan chose Task: no choice step
    assert reply.tool_calls[0]["name"] == "Task" and reply.tool_calls[0]["args"]["prompt"] == brief
    pick = llama.requests[0]["response_format"]["schema"]["properties"]["description"]
    assert pick["enum"] == ["Write rag/chunking.py", "Write rag/retrieve.py"]  # one of the guide's pieces
    body = llama.requests[1]
    assert body["max_tokens"] == BRIEF_MAX_TOKENS
    said = body["messages"][-1]["content"]
    assert "retrieval-augmented generation" in said
    assert "The piece to delegate: `rag/chunking.py`: `chunk_text(text, size=500, overlap=50)" in said
    assert [d["rule"] for d in reply.response_metadata[POLICY_KEY]] == ["delegate_piece"]


def _came_back(status: str) -> list[BaseMessage]:
    record = {"id": "t1", "agent": "ml-engineer", "description": "chunker", "depth": 1, "parent": "senior-ml-engineer",
              "status": status, "rounds": 3 if status != "approved" else 1, "verdicts": [],
              "files_changed": ["rag/chunking.py"]}  # fmt: skip
    task = {"description": "chunker", "prompt": "Create rag/chunking.py", "subagent_type": "ml-engineer"}
    return [
        *REQUEST,
        AIMessage("", tool_calls=[call("Task", task, "t1")]),
        ToolMessage("Done.\n\n[review: ...]", tool_call_id="t1", name="Task", artifact=record),
    ]


async def test_after_the_delegation_the_answer_is_written_section_by_section_with_the_outcome_stated() -> None:
    sections = guide_for("design a RAG pipeline").sections  # type: ignore[union-attr]
    written = [f"- point {n} about {s.heading.lower()}" for n, s in enumerate(sections)]
    written[0] += "\n- I created rag/chunking.py for this.\n- The chunker was approved."
    llama = ScriptedLlama(*written)
    reply = await chat_model(llama).bind_tools([READ, WRITE, TASK_TOOL]).ainvoke(_came_back("unapproved"))
    assert llama.steps == ["answer"] * len(sections)
    assert all(r["max_tokens"] == SECTION_MAX_TOKENS for r in llama.requests)
    asked = [r["messages"][-1]["content"] for r in llama.requests]
    assert all(f'section "{s.heading}"' in said for s, said in zip(sections, asked, strict=True))
    text = str(reply.content)
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        *(f"## {s.heading}" for s in sections),
        "## Delegated work",
    ]
    assert "- point 0 about ingestion and chunking" in text and "I created" not in text and "was approved" not in text
    assert text.endswith("- ml-engineer: chunker: NOT approved after 3 review rounds; `rag/chunking.py`.")
    rules = [d["rule"] for d in reply.response_metadata[POLICY_KEY]]
    assert rules == ["answer_by_sections", "false_claim_removed", "false_claim_removed"]


async def test_an_unguided_request_keeps_the_plain_protocol() -> None:
    llama = ScriptedLlama('{"action": "answer"}', "Renamed nothing yet.")
    request = [SystemMessage("You are the senior."), HumanMessage("say hello to the team")]
    reply = await chat_model(llama).bind_tools([READ, TASK_TOOL]).ainvoke(request)
    assert llama.steps == ["choose", "answer"] and reply.content == "Renamed nothing yet."
