"""Small helpers for objects that display themselves in a notebook.

Everything user-supplied is escaped: names, metadata and prompt text render as
text, never as HTML.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["VersionHistory", "cell_label", "esc", "format_time", "kv_html", "mimebundle", "money", "table_html"]

STYLE = "border-collapse:collapse;font-family:var(--jp-code-font-family,monospace);font-size:12px"
CELL = "border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top"


def esc(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)) or hasattr(value, "items"):
        value = json.dumps(value, default=str, sort_keys=True)
    return html.escape(str(value))


def table_html(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> str:
    head = "".join(f'<th style="{CELL}">{esc(c)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(f'<td style="{CELL}">{esc(v)}</td>' for v in r) + "</tr>" for r in rows)
    caption = f"<caption style='text-align:left;font-weight:bold'>{esc(title)}</caption>" if title else ""
    return f'<table style="{STYLE}">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kv_html(pairs: Mapping[str, Any], title: str | None = None) -> str:
    rows = "".join(
        f'<tr><th style="{CELL}">{esc(k)}</th><td style="{CELL}">{esc(v)}</td></tr>' for k, v in pairs.items()
    )
    caption = f"<caption style='text-align:left;font-weight:bold'>{esc(title)}</caption>" if title else ""
    return f'<table style="{STYLE}">{caption}{rows}</table>'


def text_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=False)).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def mimebundle(plain: str, html_text: str, metadata: Mapping[str, Any] | None = None):
    """``(data, metadata)`` for ``_repr_mimebundle_``; provenance rides in metadata into the .ipynb."""
    data = {"text/plain": plain, "text/html": html_text}
    if metadata:
        return data, {"llmops": dict(metadata)}
    return data


def money(value: Any) -> str:
    """Dollars to the millionth of a cent at most, trailing zeros dropped: ``$0.000312``, ``$0``; ``-`` for None."""
    if value is None:
        return "-"
    text = f"{float(value):,.8f}".rstrip("0").rstrip(".")
    return f"${text}"


def format_time(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def cell_label(source: Mapping[str, Any]) -> str:
    """``[12]`` for the notebook cell that made a version, empty when it came from elsewhere."""
    count = source.get("execution_count")
    return f"[{count}]" if count is not None else ""


class VersionHistory:
    """Display for a ``name`` plus ``versions`` table; subclasses set ``KIND``, ``COLUMNS`` and ``_rows``."""

    KIND = ""
    COLUMNS: tuple[str, ...] = ()

    def _rows(self):
        raise TypeError(f"{type(self).__name__} must define _rows()")

    def __len__(self) -> int:
        return len(self.versions)  # type: ignore[attr-defined]

    @property
    def title(self) -> str:
        return f"{self.KIND}://{self.name}"  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return f"{self.title}\n" + text_table(self.COLUMNS, self._rows())

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), table_html(self.COLUMNS, self._rows(), title=self.title))
