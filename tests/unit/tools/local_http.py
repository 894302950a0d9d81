"""A tiny HTTP server on 127.0.0.1 for WebFetch tests: canned responses, and a record of Host headers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["HttpServer"]


@dataclass
class HttpServer:
    """A canned-response HTTP/1.1 server on 127.0.0.1 (the only network the tests use)."""

    port: int
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    """The Host header of every request served, in order."""

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        path = request[0].split(" ")[1]
        host = next((h.split(":", 1)[1].strip() for h in request[1:] if h.lower().startswith("host:")), "")
        self.hosts.append(host)
        status, headers, body = self.routes.get(path, (404, {}, b"not here"))
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
