"""The tools orchestrate runs, by Claude Code name, and the names an agent file may list.

`Task` is a known name but not a ToolSpec: delegation is an edge of the graph, not a function call.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from orchestrator.tools.base import ToolSpec
from orchestrator.tools.bash import BASH
from orchestrator.tools.edit import EDIT
from orchestrator.tools.glob import GLOB
from orchestrator.tools.grep import GREP
from orchestrator.tools.read import READ
from orchestrator.tools.web_fetch import WEB_FETCH
from orchestrator.tools.web_search import WEB_SEARCH
from orchestrator.tools.write import WRITE

__all__ = ["ALL_TOOLS", "GRAPH_TOOL_NAMES", "KNOWN_TOOL_NAMES"]

ALL_TOOLS: Mapping[str, ToolSpec[Any]] = MappingProxyType(
    {spec.name: spec for spec in (READ, WRITE, EDIT, GLOB, GREP, BASH, WEB_FETCH, WEB_SEARCH)}
)
GRAPH_TOOL_NAMES = frozenset({"Task"})
"""Names the graph implements itself (delegation)."""
KNOWN_TOOL_NAMES: tuple[str, ...] = (*ALL_TOOLS, *sorted(GRAPH_TOOL_NAMES))
"""Every tool name an agent definition may list, in a stable order."""
