"""The loopback Messages server, driven through the real anthropic SDK and langchain-anthropic.

These tests are the evidence that the Claude path works on the wire (auth, JSON and SSE parsing, retries,
concurrency) without the internet; other integration tests can then trust the server as a stand-in.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import Message as ApiMessage
from anthropic.types import MessageParam, TextBlock
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import SecretStr

from tests.support.messages_server import (
    REDACTED,
    Fault,
    Message,
    MessagesServer,
    Reply,
    Responder,
    faults_then,
    overlapping,
    scripted,
    text,
    tool_use,
)

MODEL = "claude-test-model"
API_KEY = "sk-ant-test-SECRET-4c1d"  # distinctive, so a leak into any record is easy to spot
WEATHER_ARGS = {"city": "Paris", "days": 3}
ServerFactory = Callable[[Responder], MessagesServer]
USER: list[MessageParam] = [{"role": "user", "content": "hello"}]


@tool
def get_weather(city: str, days: int) -> str:
    """Forecast for a city."""
    return f"{city}: sunny for {days} days"


def hello(_body: dict[str, Any]) -> Reply:
    return Message([text("Hello, world!")], usage=(11, 7))


def weather_call(_body: dict[str, Any]) -> Reply:
    return Message([text("Checking."), tool_use("get_weather", WEATHER_ARGS, id="toolu_01fixed")], usage=(20, 9))


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    """Servers that close at teardown and must have seen no responder or handler errors."""
    servers: list[MessagesServer] = []

    def make(responder: Responder) -> MessagesServer:
        servers.append(MessagesServer(responder))
        return servers[-1]

    yield make
    for server in servers:
        server.close()
        assert not server.errors


def sdk(server: MessagesServer, max_retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=API_KEY, max_retries=max_retries)


def chat(server: MessagesServer, max_retries: int = 0, **kwargs: Any) -> ChatAnthropic:
    key = SecretStr(API_KEY)
    return ChatAnthropic(model_name=MODEL, base_url=server.url, api_key=key, max_retries=max_retries, **kwargs)


def first_text(reply: ApiMessage) -> str:
    block = reply.content[0]
    assert isinstance(block, TextBlock)
    return block.text


def raw_post(server: MessagesServer, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """A request without the SDK, to reach paths and bodies the SDK never sends."""
    request = urllib.request.Request(server.url + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


# --- the bare SDK ------------------------------------------------------------------------------------


def test_sdk_text_reply_has_the_api_shape(server_factory: ServerFactory) -> None:
    server = server_factory(hello)
    with sdk(server) as client:
        reply = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "Hello, world!"
    assert (reply.model, reply.role, reply.stop_reason) == (MODEL, "assistant", "end_turn")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (11, 7)
    [seen] = server.requests
    assert (seen.path, seen.status, seen.stream) == ("/v1/messages", 200, False)
    assert seen.body["messages"] == USER


def test_default_usage_is_derived_and_nonzero(server_factory: ServerFactory) -> None:
    server = server_factory(lambda _body: Message([text("x" * 100)]))
    with sdk(server) as client:
        reply = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert reply.usage.input_tokens > 0
    assert reply.usage.output_tokens >= 25


def test_sdk_tool_use_reply(server_factory: ServerFactory) -> None:
    server = server_factory(weather_call)
    with sdk(server) as client:
        reply = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert reply.stop_reason == "tool_use"
    call = reply.content[1]
    assert call.type == "tool_use"
    assert (call.id, call.name, call.input) == ("toolu_01fixed", "get_weather", WEATHER_ARGS)


def test_tool_use_ids_are_unique_by_default() -> None:
    ids = {tool_use("t", {})["id"] for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("toolu_01") for i in ids)


def test_sdk_stream_reassembles_the_same_message(server_factory: ServerFactory) -> None:
    server = server_factory(weather_call)
    with sdk(server) as client:
        plain = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
        with client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream:
            streamed_text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert streamed_text == "Checking."
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in plain.content]
    assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == ("tool_use", 20, 9)
    assert [r.stream for r in server.requests] == [False, True]
    assert server.requests[1].header("accept") is not None


# --- faults and retries -------------------------------------------------------------------------------


def test_529_then_success_is_retried_by_the_sdk(server_factory: ServerFactory) -> None:
    server = server_factory(faults_then(hello, [Fault(529, retry_after_ms=10)]))
    with sdk(server, max_retries=2) as client:
        reply = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert reply.content[0].type == "text"
    assert [r.status for r in server.requests] == [529, 200]
    first, second = server.requests
    assert first.ended <= second.started


def test_streaming_fault_is_plain_json_and_retried(server_factory: ServerFactory) -> None:
    server = server_factory(faults_then(hello, [Fault(529, retry_after_ms=10)]))
    with (
        sdk(server, max_retries=1) as client,
        client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream,
    ):
        assert stream.get_final_text() == "Hello, world!"
    assert [(r.status, r.stream) for r in server.requests] == [(529, True), (200, True)]


def test_fault_without_retries_raises_the_typed_error(server_factory: ServerFactory) -> None:
    server = server_factory(faults_then(hello, [Fault(529, message="busy")]))
    with sdk(server) as client, pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert caught.value.status_code == 529
    assert caught.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")


def test_rate_limit_fault_maps_to_rate_limit_error(server_factory: ServerFactory) -> None:
    server = server_factory(faults_then(hello, [Fault(429, "rate_limit_error", "slow down")]))
    with sdk(server) as client, pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=MODEL, max_tokens=64, messages=USER)


def test_chat_anthropic_retries_a_529(server_factory: ServerFactory) -> None:
    server = server_factory(faults_then(hello, [Fault(529, retry_after_ms=10)]))
    result = chat(server, max_retries=2).invoke("hello")
    assert result.text == "Hello, world!"
    assert [r.status for r in server.requests] == [529, 200]


# --- ChatAnthropic ------------------------------------------------------------------------------------


def test_chat_anthropic_text_reply(server_factory: ServerFactory) -> None:
    server = server_factory(hello)
    result = chat(server).invoke([HumanMessage("hello")])
    assert isinstance(result, AIMessage)
    assert result.text == "Hello, world!"
    assert result.usage_metadata is not None
    assert (result.usage_metadata["input_tokens"], result.usage_metadata["output_tokens"]) == (11, 7)
    assert server.requests[0].body["model"] == MODEL


def test_chat_anthropic_tool_calls(server_factory: ServerFactory) -> None:
    server = server_factory(weather_call)
    result = chat(server).bind_tools([get_weather]).invoke("weather in Paris?")
    assert isinstance(result, AIMessage)
    assert result.tool_calls == [
        {"name": "get_weather", "args": WEATHER_ARGS, "id": "toolu_01fixed", "type": "tool_call"}
    ]
    assert result.usage_metadata is not None
    assert result.usage_metadata["total_tokens"] == 29
    [sent_tool] = server.requests[0].body["tools"]
    assert sent_tool["name"] == "get_weather"
    assert set(sent_tool["input_schema"]["properties"]) == {"city", "days"}


def test_chat_anthropic_stream_reassembles_text_and_tool_input(server_factory: ServerFactory) -> None:
    server = server_factory(weather_call)
    stream = list(chat(server).bind_tools([get_weather]).stream("weather in Paris?"))
    chunks = [chunk for chunk in stream if isinstance(chunk, AIMessageChunk)]
    assert len(chunks) == len(stream) > 3  # really incremental, not one blob
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert isinstance(merged, AIMessageChunk)
    assert merged.text == "Checking."
    assert [(c["name"], c["args"], c["id"]) for c in merged.tool_calls] == [
        ("get_weather", WEATHER_ARGS, "toolu_01fixed")
    ]
    assert merged.usage_metadata is not None
    assert (merged.usage_metadata["input_tokens"], merged.usage_metadata["output_tokens"]) == (20, 9)
    assert server.requests[0].stream


def test_chat_anthropic_streaming_flag_invoke(server_factory: ServerFactory) -> None:
    server = server_factory(hello)
    result = chat(server, streaming=True).invoke("hello")
    assert result.text == "Hello, world!"
    assert server.requests[0].stream


def test_tool_loop_round_trip_sends_the_tool_result(server_factory: ServerFactory) -> None:
    server = server_factory(scripted([weather_call({}), Message([text("Sunny.")])]))
    model = chat(server).bind_tools([get_weather])
    history: list[Any] = [HumanMessage("weather in Paris?")]
    first = model.invoke(history)
    assert isinstance(first, AIMessage)
    [call] = first.tool_calls
    history += [first, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
    assert model.invoke(history).text == "Sunny."
    last_turn = server.requests[1].body["messages"][-1]
    assert last_turn["role"] == "user"
    assert last_turn["content"][0]["type"] == "tool_result"
    assert last_turn["content"][0]["tool_use_id"] == "toolu_01fixed"


# --- secrets ------------------------------------------------------------------------------------------


def test_api_key_is_never_recorded(server_factory: ServerFactory) -> None:
    server = server_factory(hello)
    with sdk(server) as client:
        client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    chat(server).invoke("hello")
    headers = {"x-api-key": API_KEY, "authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    raw_post(server, "/v1/messages", json.dumps({"model": MODEL, "messages": USER}).encode(), headers)
    assert len(server.requests) == 3
    assert API_KEY not in repr(server.requests)
    sdk_request, chat_request, raw_request = server.requests
    # anthropic 2.x carries the key in Authorization (Bearer), not x-api-key.
    assert sdk_request.header("authorization") == REDACTED
    assert chat_request.header("authorization") == REDACTED
    assert raw_request.header("x-api-key") == REDACTED


# --- concurrency ---------------------------------------------------------------------------------------


async def test_concurrent_async_requests_overlap(server_factory: ServerFactory) -> None:
    server = server_factory(lambda body: Message([text(body["messages"][0]["content"])], delay=0.2))
    async with anthropic.AsyncAnthropic(base_url=server.url, api_key=API_KEY, max_retries=0) as client:
        replies = await asyncio.gather(
            *(
                client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": word}])
                for word in ("one", "two")
            )
        )
    assert [first_text(r) for r in replies] == ["one", "two"]
    first, second = server.requests
    assert overlapping(first, second)


def test_sequential_requests_do_not_overlap(server_factory: ServerFactory) -> None:
    server = server_factory(lambda _body: Message([text("ok")], delay=0.05))
    with sdk(server) as client:
        for _ in range(2):
            client.messages.create(model=MODEL, max_tokens=8, messages=USER)
    first, second = server.requests
    assert not overlapping(first, second)
    assert first.started < first.ended <= second.started < second.ended


# --- protocol errors ------------------------------------------------------------------------------------


def test_unknown_path_is_404(server_factory: ServerFactory) -> None:
    server = server_factory(hello)
    status, body = raw_post(server, "/v1/nothing", b"{}", {"content-type": "application/json"})
    assert status == 404
    assert body["error"]["type"] == "not_found_error"


def test_malformed_json_is_400(server_factory: ServerFactory) -> None:
    server = server_factory(hello)
    status, body = raw_post(server, "/v1/messages", b"{not json", {"content-type": "application/json"})
    assert (status, body["type"], body["error"]["type"]) == (400, "error", "invalid_request_error")
    assert server.requests[0].body == {}


def test_raising_responder_is_a_loud_500_without_retries() -> None:
    def broken(_body: dict[str, Any]) -> Reply:
        raise ValueError("responder bug")

    with MessagesServer(broken) as server, sdk(server, max_retries=2) as client:
        with pytest.raises(anthropic.InternalServerError, match="responder bug"):
            client.messages.create(model=MODEL, max_tokens=8, messages=USER)
        assert [r.status for r in server.requests] == [500]  # x-should-retry: false stopped the SDK
        [error] = server.errors
        assert isinstance(error, ValueError)


def test_scripted_responder_fails_loudly_when_exhausted() -> None:
    with MessagesServer(scripted([Message([text("only")])])) as server, sdk(server) as client:
        client.messages.create(model=MODEL, max_tokens=8, messages=USER)
        with pytest.raises(anthropic.InternalServerError, match="exhausted"):
            client.messages.create(model=MODEL, max_tokens=8, messages=USER)
        assert len(server.errors) == 1


def test_close_stops_serving_even_with_an_open_keepalive_connection() -> None:
    server = MessagesServer(hello)
    with sdk(server) as client:
        client.messages.create(model=MODEL, max_tokens=8, messages=USER)
        server.close()  # the client still holds its pooled keep-alive connection here
        server.close()  # idempotent
        with pytest.raises(anthropic.APIConnectionError):
            client.messages.create(model=MODEL, max_tokens=8, messages=USER)
    assert not server.errors
