"""A displayable list of artifact names (``%prompt list``, ``llmops list``, ``registry().list()``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..store import NameSummary
from .html import format_time, mimebundle, table_html, text_table

__all__ = ["NameList"]


@dataclass(frozen=True)
class NameList:
    items: Sequence[NameSummary]

    COLUMNS = ("kind", "name", "versions", "latest", "aliases", "updated")

    def _rows(self):
        for s in self.items:
            aliases = ", ".join(f"{a}→{v}" for a, v in sorted(s.aliases.items()))
            yield (s.kind, s.name, s.versions, s.latest, aliases, format_time(s.updated_at))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __str__(self) -> str:
        return text_table(self.COLUMNS, self._rows()) if self.items else "(no artifacts)"

    def _repr_mimebundle_(self, include=None, exclude=None):
        body = table_html(self.COLUMNS, self._rows()) if self.items else "<i>(no artifacts)</i>"
        return mimebundle(str(self), body)
