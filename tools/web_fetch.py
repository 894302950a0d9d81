"""WebFetch: fetch a public URL, turn HTML into Markdown, and answer a prompt about it.

Every hop (the first request and each redirect, followed by hand and at most MAX_REDIRECTS times) is
resolved and checked by `netguard`, and the connection goes to the address that was checked, so a
redirect or a DNS answer cannot steer the fetch to loopback, the LAN or a cloud metadata endpoint.
Size and time are bounded; the page goes through the cheap-model `ctx.summarize` when there is one so
the agent's context gets an answer, not a whole page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext, ToolSpec
from orchestrator.tools.netguard import pin_host, system_resolver

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_REDIRECTS",
    "MAX_RETURN_CHARS",
    "WEB_FETCH",
    "Page",
    "WebFetchArgs",
    "fetch_page",
    "pinned_request",
    "run_web_fetch",
    "to_markdown",
]

MAX_REDIRECTS = 5
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_SUMMARY_INPUT_CHARS = 100_000
MAX_RETURN_CHARS = 30_000
TIMEOUT_S = 30.0
"""Per connect / read."""
TOTAL_TIMEOUT_S = 60.0
"""For the whole fetch, redirects included."""
_USER_AGENT = "orchestrate-webfetch/0.1"
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-ndjson")

DESCRIPTION = """\
Fetches a public http(s) URL (HTML as Markdown) and answers the prompt about it; private and local \
addresses are refused, also through redirects. Read-only.
"""


class WebFetchArgs(BaseModel):
    """Arguments of WebFetch (Claude Code's names)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="http:// or https:// URL.")
    prompt: str = Field(description="What to find out from the page.")


@dataclass(frozen=True)
class Page:
    """A fetched response body, decoded, with where it finally came from."""

    url: str
    content_type: str
    text: str
    truncated: bool


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ToolError(f"Invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ToolError(f"Invalid URL {url!r}: WebFetch needs an absolute http:// or https:// URL.")
    return parsed


def pinned_request(client: httpx.AsyncClient, url: httpx.URL, address: str) -> httpx.Request:
    """A request to the checked address; Host header and TLS SNI still name the real host."""
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": _USER_AGENT,
        "Accept": "text/html, text/*;q=0.9",
    }
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return client.build_request("GET", url.copy_with(host=address), headers=headers, extensions=extensions)


async def _body(response: httpx.Response) -> tuple[bytes, bool]:
    """At most MAX_BODY_BYTES of the body, and whether there was more."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return bytes(body[:MAX_BODY_BYTES]), True
    return bytes(body), False


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


async def _page(response: httpx.Response, url: httpx.URL) -> Page:
    if response.status_code >= 400:
        raise ToolError(f"HTTP {response.status_code} {response.reason_phrase} fetching {url}.")
    body, truncated = await _body(response)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return Page(str(url), content_type, _decode(body, response.charset_encoding), truncated)


async def _follow(client: httpx.AsyncClient, url: httpx.URL, ctx: ToolContext) -> Page:
    """Fetch with redirects followed by hand, every hop resolved and checked before connecting."""
    resolver = ctx.resolve_host or system_resolver
    for _ in range(MAX_REDIRECTS + 1):
        pinned = await pin_host(url.host, resolver, ctx.allow_private_hosts)
        response = await client.send(pinned_request(client, url, pinned.address), stream=True)
        try:
            if not response.is_redirect:
                return await _page(response, url)
            url = _parse(str(url.join(response.headers["location"])))
        finally:
            await response.aclose()
    raise ToolError(f"Too many redirects (more than {MAX_REDIRECTS}).")


async def fetch_page(url: str, ctx: ToolContext) -> Page:
    """Fetch `url` within the size, time and address limits; failures are ToolErrors naming the URL."""
    start = _parse(url)
    try:
        async with (
            asyncio.timeout(TOTAL_TIMEOUT_S),
            httpx.AsyncClient(trust_env=False, timeout=TIMEOUT_S) as client,
        ):
            return await _follow(client, start, ctx)
    except TimeoutError as exc:
        raise ToolError(f"Fetching {url} timed out after {TOTAL_TIMEOUT_S:.0f} s.") from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"Could not fetch {url}: {type(exc).__name__}: {exc}") from exc


def to_markdown(page: Page) -> str:
    """HTML becomes Markdown (scripts and styles dropped); text types pass through; others are refused."""
    if page.content_type in ("text/html", "application/xhtml+xml"):
        from markdownify import markdownify  # deferred: it loads BeautifulSoup (~80 ms a process)

        text = markdownify(page.text, heading_style="ATX").strip()
    elif page.content_type.startswith("text/") or page.content_type in _TEXT_TYPES or not page.content_type:
        text = page.text.strip()
    else:
        raise ToolError(f"{page.url} returned {page.content_type}; WebFetch reads only HTML and text.")
    note = f"\n\n(The page was cut at {MAX_BODY_BYTES} bytes.)" if page.truncated else ""
    return text + note


def _as_returned(page: Page, markdown: str) -> str:
    head = f"No summarizer is configured, so here is {page.url} as Markdown (the prompt was not applied)"
    if len(markdown) <= MAX_RETURN_CHARS:
        return f"{head}:\n\n{markdown}"
    return f"{head}, cut to {MAX_RETURN_CHARS} of {len(markdown)} characters:\n\n{markdown[:MAX_RETURN_CHARS]}"


async def run_web_fetch(args: WebFetchArgs, ctx: ToolContext) -> str:
    """Fetch, convert, and answer the prompt (or return the Markdown when no summarizer is set)."""
    page = await fetch_page(args.url, ctx)
    markdown = to_markdown(page)
    redirected = f"(Fetched {page.url} after redirects.)\n\n" if page.url != str(_parse(args.url)) else ""
    if ctx.summarize is None:
        return redirected + _as_returned(page, markdown)
    return redirected + await ctx.summarize(markdown[:MAX_SUMMARY_INPUT_CHARS], args.prompt)


WEB_FETCH: ToolSpec[WebFetchArgs] = ToolSpec(
    name="WebFetch", description=DESCRIPTION, args=WebFetchArgs, run=run_web_fetch
)
