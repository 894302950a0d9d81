"""WebFetch against a 127.0.0.1 server the test starts, the address guard, and WebSearch's refusal."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from orchestrator.errors import ToolError
from orchestrator.tools import web_fetch
from orchestrator.tools.base import Resolver, ToolContext
from orchestrator.tools.netguard import address_problem, pin_host
from orchestrator.tools.web_fetch import WebFetchArgs, pinned_request, run_web_fetch
from orchestrator.tools.web_search import WebSearchArgs, anthropic_server_tool, run_web_search

from .local_http import HttpServer

HTML = (
    b"<html><head><style>.x{color:red}</style><script>var leaked = 1;</script></head>"
    b"<body><h1>Title</h1><p>Hello <b>world</b></p><a href='/next'>next page</a></body></html>"
)


def fake_resolver(table: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str) -> Sequence[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


@pytest.fixture
def local_ctx(ws: Path) -> ToolContext:
    """A context allowed to reach 127.0.0.1 (the test server), as a user could configure it."""
    return ToolContext(workspace=ws, allow_private_hosts=frozenset({"127.0.0.1"}))


async def fetch(ctx: ToolContext, url: str, prompt: str = "What does it say?") -> str:
    return await run_web_fetch(WebFetchArgs(url=url, prompt=prompt), ctx)


async def test_html_becomes_markdown_without_scripts(http_server: HttpServer, local_ctx: ToolContext) -> None:
    http_server.routes["/page"] = (200, {"Content-Type": "text/html; charset=utf-8"}, HTML)
    out = await fetch(local_ctx, http_server.url("/page"))
    assert out == (
        f"No summarizer is configured, so here is {http_server.url('/page')} as Markdown (the prompt was not "
        "applied):\n\n# Title\n\nHello **world**\n\n[next page](/next)"
    )


async def test_summarizer_answers_the_prompt(http_server: HttpServer, ws: Path) -> None:
    seen: list[tuple[str, str]] = []

    async def summarize(markdown: str, prompt: str) -> str:
        seen.append((markdown, prompt))
        return "It greets the world."

    http_server.routes["/page"] = (200, {"Content-Type": "text/html"}, HTML)
    ctx = ToolContext(workspace=ws, summarize=summarize, allow_private_hosts=frozenset({"127.0.0.1"}))
    assert await fetch(ctx, http_server.url("/page"), "Who is greeted?") == "It greets the world."
    assert seen == [("# Title\n\nHello **world**\n\n[next page](/next)", "Who is greeted?")]


async def test_text_passes_through_and_binary_is_refused(http_server: HttpServer, local_ctx: ToolContext) -> None:
    http_server.routes["/t"] = (200, {"Content-Type": "text/plain"}, b"plain words\n")
    http_server.routes["/img"] = (200, {"Content-Type": "image/png"}, b"\x89PNG")
    assert (await fetch(local_ctx, http_server.url("/t"))).endswith(":\n\nplain words")
    with pytest.raises(ToolError) as err:
        await fetch(local_ctx, http_server.url("/img"))
    assert str(err.value) == f"{http_server.url('/img')} returned image/png; WebFetch reads only HTML and text."


async def test_http_errors_are_tool_errors(http_server: HttpServer, local_ctx: ToolContext) -> None:
    with pytest.raises(ToolError) as err:
        await fetch(local_ctx, http_server.url("/missing"))
    assert str(err.value) == f"HTTP 404 X fetching {http_server.url('/missing')}."


async def test_redirects_are_followed_by_hand_and_reported(http_server: HttpServer, local_ctx: ToolContext) -> None:
    http_server.routes["/old"] = (301, {"Location": "/new"}, b"")
    http_server.routes["/new"] = (200, {"Content-Type": "text/plain"}, b"moved here")
    out = await fetch(local_ctx, http_server.url("/old"))
    assert out.startswith(f"(Fetched {http_server.url('/new')} after redirects.)\n\n")
    assert out.endswith("moved here")


async def test_redirect_loops_are_bounded(http_server: HttpServer, local_ctx: ToolContext) -> None:
    http_server.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(ToolError, match=r"^Too many redirects \(more than 5\)\.$"):
        await fetch(local_ctx, http_server.url("/loop"))
    assert len(http_server.hosts) == web_fetch.MAX_REDIRECTS + 1


async def test_body_is_capped(http_server: HttpServer, local_ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_fetch, "MAX_BODY_BYTES", 10)
    http_server.routes["/big"] = (200, {"Content-Type": "text/plain"}, b"0123456789abcdef")
    assert (await fetch(local_ctx, http_server.url("/big"))).endswith("0123456789\n\n(The page was cut at 10 bytes.)")


async def test_connection_goes_to_the_checked_address_with_the_real_host_header(
    http_server: HttpServer, ws: Path
) -> None:
    """The resolver is asked once per hop and the socket goes to the address it returned: a second DNS
    answer (rebinding) never gets a say. The server still sees the name in Host."""
    http_server.routes["/x"] = (200, {"Content-Type": "text/plain"}, b"ok")
    ctx = ToolContext(
        workspace=ws,
        resolve_host=fake_resolver({"docs.example.test": ["127.0.0.1"]}),
        allow_private_hosts=frozenset({"docs.example.test"}),
    )
    assert (await fetch(ctx, http_server.url("/x", host="docs.example.test"))).endswith("\n\nok")
    assert http_server.hosts == [f"docs.example.test:{http_server.port}"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://example.com/x",
            "Invalid URL 'ftp://example.com/x': WebFetch needs an absolute http:// or https:// URL.",
        ),
        (
            "example.com/page",
            "Invalid URL 'example.com/page': WebFetch needs an absolute http:// or https:// URL.",
        ),
    ],
)
async def test_bad_urls(ctx: ToolContext, url: str, message: str) -> None:
    with pytest.raises(ToolError) as err:
        await fetch(ctx, url)
    assert str(err.value) == message


async def test_unresolvable_host(ws: Path) -> None:
    ctx = ToolContext(workspace=ws, resolve_host=fake_resolver({}))
    with pytest.raises(ToolError, match=r"^Could not resolve host 'nowhere\.test': unknown host nowhere\.test$"):
        await fetch(ctx, "https://nowhere.test/")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12::1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.251", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("240.0.0.1", "a private address"),
        ("100.64.0.1", "an address that is not publicly routable"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("64:ff9b::a00:1", "a private address"),
        ("2002:7f00:1::", "a loopback address"),
    ],
)
def test_address_classification(address: str, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


async def test_every_resolved_address_must_be_public() -> None:
    resolver = fake_resolver({"mixed.test": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(ToolError) as err:
        await pin_host("mixed.test", resolver, frozenset())
    assert str(err.value) == (
        "Refusing to fetch from mixed.test: it resolves to 10.0.0.7, a private address. "
        "WebFetch only reaches "
        "public hosts (a user can allow a host in the configuration)."
    )
    pinned = await pin_host("MIXED.test", fake_resolver({"MIXED.test": ["10.0.0.7"]}), frozenset({"mixed.TEST"}))
    assert pinned.address == "10.0.0.7"


async def test_web_search_explains_it_needs_anthropic(ctx: ToolContext) -> None:
    with pytest.raises(ToolError) as err:
        await run_web_search(WebSearchArgs(query="latest pytorch release"), ctx)
    assert str(err.value) == (
        "WebSearch is not available with provider 'local': web search runs on Anthropic's servers "
        "and only the 'anthropic' provider offers it. Use WebFetch on a URL you already know, "
        "or continue without searching."
    )


def test_anthropic_server_tool_definition() -> None:
    assert anthropic_server_tool(allowed_domains=["arxiv.org"]) == {
        "type": "web_search_20250305",
        "name": "web_search",
        "max_uses": 5,
        "allowed_domains": ["arxiv.org"],
    }


async def test_https_request_is_pinned_but_keeps_host_and_sni() -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        request = pinned_request(client, httpx.URL("https://docs.example.com:8443/a?b=1"), "2001:db8::1")
    assert str(request.url) == "https://[2001:db8::1]:8443/a?b=1"
    assert request.headers["Host"] == "docs.example.com:8443"
    assert request.extensions["sni_hostname"] == "docs.example.com"
