"""Displayable listings of fine-tune runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..display.html import format_time, mimebundle, table_html, text_table

__all__ = ["RunList"]


@dataclass(frozen=True)
class RunList:
    """Fine-tune runs from the registry's state, newest first (``%finetune list``)."""

    runs: Sequence[Mapping[str, Any]]

    COLUMNS = ("run", "name", "status", "step", "result", "resume from", "updated")

    def _rows(self):
        for r in self.runs:
            step = f"{r.get('step')}/{r.get('max_steps')}" if r.get("max_steps") else (r.get("step") or "")
            checkpoint = r.get("checkpoint") or ""
            yield (
                r.get("run_id"),
                r.get("name"),
                r.get("status"),
                step,
                r.get("result") or "",
                checkpoint.rsplit("/", 1)[-1],
                format_time(r.get("updated_at", 0)),
            )

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self):
        return iter(self.runs)

    def __str__(self) -> str:
        return text_table(self.COLUMNS, self._rows()) if self.runs else "(no fine-tune runs)"

    def _repr_mimebundle_(self, include=None, exclude=None):
        body = table_html(self.COLUMNS, self._rows()) if self.runs else "<i>(no fine-tune runs)</i>"
        return mimebundle(str(self), body)
