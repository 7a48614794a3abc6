"""Displayable results of prompt operations: history, name lists, diffs."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..display.html import VersionHistory, cell_label, esc, format_time, kv_html, mimebundle
from ..store.records import thaw
from .versions import PromptVersion

__all__ = ["PromptHistory", "PromptDiff", "diff_prompts"]


@dataclass(frozen=True)
class PromptHistory(VersionHistory):
    KIND = "prompt"
    name: str
    versions: Sequence[PromptVersion]

    COLUMNS = ("version", "created", "digest", "aliases", "variables", "description", "cell")

    def _rows(self):
        for v in reversed(self.versions):
            yield (
                v.version,
                format_time(v.artifact.created_at),
                v.artifact.short_digest,
                ", ".join(v.aliases),
                ", ".join(v.variables),
                v.description or "",
                cell_label(v.artifact.source),
            )


@dataclass(frozen=True)
class PromptDiff:
    """What changed between two prompt versions: template lines and params."""

    a: PromptVersion
    b: PromptVersion

    @property
    def identical(self) -> bool:
        return self.a.digest == self.b.digest

    @property
    def param_changes(self) -> dict[str, tuple[object, object]]:
        pa, pb = thaw(self.a.params), thaw(self.b.params)
        return {k: (pa.get(k), pb.get(k)) for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}

    @property
    def text(self) -> str:
        """A unified diff of the templates followed by the param changes."""
        lines = list(
            difflib.unified_diff(
                self.a.template.splitlines(), self.b.template.splitlines(), self.a.ref, self.b.ref, lineterm=""
            )
        )
        for key, (old, new) in self.param_changes.items():
            lines.append(f"param {key}: {json.dumps(old)} -> {json.dumps(new)}")
        return "\n".join(lines) if lines else f"{self.a.ref} and {self.b.ref} are identical"

    def __str__(self) -> str:
        return self.text

    @property
    def html(self) -> str:
        table = difflib.HtmlDiff(wrapcolumn=80).make_table(
            self.a.template.splitlines(), self.b.template.splitlines(), esc(self.a.ref), esc(self.b.ref)
        )
        params = ""
        if self.param_changes:
            params = kv_html(
                {k: f"{json.dumps(o)} → {json.dumps(n)}" for k, (o, n) in self.param_changes.items()}, title="params"
            )
        legend = (
            "<style>.diff_add{background:#aaffaa}.diff_chg{background:#ffff77}"
            ".diff_sub{background:#ffaaaa}table.diff{font-family:monospace;font-size:12px}</style>"
        )
        note = "<p><i>identical</i></p>" if self.identical else ""
        return legend + note + table + params

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(self.text, self.html)


def diff_prompts(ref_a: str, ref_b: str, *, workspace=None) -> PromptDiff:
    from .versions import get_prompt

    return PromptDiff(get_prompt(ref_a, workspace=workspace), get_prompt(ref_b, workspace=workspace))


class RenderedText(str):
    """A rendered text prompt: a ``str`` that displays as the text itself, not its repr.

    ``prompt_ref`` names the prompt version it came from: a traced call given this text
    (an ``openai`` client call after ``%trace on``, a ``@traced`` function) links its span
    to that version. Any string operation returns a plain ``str`` without it.
    """

    prompt_ref: str | None = None

    def __new__(cls, text: str = "", prompt_ref: str | None = None) -> RenderedText:
        self = super().__new__(cls, text)
        if prompt_ref is not None:
            self.prompt_ref = prompt_ref
        return self

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), f"<pre>{esc(str(self))}</pre>")


class RenderedChat(list):
    """Rendered chat messages: a list of ``{"role", "content"}`` that displays as a conversation.

    ``prompt_ref`` names the prompt version it came from (see ``RenderedText``).
    """

    prompt_ref: str | None = None

    def __init__(self, messages=(), prompt_ref: str | None = None) -> None:
        super().__init__(messages)
        if prompt_ref is not None:
            self.prompt_ref = prompt_ref

    def __str__(self) -> str:
        return "\n".join(f"{m['role']}: {m['content']}" for m in self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        rows = "".join(
            f"<p><b>{esc(m['role'])}</b><br><span style='white-space:pre-wrap'>{esc(m['content'])}</span></p>"
            for m in self
        )
        return mimebundle(str(self), rows)
