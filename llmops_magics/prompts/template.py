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

A prompt version must hold its whole template, so ``{% include %}``, ``{% extends %}``
and ``{% import %}`` are refused when it is saved (the sandbox has no loader to find
another template at render time anyway).
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


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


@lru_cache(maxsize=1)
def _env():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


@lru_cache(maxsize=256)
def _compiled(source: str):
    """Compiling costs ~0.7 ms and an eval renders one template per row: compile each source once."""
    return _env().from_string(source)


def _split_chat(text: str) -> list[tuple[str, str, int]] | None:
    """``(role, body, line of the body's first line in text)`` per message, or None for a text prompt."""
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not _MARKER.match(first.strip()):
        return None
    messages: list[tuple[str, list[str], int]] = []
    for number, ln in enumerate(lines, start=1):
        m = _MARKER.match(ln.strip())
        if m:
            messages.append((m.group(1), [], number + 1))
        elif messages:
            messages[-1][1].append(ln)
    out = []
    for role, body, start in messages:
        blank = next((i for i, ln in enumerate(body) if ln), len(body))
        out.append((role, "\n".join(body).strip("\n"), start + blank))
    return out


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
        try:
            rendered = [(role, _compiled(src).render(dict(values))) for role, src in self.parts]
        except Exception as exc:
            # Jinja2 lets the values' own errors through (a for loop over an int raises TypeError):
            # every failure here is the caller's template or values, and must arrive as one line.
            raise RenderError(f"{where} failed to render: {type(exc).__name__}: {_one_line(exc)}") from None
        if self.format == "text":
            return rendered[0][1]
        return [{"role": role, "content": content} for role, content in rendered]


_UNSUPPORTED = {"Include": "include", "Extends": "extends", "Import": "import", "FromImport": "from … import"}


def _check_nodes(ast, env, line: int) -> None:
    """Refuse at save time what would only fail at render time: other templates, unknown filters and tests."""
    from jinja2 import nodes

    for node in ast.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
        tag = _UNSUPPORTED[type(node).__name__]
        raise ValidationError(
            f"template line {node.lineno + line - 1}: {{% {tag} %}} is not supported; "
            "a prompt holds its whole template, so paste the other template's text in"
        )
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        what, known = ("filter", env.filters) if isinstance(node, nodes.Filter) else ("test", env.tests)
        if node.name not in known:
            raise ValidationError(f"template line {node.lineno + line - 1}: unknown {what} {node.name!r}")


def _variables(sources: list[tuple[str, int]]) -> tuple[str, ...]:
    """Every variable the sources read; ``(source, line of its first line in the cell)`` pairs."""
    from jinja2 import TemplateError, TemplateSyntaxError, meta

    env = _env()
    seen: dict[str, None] = {}
    for src, line in sources:
        try:
            ast = env.parse(src)
            _check_nodes(ast, env, line)
            found = meta.find_undeclared_variables(ast)
        except TemplateSyntaxError as exc:
            where = (exc.lineno or 1) + line - 1
            raise ValidationError(f"template syntax error on line {where}: {_one_line(exc.message)}") from None
        except TemplateError as exc:
            raise ValidationError(f"template error: {_one_line(exc)}") from None
        # keep the order in which names appear in the source
        for name in sorted(found, key=lambda n: (src.find(n) if src.find(n) >= 0 else len(src), n)):
            seen.setdefault(name, None)
    return tuple(seen)


def parse_template(text: object) -> ParsedTemplate:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("prompt template is empty: write the template in the cell body")
    chat = _split_chat(text)
    if chat is not None:
        if any(not body.strip() for _, body, _ in chat):
            empty = next(role for role, body, _ in chat if not body.strip())
            raise ValidationError(f"chat prompt has an empty {empty!r} message")
        parts = tuple((role, body) for role, body, _ in chat)
        return ParsedTemplate(text, "chat", parts, _variables([(body, line) for _, body, line in chat]))
    return ParsedTemplate(text, "text", (("", text),), _variables([(text, 1)]))
