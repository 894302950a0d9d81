"""A loopback HTTP server that speaks the Anthropic Messages API, for integration tests.

Why a real socket rather than a mock transport: the anthropic SDK sends through httpx2 (a fork that respx
cannot intercept), and only a server on the wire exercises everything the SDK really does: auth headers,
retries honouring ``retry-after-ms``, SSE parsing, keep-alive and concurrent connections. The same server
therefore proves both the bare SDK and langchain-anthropic's ``ChatAnthropic``.

Usage::

    with MessagesServer(lambda body: Message([text("hi")])) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="test-key")
        ...
        assert not server.errors

Stdlib only, so it runs wherever the tests run.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit

from tests.support.prompt_cache import PromptCache

__all__ = [
    "Block",
    "Fault",
    "Message",
    "MessagesServer",
    "Raw",
    "RecordedRequest",
    "Reply",
    "Responder",
    "faults_then",
    "overlapping",
    "scripted",
    "text",
    "tool_use",
]

Block = dict[str, Any]
"""One content block exactly as the API serialises it (``{"type": "text", "text": ...}`` and so on)."""

MESSAGES_PATH = "/v1/messages"
REDACTED = "[redacted]"
# anthropic 2.x sends the API key as `Authorization: Bearer`; older SDKs and curl examples use `x-api-key`.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization", "cookie"})


def text(value: str) -> Block:
    """A text content block."""
    return {"type": "text", "text": value}


def tool_use(name: str, input: Mapping[str, Any], id: str | None = None) -> Block:
    """A tool_use content block; the id is unique unless given, because clients pair results by id."""
    return {
        "type": "tool_use",
        "id": id or f"toolu_01{uuid.uuid4().hex[:22]}",
        "name": name,
        "input": dict(input),
    }


@dataclass(frozen=True)
class Message:
    """A successful reply. ``delay`` sleeps in the handler thread only, so tests can make requests overlap."""

    content: Sequence[Block]
    stop_reason: str | None = None  # None: "tool_use" if any tool_use block, else "end_turn"
    usage: tuple[int, int] | None = None  # (input_tokens, output_tokens); None: derived from sizes
    delay: float = 0.0
    cache: tuple[int, int] = (0, 0)  # (cache_creation_input_tokens, cache_read_input_tokens)
    before_stop: Callable[[], None] | None = None
    """Streamed replies only: called after the content's deltas went out and before message_delta /
    message_stop, so a test can see what a client shows of a reply that has not ended yet."""


@dataclass(frozen=True)
class Fault:
    """An API error reply. Keep ``retry_after_ms`` small (e.g. 10): the SDK sleeps exactly that long."""

    status: int = 529
    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    retry_after_ms: int | None = None


@dataclass(frozen=True)
class Raw:
    """A reply of arbitrary bytes (a broken proxy's 200 with an HTML page, say)."""

    body: bytes
    status: int = 200
    content_type: str = "text/html"


Reply = Message | Fault | Raw
Responder = Callable[[dict[str, Any]], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. Secret header values are redacted, never stored.

    ``started`` is when the request headers had arrived; ``ended`` is when the response was complete and
    handed to the socket. Both are ``time.monotonic()`` values. The record is stored *before* the bytes
    go out, so a client holding its reply always finds the record (no race in assertions).
    """

    path: str
    body: dict[str, Any]  # {} when the body was not a JSON object
    headers: tuple[tuple[str, str], ...]  # lower-cased names, secret values replaced by REDACTED
    started: float
    ended: float
    status: int
    stream: bool

    def header(self, name: str) -> str | None:
        """The (possibly redacted) value of a header, by case-insensitive name."""
        return next((value for key, value in self.headers if key == name.lower()), None)


def overlapping(a: RecordedRequest, b: RecordedRequest) -> bool:
    """Whether two requests were in flight at the same moment (their time intervals intersect)."""
    return a.started < b.ended and b.started < a.ended


def faults_then(responder: Responder, faults: Sequence[Fault]) -> Responder:
    """Answer the first ``len(faults)`` calls with the faults in order, then delegate to ``responder``."""
    pending = iter(list(faults))
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> Reply:
        with lock:
            fault = next(pending, None)
        return fault if fault is not None else responder(body)

    return respond


def scripted(replies: Sequence[Reply]) -> Responder:
    """Answer calls with ``replies`` in order; one call too many raises, which the server turns into a 500."""
    pending = iter(list(replies))
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> Reply:
        with lock:
            reply = next(pending, None)
        if reply is None:
            raise AssertionError(f"scripted responder exhausted after {len(replies)} replies")
        return reply

    return respond


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    pause: tuple[int, Callable[[], None]] | None = None
    """(offset, call): send body[:offset], call, then the rest."""


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error(status: int, error_type: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    """An error in the API's envelope, which the SDK maps to its exception classes by status."""
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return _Response(status, _json_bytes(body), headers=headers)


def _fault_response(fault: Fault) -> _Response:
    """Faults are plain JSON even for stream requests: the real API fails before the stream starts."""
    retry = () if fault.retry_after_ms is None else (("retry-after-ms", str(fault.retry_after_ms)),)
    return _error(fault.status, fault.error_type, fault.message, retry)


def _usage(message: Message, raw_size: int) -> dict[str, int]:
    """Token counts: the reply's own, or sizes/4 so token accounting downstream is never zero."""
    if message.usage is not None:
        inputs, outputs = message.usage
    else:
        inputs = max(1, raw_size // 4)
        outputs = max(1, len(_json_bytes(list(message.content))) // 4)
    return {
        "input_tokens": inputs,
        "output_tokens": outputs,
        "cache_creation_input_tokens": message.cache[0],
        "cache_read_input_tokens": message.cache[1],
    }


def _message_json(message: Message, request: Mapping[str, Any], raw_size: int) -> dict[str, Any]:
    """The full non-streaming response object."""
    content = [dict(block) for block in message.content]
    has_tool_use = any(block.get("type") == "tool_use" for block in content)
    return {
        "id": f"msg_01{uuid.uuid4().hex[:22]}",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "claude-test"),
        "content": content,
        "stop_reason": message.stop_reason or ("tool_use" if has_tool_use else "end_turn"),
        "stop_sequence": None,
        "usage": _usage(message, raw_size),
    }


def _halves(value: str) -> list[str]:
    """Split a string in two non-empty pieces when possible, so clients must reassemble deltas."""
    middle = len(value) // 2
    return [piece for piece in (value[:middle], value[middle:]) if piece]


def _block_events(index: int, block: Block) -> Iterator[dict[str, Any]]:
    """content_block_start / deltas / stop for one block, as the API streams it."""
    kind = block.get("type")
    if kind == "text":
        yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
        for piece in _halves(block["text"]):
            delta = {"type": "text_delta", "text": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    elif kind == "tool_use":
        yield {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}
        for piece in _halves(json.dumps(block["input"])):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    else:  # other block kinds arrive whole in their start event
        yield {"type": "content_block_start", "index": index, "content_block": block}
    yield {"type": "content_block_stop", "index": index}


def _stream_events(full: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The event sequence the SDK's stream accumulator expects, ending in message_stop."""
    usage = full["usage"]
    yield {
        "type": "message_start",
        "message": {**full, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 0}},
    }
    yield {"type": "ping"}
    for index, block in enumerate(full["content"]):
        yield from _block_events(index, block)
    delta = {"stop_reason": full["stop_reason"], "stop_sequence": None}
    yield {"type": "message_delta", "delta": delta, "usage": usage}  # cumulative totals, like the API
    yield {"type": "message_stop"}


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _render(message: Message, request: Mapping[str, Any], raw_size: int) -> _Response:
    full = _message_json(message, request, raw_size)
    if request.get("stream") is True:
        headers = (("cache-control", "no-cache"),)
        events = [_sse(event) for event in _stream_events(full)]
        body = b"".join(events)
        pause = None
        if message.before_stop is not None:  # the last two events are message_delta and message_stop
            pause = (len(body) - len(events[-1]) - len(events[-2]), message.before_stop)
        return _Response(200, body, "text/event-stream; charset=utf-8", headers, pause)
    return _Response(200, _json_bytes(full))


def _parse_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return cast(dict[str, Any], value) if isinstance(value, dict) else None


class _Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive, so every response carries Content-Length."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else ~40 ms per keep-alive request (delayed ACK vs Nagle)
    server_version = "messages-server/1"
    sys_version = ""

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests assert on ``server.requests``, not on stderr noise."""

    def _owner(self) -> MessagesServer:
        return cast(_HTTPServer, self.server).owner

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = _parse_object(raw)
        response = self._answer(method, body, raw)
        self._owner()._record(
            RecordedRequest(
                path=self.path,
                body=body or {},
                headers=self._redacted_headers(),
                started=started,
                ended=time.monotonic(),
                status=response.status,
                stream=bool(body and body.get("stream") is True),
            )
        )
        self._send(response)

    def _answer(self, method: str, body: dict[str, Any] | None, raw: bytes) -> _Response:
        if method != "POST" or urlsplit(self.path).path != MESSAGES_PATH:
            return _error(404, "not_found_error", f"no route for {method} {self.path}")
        if body is None:
            return _error(400, "invalid_request_error", "request body is not a JSON object")
        owner = self._owner()
        try:
            reply = owner.responder(body)
            if isinstance(reply, Fault):
                return _fault_response(reply)
            if isinstance(reply, Raw):
                return _Response(reply.status, reply.body, reply.content_type)
            time.sleep(reply.delay)
            if reply.usage is None and reply.cache == (0, 0):  # what the real API's cache would report
                with owner._lock:
                    cached = owner.cache.use(body)
                outputs = max(1, len(_json_bytes(list(reply.content))) // 4)
                reply = replace(reply, usage=(cached.input_tokens, outputs),
                                cache=(cached.cache_creation_input_tokens, cached.cache_read_input_tokens))  # fmt: skip
            return _render(reply, body, len(raw))
        except Exception as exc:  # noqa: BLE001 - kept in server.errors and answered loudly
            owner._record_error(exc)
            # x-should-retry: false stops the SDK from repeating a test bug max_retries times.
            return _error(500, "api_error", f"responder raised {exc!r}", (("x-should-retry", "false"),))

    def _redacted_headers(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (name.lower(), REDACTED if name.lower() in SECRET_HEADERS else value)
            for name, value in self.headers.items()
        )

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("request-id", f"req_01{uuid.uuid4().hex[:22]}")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        offset, call = response.pause or (0, None)
        self.wfile.write(response.body[:offset])
        self.wfile.flush()
        if call is not None:
            call()
        self.wfile.write(response.body[offset:])
        self.wfile.flush()


class _HTTPServer(ThreadingHTTPServer):
    """Tracks live connections so close() can end idle keep-alive ones instead of leaving them hanging."""

    daemon_threads = True
    request_queue_size = 128  # the default 5 stalls bursts of concurrent connections for seconds

    def __init__(self, owner: MessagesServer) -> None:
        self.owner = owner
        self.closing = False
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._live_lock:
            self._live.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._live_lock:
            self._live.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Shut live sockets down so their handler threads see EOF and exit."""
        with self._live_lock:
            live = list(self._live)
        for connection in live:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record handler crashes; a client that hung up, or our own close(), is not an error."""
        error = sys.exc_info()[1]
        if self.closing or isinstance(error, ConnectionError) or error is None:
            return
        self.owner._record_error(error)


class MessagesServer:
    """The server, listening on 127.0.0.1 at a free port from construction until close()."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.cache = PromptCache()
        """Anthropic's prompt cache as the API plays it (tests/support/prompt_cache.py): replies whose
        usage the responder leaves open report what it reads and writes."""
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # close() waits at most one poll
            name=f"messages-server-{self._httpd.server_port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL, as ``base_url=`` or ANTHROPIC_BASE_URL take it."""
        return f"http://127.0.0.1:{self._httpd.server_port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, in the order their responses were completed."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by the responder or the handler; tests should assert this is empty."""
        with self._lock:
            return list(self._errors)

    def close(self) -> None:
        """Stop serving and drop open connections; idempotent."""
        if self._httpd.closing:
            return
        self._httpd.closing = True
        self._httpd.shutdown()
        self._httpd.drop_connections()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_error(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)
