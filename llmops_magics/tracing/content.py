"""What a span may hold of a call's content: texts cut to a limit, attribute values OpenTelemetry
takes, GenAI message JSON, and the prompt version a rendered prompt came from.

Kept apart from ``spans`` (which makes spans) because the deferred client spans and the
``openai`` wrapper read the same content without making a span here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["attribute_value", "cut", "genai_messages", "prompt_ref_of"]


def cut(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def attribute_value(value: Any, limit: int) -> Any:
    """An attribute value: OpenTelemetry takes str, bool, int, float and lists of one of them."""
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return cut(value, limit)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
        if len({type(v) for v in value}) <= 1:
            return [cut(v, limit) if isinstance(v, str) else v for v in value]
    return cut(json.dumps(value, default=repr), limit)


def prompt_ref_of(value: Any) -> str | None:
    """The prompt version a rendered prompt came from (``PromptVersion.render`` marks its output),
    looked for in the value, a sequence of them, or the ``content`` of chat messages."""
    ref = getattr(value, "prompt_ref", None)
    if ref:
        return ref
    if isinstance(value, (list, tuple)):
        for item in value[:64]:
            ref = getattr(item, "prompt_ref", None) or (
                getattr(item.get("content"), "prompt_ref", None) if isinstance(item, Mapping) else None
            )
            if ref:
                return ref
    if isinstance(value, Mapping):
        for item in list(value.values())[:64]:
            ref = prompt_ref_of(item) if isinstance(item, (list, tuple, str)) else None
            if ref:
                return ref
    return None


def genai_messages(inputs: Sequence[Any], role: str = "user") -> list[dict[str, Any]]:
    """GenAI message JSON: chat messages as they are, each text prompt as one user message."""
    out = []
    for item in inputs:
        if isinstance(item, Mapping):
            out.append({"role": item.get("role", role), "parts": [{"type": "text", "content": item.get("content")}]})
        else:
            out.append({"role": role, "parts": [{"type": "text", "content": str(item)}]})
    return out
