"""Prompt templates: Jinja2 with StrictUndefined, plain text or chat.

Chat syntax: a template whose first non-blank line is a role marker is a chat
prompt. A role marker is a line holding only ``system:``, ``user:`` or
``assistant:``; it starts a message that runs to the next marker::

    system:
    You answer in one word.
    user:
    What is the capital of {{ country }}?

Each message is rendered on its own, so a variable's value can never inject a
new role marker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import RenderError, ValidationError

ROLES = ("system", "user", "assistant")
_MARKER = re.compile(r"^(system|user|assistant):\s*$")

__all__ = ["ParsedTemplate", "parse_template", "ROLES"]


@lru_cache(maxsize=1)
def _env():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


@lru_cache(maxsize=256)
def _compiled(source: str):
    """Compiling costs ~0.7 ms and an eval renders one template per row: compile each source once."""
    return _env().from_string(source)


def _split_chat(text: str) -> list[tuple[str, str]] | None:
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not _MARKER.match(first.strip()):
        return None
    messages: list[tuple[str, list[str]]] = []
    for ln in lines:
        m = _MARKER.match(ln.strip())
        if m:
            messages.append((m.group(1), []))
        elif messages:
            messages[-1][1].append(ln)
    return [(role, "\n".join(body).strip("\n")) for role, body in messages]


@dataclass(frozen=True)
class ParsedTemplate:
    """A compiled template; ``variables`` are every name it reads, in order of first use."""

    text: str
    format: str  # "text" or "chat"
    parts: tuple[tuple[str, str], ...]  # (role, source); role "" for text prompts
    variables: tuple[str, ...]

    def required(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(v for v in self.variables if v not in params)

    def render(self, values: Mapping[str, Any], where: str = "prompt") -> str | list[dict[str, str]]:
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise RenderError(
                f"{where} needs variable(s) {', '.join(missing)}; given: {', '.join(sorted(values)) or 'none'}"
            )
        from jinja2 import TemplateError

        try:
            rendered = [(role, _compiled(src).render(**values)) for role, src in self.parts]
        except TemplateError as exc:
            raise RenderError(f"{where} failed to render: {exc}") from None
        if self.format == "text":
            return rendered[0][1]
        return [{"role": role, "content": content} for role, content in rendered]


def _variables(sources: list[str]) -> tuple[str, ...]:
    from jinja2 import TemplateSyntaxError, meta

    env = _env()
    seen: dict[str, None] = {}
    for src in sources:
        try:
            ast = env.parse(src)
        except TemplateSyntaxError as exc:
            raise ValidationError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
        found = meta.find_undeclared_variables(ast)
        # keep the order in which names appear in the source
        for name in sorted(found, key=lambda n: (src.find(n) if src.find(n) >= 0 else len(src), n)):
            seen.setdefault(name, None)
    return tuple(seen)


def parse_template(text: object) -> ParsedTemplate:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("prompt template is empty: write the template in the cell body")
    chat = _split_chat(text)
    if chat is not None:
        if any(not body.strip() for _, body in chat):
            empty = next(role for role, body in chat if not body.strip())
            raise ValidationError(f"chat prompt has an empty {empty!r} message")
        parts = tuple(chat)
        return ParsedTemplate(text, "chat", parts, _variables([b for _, b in parts]))
    return ParsedTemplate(text, "text", (("", text),), _variables([text]))
