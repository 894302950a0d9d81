"""WebSearch: Claude Code's search tool, which only Anthropic serves (as a server-side tool).

With the Anthropic provider the graph binds Anthropic's own web search tool (`anthropic_server_tool`)
in place of this spec, and the API runs the search. Any other provider has no search backend, so the
local `run` tells the model so, plainly, instead of failing obscurely.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ToolError
from orchestrator.tools.base import ToolContext, ToolSpec

__all__ = ["SERVER_TOOL_TYPE", "WEB_SEARCH", "WebSearchArgs", "anthropic_server_tool", "run_web_search"]

SERVER_TOOL_TYPE = "web_search_20250305"
"""Anthropic's server-side web search tool version."""

DESCRIPTION = """\
Searches the web for current information; cite the sources you use.
"""


class WebSearchArgs(BaseModel):
    """Arguments of WebSearch (Claude Code's names)."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=2, description="The query.")
    allowed_domains: list[str] | None = Field(default=None, description="Only these domains.")
    blocked_domains: list[str] | None = Field(default=None, description="Never these domains.")


def anthropic_server_tool(
    allowed_domains: list[str] | None = None, blocked_domains: list[str] | None = None, max_uses: int = 5
) -> dict[str, Any]:
    """The tool definition to bind on Anthropic instead of this spec (the API runs the searches)."""
    tool: dict[str, Any] = {"type": SERVER_TOOL_TYPE, "name": "web_search", "max_uses": max_uses}
    if allowed_domains:
        tool["allowed_domains"] = allowed_domains
    if blocked_domains:
        tool["blocked_domains"] = blocked_domains
    return tool


async def run_web_search(args: WebSearchArgs, ctx: ToolContext) -> str:
    """Only reached where no server-side search was bound: say so, and what to do instead."""
    raise ToolError(
        f"WebSearch is not available with provider {ctx.provider!r}: web search runs on Anthropic's "
        "servers and only the 'anthropic' provider offers it. Use WebFetch on a URL you already know, or "
        "continue without searching."
    )


WEB_SEARCH: ToolSpec[WebSearchArgs] = ToolSpec(
    name="WebSearch", description=DESCRIPTION, args=WebSearchArgs, run=run_web_search
)
