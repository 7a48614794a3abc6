"""Prompt versions: a small JSON file holding the template and its params."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..store.records import thaw
from .base import Codec

__all__ = ["PromptCodec", "encode", "decode", "FILENAME"]

FILENAME = "prompt.json"


def encode(template: str, params: Mapping[str, Any]) -> bytes:
    """Canonical bytes: the same template and params always have the same digest."""
    return json.dumps({"template": template, "params": dict(params)}, sort_keys=True, indent=1).encode()


def decode(payload: bytes) -> tuple[str, dict[str, Any]]:
    data = json.loads(payload)
    return data["template"], dict(data.get("params", {}))


class PromptCodec(Codec):
    kind = "prompt"
    getter = "get_prompt"
    show_magic = "%prompt show {ref}"

    def load(self, art, ws):
        from ..prompts import get_prompt

        return get_prompt(art.ref, workspace=ws)

    def details(self, art, reg):
        try:
            template, params = decode(reg.read_bytes(art))
        except (ValueError, KeyError, TypeError):  # not saved by save_prompt: show it as any artifact
            return {}
        meta = thaw(art.metadata)
        return {
            "template": template,
            "params": params,
            "format": meta.get("format"),
            "variables": meta.get("variables", []),
            "description": meta.get("description"),
        }
