"""The local turn policy through the llama boundary: what is offered, which moves are overruled, and the
decisions the reply carries."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from structlog.testing import capture_logs

from orchestrator.local.policy import POLICY_KEY, open_actions, write_first
from orchestrator.local.steps import (
    ANSWER,
)
from tests.support.scripted_llama import (
    READ,
    READ_THEN_WRITE,
    TASK,
    WRITE,
    WROTE,
    ScriptedLlama,
    call,
    chat_model,
)


async def test_repeating_the_call_that_just_succeeded_becomes_an_answer() -> None:
    done = [
        *TASK,
        AIMessage("", tool_calls=[call("Write", {"file_path": "hello.txt", "content": "hi"}, "t1")]),
        ToolMessage("Wrote 2 bytes", tool_call_id="t1", name="Write"),
    ]
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt"}', "hi", "Done.")
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(done)
    assert llama.steps == ["choose", "tool", "body", "answer"]
    assert reply.content == "Done."
    assert reply.tool_calls == []
    assert "local_repeat_call_answered" in [entry["event"] for entry in logs]
    assert "Base it on the tool results above" in llama.requests[-1]["messages"][-1]["content"]
    assert reply.response_metadata[POLICY_KEY] == [
        {"rule": "repeat_answered", "detail": "Write repeated the call that just worked"}
    ]


async def test_writing_the_file_it_just_wrote_again_with_a_new_body_becomes_an_answer() -> None:
    done = [
        *TASK,
        AIMessage("", tool_calls=[call("Write", {"file_path": "hello.txt", "content": "hi"}, "t1")]),
        ToolMessage("Created file hello.txt (1 lines).", tool_call_id="t1", name="Write"),
    ]
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt"}', "hello again", "Done.")
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(done)
    assert reply.tool_calls == [] and reply.content == "Done."
    assert reply.response_metadata[POLICY_KEY] == [
        {"rule": "repeat_answered", "detail": "Write repeated the call that just worked"}
    ]


async def test_writing_another_file_after_a_write_is_a_new_call() -> None:
    done = [
        *TASK,
        AIMessage("", tool_calls=[call("Write", {"file_path": "hello.txt", "content": "hi"}, "t1")]),
        ToolMessage("Created file hello.txt (1 lines).", tool_call_id="t1", name="Write"),
    ]
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "notes.txt"}', "notes")
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(done)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("Write", {"file_path": "notes.txt", "content": "notes"})
    ]


async def test_repeating_a_call_that_failed_asks_again_without_that_tool() -> None:
    failed = [
        HumanMessage("Greet the world in the notes."),
        AIMessage("", tool_calls=[call("Read", {"file_path": "hello.txt"}, "t1")]),
        ToolMessage("Error: no such file", tool_call_id="t1", name="Read", status="error"),
    ]
    llama = ScriptedLlama(
        '{"action": "Read"}', '{"file_path": "hello.txt"}', '{"action": "Write"}', '{"file_path": "hello.txt"}', "hi"
    )
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(failed)
    assert llama.steps == ["choose", "tool", "choose", "tool", "body"]
    assert llama.requests[2]["response_format"]["schema"]["properties"]["action"]["enum"] == ["Write", ANSWER]
    assert [c["name"] for c in reply.tool_calls] == ["Write"]
    assert "local_call_not_repeated" in [entry["event"] for entry in logs]
    assert [d["rule"] for d in reply.response_metadata[POLICY_KEY]] == ["repeat_refused"]


async def test_a_request_for_files_is_not_answered_before_a_tool_call_worked() -> None:
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "hello.txt"}', "hello world")
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(READ_THEN_WRITE)
    assert reply.response_metadata[POLICY_KEY] == [
        {"rule": "hold_answer", "detail": "no answer yet: the work is not done"}
    ]
    assert llama.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"] == ["Read", "Write"]
    question = ScriptedLlama('{"action": "answer"}', "Paris.")
    await chat_model(question).bind_tools([READ, WRITE]).ainvoke([HumanMessage("Capital of France?")])
    assert ANSWER in question.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"]


async def test_review_feedback_is_not_answered_before_a_tool_call_worked_since() -> None:
    worked = [
        HumanMessage("Summarise the notes."),
        AIMessage("", tool_calls=[call("Write", {"file_path": "sum.md", "content": "x"}, "t1")]),
        ToolMessage("Created file sum.md (1 lines).", tool_call_id="t1", name="Write"),
        AIMessage("Wrote sum.md."),
    ]
    revise = [*worked, HumanMessage("Review of round 1: revise. sum.md is empty of facts.\nFix this with your tools.")]
    llama = ScriptedLlama('{"action": "Read"}', '{"file_path": "sum.md"}')
    await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(revise)
    assert llama.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"] == ["Read", "Write"]
    fixed = [
        *revise,
        AIMessage("", tool_calls=[call("Write", {"file_path": "sum.md", "content": "facts"}, "t2")]),
        ToolMessage("Updated file sum.md.", tool_call_id="t2", name="Write"),
    ]
    done = ScriptedLlama('{"action": "answer"}', "Fixed sum.md.")
    await chat_model(done).bind_tools([READ, WRITE]).ainvoke(fixed)
    assert ANSWER in done.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"]


async def test_feedback_on_a_file_task_is_not_answered_before_a_write_since() -> None:
    history = [
        HumanMessage("Create sum.md with the summary."),
        AIMessage("", tool_calls=[call("Write", {"file_path": "sum.md", "content": "x"}, "t1")]),
        ToolMessage("Created file sum.md (1 lines).", tool_call_id="t1", name="Write"),
        AIMessage("Wrote sum.md."),
        HumanMessage("Review of round 1: revise. sum.md has no facts.\nFix this with your tools."),
        AIMessage("", tool_calls=[call("Read", {"file_path": "sum.md"}, "t2")]),
        ToolMessage("1\tx", tool_call_id="t2", name="Read"),
    ]
    llama = ScriptedLlama('{"action": "Read"}', '{"file_path": "sum.md"}', '{"file_path": "sum.md"}', "facts")
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(history)
    assert llama.steps == ["choose", "tool", "tool", "body"]  # Write is the one action left: no second choice
    assert llama.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"] == ["Read", "Write"]
    assert [(c["name"], c["args"]["content"]) for c in reply.tool_calls] == [("Write", "facts")]
    assert [e["failed"] for e in logs if e["event"] == "local_call_not_repeated"] == [False]


def test_a_tool_that_failed_twice_this_round_is_not_offered_again() -> None:
    def edit(n: int) -> list[BaseMessage]:
        args = {"file_path": "a.md", "old_string": f"x{n}", "new_string": "y"}
        return [
            AIMessage("", tool_calls=[call("Edit", args, f"e{n}")]),
            ToolMessage("Error: old_string not found", tool_call_id=f"e{n}", name="Edit", status="error"),
        ]

    request = [HumanMessage("Improve the notes.")]
    assert open_actions(["Read", "Edit", "Write", ANSWER], [*request, *edit(1)]) == ["Read", "Edit", "Write", ANSWER]
    assert open_actions(["Read", "Edit", "Write", ANSWER], [*request, *edit(1), *edit(2)]) == ["Read", "Write", ANSWER]
    feedback = HumanMessage("Review of round 1: revise. Add risks.")
    assert "Edit" in open_actions(["Read", "Edit", "Write"], [*request, *edit(1), *edit(2), feedback])
    assert open_actions(["Edit"], [*request, *edit(1), *edit(2)]) == ["Edit"]  # never empty


async def test_a_body_that_repeats_a_tool_result_is_asked_for_again() -> None:
    llama = ScriptedLlama(
        '{"action": "Write"}', '{"file_path": "sum.md"}', "Created file sum.md (1 lines).", "# Summary\n- facts"
    )
    with capture_logs() as logs:
        reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(WROTE)
    assert llama.steps == ["choose", "tool", "body", "body"]
    assert "not a copy of a tool result" in llama.requests[3]["messages"][-1]["content"]
    assert [c["args"]["content"] for c in reply.tool_calls] == ["# Summary\n- facts"]
    assert "local_body_repeated_a_result" in [e["event"] for e in logs]


async def test_a_body_that_repeats_a_result_twice_is_not_written() -> None:
    echo = "Created file sum.md (2 lines)."  # the shape of the result, numbers aside
    llama = ScriptedLlama('{"action": "Write"}', '{"file_path": "sum.md"}', echo, echo, '{"file_path": "sum.md"}')
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(WROTE)
    assert llama.steps == ["choose", "tool", "body", "body", "tool"]  # Read is all that is left: no choice
    assert [c["name"] for c in reply.tool_calls] == ["Read"]
    only_write = ScriptedLlama('{"file_path": "sum.md"}', echo, echo, "I could not improve sum.md.")
    reply = await chat_model(only_write).bind_tools([WRITE]).ainvoke(WROTE)
    assert only_write.steps == ["tool", "body", "body", "answer"]
    assert (reply.tool_calls, reply.content) == ([], "I could not improve sum.md.")


async def test_a_request_for_a_new_file_starts_with_writing_that_file() -> None:
    llama = ScriptedLlama('{"file_path": "hello.txt"}', "hello world")
    reply = await chat_model(llama).bind_tools([READ, WRITE]).ainvoke(TASK)
    assert llama.steps == ["tool", "body"]
    assert llama.requests[0]["response_format"]["schema"]["properties"]["file_path"]["enum"] == ["hello.txt"]
    assert reply.tool_calls[0]["args"] == {"file_path": "hello.txt", "content": "hello world"}
    assert reply.response_metadata[POLICY_KEY][-1] == {
        "rule": "write_requested",
        "detail": "the request asks for hello.txt: Write it first",
    }


def test_write_first_only_opens_a_request_for_new_files_that_names_nothing_else() -> None:
    wrote = [
        *TASK,
        AIMessage("", tool_calls=[call("Write", {"file_path": "hello.txt", "content": "x"}, "t1")]),
        ToolMessage("Created file hello.txt (1 lines).", tool_call_id="t1", name="Write"),
    ]
    assert write_first(TASK, ["Read", "Write", ANSWER]) is not None
    assert write_first(TASK, ["Read", ANSWER]) is None  # Write not offered
    assert write_first(wrote, ["Read", "Write", ANSWER]) is None  # a call was made
    assert write_first(READ_THEN_WRITE, ["Read", "Write", ANSWER]) is None  # an input file to read first
    assert write_first([HumanMessage("Explain hello.txt")], ["Read", "Write", ANSWER]) is None  # nothing to make
