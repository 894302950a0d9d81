"""A loopback HTTP server that speaks OpenAI's Chat Completions API, for integration tests.

What Ollama, vLLM, llama.cpp's server and LM Studio offer: `POST /v1/chat/completions` with tools,
tool calls and SSE streaming. `ToolChoice` says how the server treats a forced tool choice, the way real
servers differ: honour it, ignore it (answer as if "auto"), or reject a named choice with 400 (while
accepting "required").

Usage::

    with ChatServer(responder, tool_choice="ignore") as server:
        ChatOpenAI(base_url=server.url + "/v1", api_key="x", model="m")
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

__all__ = ["ChatReply", "ChatServer", "ToolChoice", "call"]

ToolChoice = Literal["honour", "ignore", "reject"]


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One tool call as the API serialises it."""
    return {"id": f"call_{uuid.uuid4().hex[:20]}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip


@dataclass(frozen=True)
class ChatReply:
    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


Responder = Callable[[dict[str, Any]], ChatReply]
"""The request body (after the server's tool-choice behaviour) -> the assistant's reply."""


def _completion(reply: ChatReply, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    prompt = len(json.dumps(body["messages"])) // 4
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
        "model": f"served-{body['model']}",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 20, "total_tokens": prompt + 20},
    }  # fmt: skip


def _chunks(full: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The completion as stream chunks: role, content, each tool call in two argument halves, the end."""
    base = {k: full[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    message = full["choices"][0]["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    if message["content"]:
        yield chunk({"content": message["content"]})
    for index, tool in enumerate(message.get("tool_calls", [])):
        args = tool["function"]["arguments"]
        head = {"index": index, "id": tool["id"], "type": "function", "function": {"name": tool["function"]["name"]}}
        yield chunk({"tool_calls": [head | {"function": head["function"] | {"arguments": args[: len(args) // 2]}}]})
        yield chunk({"tool_calls": [{"index": index, "function": {"arguments": args[len(args) // 2 :]}}]})
    yield chunk({}, full["choices"][0]["finish_reason"])
    yield base | {"choices": [], "usage": full["usage"]}


class ChatServer:
    """Serves `responder` on 127.0.0.1; `requests` holds every request body, `errors` what went wrong."""

    def __init__(self, responder: Responder, *, tool_choice: ToolChoice = "honour") -> None:
        self.responder, self.tool_choice = responder, tool_choice
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._http.shutdown()
        self._http.server_close()

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and self.tool_choice == "reject":
            return 400, {"error": {"message": "tool_choice with a named function is not supported", "type":
                                   "invalid_request_error", "param": "tool_choice", "code": None}}  # fmt: skip
        if self.tool_choice == "ignore":
            body = {**body, "tool_choice": "auto"}
        return 200, _completion(self.responder(body), body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner: ChatServer = self.server.owner  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path != "/v1/chat/completions":
            owner.errors.append(f"unexpected path {self.path}")
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        try:
            body = json.loads(raw)
            status, reply = owner.answer(body)
        except Exception as exc:  # noqa: BLE001 - kept in server.errors and answered loudly
            owner.errors.append(f"{type(exc).__name__}: {exc}")
            return self._send(500, {"error": {"message": str(exc)}})
        if status != 200 or not body.get("stream"):
            return self._send(status, reply)
        data = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in _chunks(reply)) + b"data: [DONE]\n\n"
        self._send_bytes(200, data, "text/event-stream")

    def _send(self, status: int, body: dict[str, Any]) -> None:
        self._send_bytes(status, json.dumps(body).encode(), "application/json")

    def _send_bytes(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
