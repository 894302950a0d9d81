"""Tools as the local model sees them: `ToolDef` normalises whatever `bind_tools` received, and
`bounded_schema` makes a tool's JSON schema safe for llama.cpp's grammar and for small models (closed
objects, bounded arrays, and one character budget shared by every free string).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

__all__ = [
    "ToolDef",
    "bounded_schema",
    "is_free_string",
    "tool_defs",
]

_LONG_KEYS = ("content", "string", "command", "prompt", "text", "body", "code", "summary", "note", "reason")


@dataclass(frozen=True)
class ToolDef:
    """A tool as the local model sees it (from Anthropic dicts, OpenAI dicts, pydantic classes, ...)."""

    name: str
    description: str
    schema: dict[str, Any]

    def as_anthropic(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.schema}


def tool_defs(tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool]) -> list[ToolDef]:
    """Normalise whatever `bind_tools` received (langchain's converter knows every format we meet)."""
    out = []
    for tool in tools:
        fn = convert_to_openai_tool(tool)["function"]
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        out.append(ToolDef(fn["name"], fn.get("description", ""), schema))
    return out


def _resolve_refs(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """Inline local `$ref`s (pydantic `$defs`), so budgeting sees every string; recursion is cut off."""
    if isinstance(node, list):
        return [_resolve_refs(item, defs, depth) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and depth < 8:
        return _resolve_refs(defs.get(ref.removeprefix("#/$defs/"), {}), defs, depth + 1)
    return {k: _resolve_refs(v, defs, depth) for k, v in node.items() if k not in ("$defs", "$ref")}


def is_free_string(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    return is_string and not any(k in node for k in ("enum", "const", "pattern", "format"))


_SHAPE_KEYS = ("type", "anyOf", "oneOf", "allOf", "enum", "const", "$ref", "properties", "items")


def _make_explicit(node: dict[str, Any]) -> None:
    """Rewrite shapes llama.cpp's converter would leave unbounded: a type list (it drops maxLength)
    becomes anyOf, an untyped value becomes a string, an array without items holds strings."""
    kind = node.get("type")
    if isinstance(kind, list):
        rest = {k: v for k, v in node.items() if k not in ("type", "description", "title", "default")}
        for k in rest:
            del node[k]
        del node["type"]
        node["anyOf"] = [{**rest, "type": t} if t != "null" else {"type": "null"} for t in kind]
    elif not any(k in node for k in _SHAPE_KEYS):
        node["type"] = "string"
    if node.get("type") == "array" and "items" not in node:
        node["items"] = {"type": "string"}


def _string_weight(key: str) -> int:
    """Prose-like fields (file content, commands, notes) get four times the room of names and paths."""
    return 4 if any(part in key.lower() for part in _LONG_KEYS) else 1


@dataclass(frozen=True)
class _Slot:
    """One free string in a schema: its node (to receive maxLength), weight, and possible copies."""

    node: dict[str, Any]
    weight: int
    copies: int


@dataclass
class _Walk:
    """One bounding pass over a schema: its options and the free strings found so far."""

    max_items: int
    keep_optional: bool
    slots: list[_Slot]

    def visit(self, node: Any, key: str, copies: int) -> None:
        """Bound arrays and close objects in place; record every free string with its weight and how
        many copies of it an answer may hold (strings inside arrays count once per allowed item)."""
        if not isinstance(node, dict):
            return
        _make_explicit(node)
        if is_free_string(node):
            self.slots.append(_Slot(node, _string_weight(key), copies))
        if node.get("type") == "object" or "properties" in node:
            self._object(node, copies)
        if isinstance(node.get("items"), dict):
            node["maxItems"] = min(int(node.get("maxItems", self.max_items)), self.max_items)
            self.visit(node["items"], key, copies * node["maxItems"])
        for combinator in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(combinator, []):
                self.visit(sub, key, copies)

    def _object(self, node: dict[str, Any], copies: int) -> None:
        """Close the object; unless asked, drop optional properties: small models fill every knob they
        are shown (Read's offset and limit, Edit's replace_all), usually wrongly; the defaults apply."""
        node["additionalProperties"] = False
        properties = node.get("properties", {})
        if not self.keep_optional:
            required = set(node.get("required", []))
            node["properties"] = properties = {k: v for k, v in properties.items() if k in required}
        for name, sub in properties.items():
            self.visit(sub, name, copies)


def bounded_schema(
    schema: Mapping[str, Any], budget: int = 900, max_items: int = 6, keep_optional: bool = False
) -> dict[str, Any]:
    """A copy of `schema` safe for llama.cpp's grammar and small models: closed objects (optional
    properties dropped unless `keep_optional`), `maxItems` on arrays, and `maxLength` on strings sharing
    `budget` characters in total (a larger grammar crashes the process)."""
    bounded: dict[str, Any] = _resolve_refs(copy.deepcopy(dict(schema)), schema.get("$defs", {}))
    slots: list[_Slot] = []
    _Walk(max_items, keep_optional, slots).visit(bounded, "", 1)
    total = sum(slot.weight * slot.copies for slot in slots) or 1
    for slot in slots:
        share = max(4, budget * slot.weight // total)
        slot.node["maxLength"] = min(int(slot.node.get("maxLength", share)), share)
    return bounded
