"""Message content as plain text: the one flattening of a string or a list of content blocks (Anthropic or
OpenAI style, live or as recorded), used by the trace, replay and the local adapter alike."""

from __future__ import annotations

__all__ = ["content_text"]


def content_text(content: object, *, placeholders: bool = True) -> str:
    """The text of `content`: a string as it is; of a block list, the text blocks (and bare strings) in
    order, one per line, and (with `placeholders`, for people reading a trace) each other block but tool
    calls as `[type]`. A small local model gets the text alone."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type", "text") == "text":
            parts.append(str(block.get("text", "")))
        elif placeholders and isinstance(block, dict) and block.get("type") not in ("tool_use", "tool_call"):
            parts.append(f"[{block.get('type')}]")
    return "\n".join(p for p in parts if p)
