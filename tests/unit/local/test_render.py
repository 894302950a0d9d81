"""Rendering a conversation compactly for a small model, tool traffic as a user-side log."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from orchestrator.local.render import PromptLimits, render_messages
from tests.support.scripted_llama import (
    call,
)


def test_render_puts_tool_traffic_in_a_compact_user_side_log() -> None:
    chat = render_messages(
        [
            SystemMessage("sys"),
            HumanMessage("task"),
            AIMessage(content="", tool_calls=[call("Read", {"file_path": "a.py"}, "t1")]),
            ToolMessage("x" * 5000, tool_call_id="t1", name="Read"),
            ToolMessage("boom", tool_call_id="t2", name="Write", status="error"),
            AIMessage("Done: a.py read."),
        ]
    )
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    log = chat[1]["content"]
    assert log.startswith('task\n\n[You called Read(file_path="a.py")]\n\n[Read result]\nxxx')
    assert "chars omitted" in log
    assert len(log) < 1000
    assert "[Write error]\nboom" in log
    assert chat[2]["content"] == "Done: a.py read."  # only what the model said is an assistant turn


def test_render_gives_the_request_more_room_than_later_messages() -> None:
    limits = PromptLimits(request_chars=500, message_chars=100)
    chat = render_messages([HumanMessage("r" * 400), AIMessage("a" * 400), HumanMessage("m" * 400)], limits)
    assert chat[0]["content"] == "r" * 400
    assert "chars omitted" in chat[1]["content"]
    assert "chars omitted" in chat[2]["content"]


def test_render_trims_long_histories_but_keeps_system_task_and_latest() -> None:
    history: list[BaseMessage] = [SystemMessage("sys"), HumanMessage("the task")]
    for n in range(40):
        history += [AIMessage(f"thinking {n} " + "y" * 300), HumanMessage(f"more {n} " + "z" * 300)]
    chat = render_messages(history, PromptLimits(total_chars=3000))
    text = "".join(m["content"] for m in chat)
    assert len(text) < 3200
    assert chat[0] == {"role": "system", "content": "sys"}
    assert chat[1]["content"].startswith("the task")
    assert "earlier messages omitted" in chat[1]["content"]
    assert chat[-1]["content"].startswith("more 39")


def test_render_always_ends_with_a_user_turn() -> None:
    chat = render_messages([SystemMessage("sys"), HumanMessage("q"), AIMessage("half an answer")])
    assert chat[-1] == {"role": "user", "content": "Continue."}


def test_render_reads_text_out_of_content_blocks() -> None:
    message = HumanMessage(content=[{"type": "text", "text": "hello"}, {"type": "image", "url": "x"}])
    assert render_messages([message]) == [{"role": "user", "content": "hello"}]
