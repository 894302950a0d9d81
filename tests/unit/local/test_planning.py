"""The local senior's plan (orchestrator/local/planning.py) through the llama boundary: a guided request is
delegated as one checkable piece in a short brief, then answered section by section with the delegation's
outcome stated from its record and contradicted claims left out."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from orchestrator import load_agents
from orchestrator.graphs.prompts import task_tool_schema
from orchestrator.local.guides import guide_for, load_guides
from orchestrator.local.planning import BRIEF_MAX_TOKENS, ITEM_MAX_TOKENS, PICK_MAX_TOKENS, item_sentence, pick_sentence
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


async def test_after_the_delegation_each_point_is_answered_in_its_own_step_and_the_outcome_stated() -> None:
    sections = guide_for("design a RAG pipeline").sections  # type: ignore[union-attr]
    said = [[f"Use tool{n}{i} with batch size 64." for i in range(len(s.items))] for n, s in
            enumerate(sections)]  # fmt: skip
    said[0][1] = "I created rag/chunking.py for this."
    said[0][2] = "The chunker was approved."
    said[1][1] = "Batch embedding."  # only repeats its point
    said[2][0] = "Top-k retrieval: k=8 from pgvector, then rerank the 50 best."  # restates the label first
    llama = ScriptedLlama(*(text for section in said for text in section))
    reply = await chat_model(llama).bind_tools([READ, WRITE, TASK_TOOL]).ainvoke(_came_back("unapproved"))
    items = [(s, item) for s in sections for item in s.items]
    assert llama.steps == ["answer"] * len(items)
    assert all(r["max_tokens"] == ITEM_MAX_TOKENS and "\n\n" in r["stop"] for r in llama.requests)
    asked = [r["messages"][-1]["content"] for r in llama.requests]
    assert all(f'section "{s.heading}"' in a and f"The point: {item}\n" in a
               for (s, item), a in zip(items, asked, strict=True))  # fmt: skip
    # a point that lists options asks for a pick among them; the others do not
    picks = {item for (_, item), a in zip(items, asked, strict=True) if "options in parentheses you choose" in a}
    assert "top-k retrieval (how many passages: 5, 10 or 20)" in picks
    assert not any(p.startswith(("caching", "metadata kept per chunk (source, title, date)")) for p in picks)
    assert picks == {item for _, item in items if re.search(r"\([^()]* or [^()]*\)", item)}
    text = str(reply.content)
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        *(f"## {s.heading}" for s in sections),
        "## Delegated work",
    ]
    # each point is labelled with the guide's words; what follows the label is the model's
    assert "- **Document sources and parsing**: Use tool00 with batch size 64." in text
    assert "I created" not in text and "was approved" not in text and "**Cleaning**" not in text
    assert "- **Batch embedding**: (not answered)" in text
    assert "- **Top-k retrieval (how many passages: 5, 10 or 20)**: K=8 from pgvector, then rerank the 50 best." in text
    assert text.endswith("- ml-engineer: chunker: NOT approved after 3 review rounds; `rag/chunking.py`.")
    rules = [d["rule"] for d in reply.response_metadata[POLICY_KEY]]
    assert rules == ["answer_by_sections", "false_claim_removed", "false_claim_removed", "items_unanswered"]


def test_a_points_sentence_loses_a_restated_label_and_a_restatement_is_no_answer() -> None:
    assert item_sentence("- Filters on metadata: by date and source in a WHERE clause", "filters on metadata") == (
        "By date and source in a WHERE clause"
    )
    assert item_sentence("query rewriting - HyDE for short queries", "query rewriting") == "HyDE for short queries"
    assert item_sentence("A cross-encoder reranker.", "a cross-encoder reranker") is None
    assert item_sentence("", "caching") is None
    said = "For the retrieval step, I choose to use a cross-encoder over the top 50. It reranks them by rel"
    assert item_sentence(said, "a cross-encoder reranker", cut=True) == "Use a cross-encoder over the top 50."
    assert item_sentence("Redis in front of the index for repeated", "caching", cut=True) == (
        "Redis in front of the index for repeated…"
    )
    assert item_sentence("Redis in front of the index", "caching") == "Redis in front of the index"
    assert item_sentence("Choose to strip boilerplate first.", "cleaning") == "Strip boilerplate first."
    # picking one of the point's listed options answers it; echoing the whole list does not
    backbone = "a pretrained backbone (for images: ResNet-50, ConvNeXt or ViT)"
    assert item_sentence("A pretrained ResNet-50 backbone.", backbone) == "A pretrained ResNet-50 backbone."
    assert item_sentence("A pretrained backbone (for images: ResNet-50, ConvNeXt or ViT).", backbone) is None
    assert item_sentence("ResNet-50, ConvNeXt or ViT.", backbone) is None
    rerun = "the rerun (resume from the last good checkpoint, or rerun from step 0 with the same seed)"
    for said in ("Choose (1) Resume from the last good checkpoint.", "(Resume from the last good checkpoint)"):
        assert item_sentence(said, rerun) == "Resume from the last good checkpoint" + ("." if "." in said else "")
    # a list after a colon is kept, as one sentence; words of the section and request are no answer
    assert item_sentence("The likely causes are:\n- lr spikes\n- fp16 overflow", "causes") == (
        "The likely causes are: lr spikes; fp16 overflow"
    )
    assert item_sentence("To verify the fix, I will watch the norms stay bounded.", "watch gradient norms stay bounded",
                         context="Verifying the fix") is None  # fmt: skip


async def test_a_choice_point_left_open_is_asked_again_under_a_grammar_of_its_options() -> None:
    nan = "our transformer's loss goes NaN after about 1,000 steps: find the cause and fix it"
    sections = guide_for(nan).sections  # type: ignore[union-attr]
    items = [item for s in sections for item in s.items]
    point = next(i for i in items if i.startswith("how to find the first step"))
    said = [f"Look at tool{n} with batch size 64." for n in range(len(items))]
    said[items.index(point)] = "Use torch.isfinite or anomaly detection to find the step."  # names both: open
    picked = '{"choice": "torch.isfinite", "why": "It costs one check per step, cheap enough to leave on."}'
    said.insert(items.index(point) + 1, picked)
    llama = ScriptedLlama(*said)
    came_back = [SystemMessage("You are the senior."), HumanMessage(nan), *_came_back("approved")[2:]]
    reply = await chat_model(llama).bind_tools([READ, WRITE, TASK_TOOL]).ainvoke(came_back)
    at = items.index(point) + 1
    assert llama.steps == ["answer"] * at + ["tool"] + ["answer"] * (len(items) - at)
    pick = llama.requests[at]
    assert pick["max_tokens"] == PICK_MAX_TOKENS
    options = {"enum": ["torch.isfinite", "anomaly detection"]}
    assert pick["response_format"]["schema"]["properties"]["choice"] == options
    assert f"The point: {point}\n" in pick["messages"][-1]["content"]
    text = str(reply.content)
    answer = "Torch.isfinite. It costs one check per step, cheap enough to leave on."
    assert f"- **{point[:1].upper()}{point[1:]}**: {answer}" in text
    rules = [d["rule"] for d in reply.response_metadata[POLICY_KEY]]
    assert rules == ["answer_by_sections", "option_picked"]


def test_a_pick_is_its_option_then_its_reason_and_no_option_is_no_answer() -> None:
    rerun = "the rerun (resume from the last good checkpoint, or rerun from step 0 with the same seed)"
    assert pick_sentence('{"choice": "resume from the last good checkpoint", "why": "It keeps the healthy steps."}',
                         rerun) == "Resume from the last good checkpoint. It keeps the healthy steps."  # fmt: skip
    # a reason that only restates the point is left out; a reply cut inside the reason keeps its option
    assert pick_sentence('{"choice": "rerun from step 0 with the same seed", "why": "A rerun from step 0."}',
                         rerun) == "Rerun from step 0 with the same seed."  # fmt: skip
    assert pick_sentence('{"choice": "rerun from step 0 with the same seed", "why": "Because it', rerun) == (
        "Rerun from step 0 with the same seed."
    )
    kept = "It keeps the 1,000 healthy steps and the optimizer state."
    said = f'{{"choice": "resume from the last good checkpoint", "why": "{kept} A rerun from step 0 wastes\u2026"}}'
    assert pick_sentence(said, rerun) == f"Resume from the last good checkpoint. {kept}"
    assert pick_sentence('{"choice": "restart', rerun) is None
    assert pick_sentence('{"choice": "bf16", "why": "Faster."}', rerun) is None


async def test_an_unguided_request_keeps_the_plain_protocol() -> None:
    llama = ScriptedLlama('{"action": "answer"}', "Renamed nothing yet.")
    request = [SystemMessage("You are the senior."), HumanMessage("say hello to the team")]
    reply = await chat_model(llama).bind_tools([READ, TASK_TOOL]).ainvoke(request)
    assert llama.steps == ["choose", "answer"] and reply.content == "Renamed nothing yet."
