"""How traces display: a list of traces, and one trace as a tree with a timeline.

A trace is shown only when asked (``%trace show``), and cut to a size: at most
``max_spans`` spans in the tree and ``max_chars`` characters of each captured input or
output (the full spans stay in ``.spans``). Everything taken from a span (names,
attribute values, prompts and answers) is escaped: it renders as text, never as HTML.

Cost is worked out when shown, from ``[tool.llmops.prices]`` (dollars per million input
and output tokens, keyed by model name or registered name, as ``compare_models`` reads it):
spans record tokens, which do not change when prices do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..display.html import CELL, STYLE, esc, format_time, mimebundle, table_html, text_table
from . import conventions as C
from .store import SpanRecord, TraceSummary

__all__ = ["TraceList", "TraceView", "span_cost"]

BAR_WIDTH_PX = 220
STATUS_COLOURS = {"ERROR": "#d9534f", "OK": "#5cb85c", "UNSET": "#5b8dd6"}


def _tokens(n_in: Any, n_out: Any) -> str:
    return "" if n_in is None and n_out is None else f"{n_in or 0}→{n_out or 0}"


def span_cost(span: SpanRecord, prices: Mapping[str, Mapping[str, float]]) -> float | None:
    """Dollars for one model call at ``prices``; ``None`` when its model has no price or it is a server span."""
    n_in, n_out = span.get(C.GEN_AI_USAGE_INPUT_TOKENS), span.get(C.GEN_AI_USAGE_OUTPUT_TOKENS)
    if span.kind == "server" or (n_in is None and n_out is None):
        return None
    names = [span.get(C.GEN_AI_REQUEST_MODEL), span.get(C.LLMOPS_MODEL_REF)]
    ref = span.get(C.LLMOPS_MODEL_REF)
    if isinstance(ref, str) and "://" in ref:
        names.append(ref.split("://", 1)[1].rsplit("/", 1)[0])
    price = next((prices[n] for n in names if isinstance(n, str) and n in prices), None)
    if price is None:
        return None
    return ((n_in or 0) * price.get("input", 0.0) + (n_out or 0) * price.get("output", 0.0)) / 1e6


class TraceList:
    """Traces, newest first: what ``%trace list`` returns (``rows``, ``ids``, ``len()``)."""

    COLUMNS = ("trace", "started", "name", "spans", "ms", "tokens", "errors")

    def __init__(self, rows: Sequence[TraceSummary]) -> None:
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    @property
    def ids(self) -> list[str]:
        return [r.trace_id for r in self.rows]

    def _table(self) -> list[list[Any]]:
        return [
            [
                r.trace_id[:12],
                format_time(r.start_ns / 1e9),
                r.name,
                r.spans,
                f"{r.duration_ms:.1f}",
                _tokens(r.input_tokens, r.output_tokens),
                r.errors or "",
            ]
            for r in self.rows
        ]

    def __str__(self) -> str:
        if not self.rows:
            return "no traces"
        return text_table(self.COLUMNS, self._table())

    def _repr_mimebundle_(self, include=None, exclude=None):
        if not self.rows:
            return mimebundle("no traces", "<i>no traces</i>")
        return mimebundle(str(self), table_html(self.COLUMNS, self._table(), title="traces (newest first)"))


def _content(span: SpanRecord, limit: int) -> list[tuple[str, str]]:
    """``(label, text)`` of what a span captured: messages in, messages out, a function's input and output."""
    out = []
    for label, key in (
        ("input", C.GEN_AI_INPUT_MESSAGES),
        ("output", C.GEN_AI_OUTPUT_MESSAGES),
        ("input", C.LLMOPS_INPUT),
        ("output", C.LLMOPS_OUTPUT),
    ):
        value = span.get(key)
        if value is None:
            continue
        text = value
        if key in (C.GEN_AI_INPUT_MESSAGES, C.GEN_AI_OUTPUT_MESSAGES):
            try:
                text = "\n".join(
                    f"{m.get('role')}: " + " ".join(str(p.get("content", "")) for p in m.get("parts", []))
                    for m in json.loads(value)
                )
            except (ValueError, TypeError, AttributeError):
                text = str(value)
        text = str(text)
        out.append((label, text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"))
    return out


class TraceView:
    """One trace: ``spans`` (start order), ``tree()`` (``(depth, span)`` in display order), totals."""

    def __init__(
        self,
        trace_id: str,
        spans: Sequence[SpanRecord],
        prices: Mapping[str, Mapping[str, float]] | None = None,
        *,
        max_spans: int = 200,
        max_chars: int = 2000,
    ) -> None:
        self.trace_id = trace_id
        self.spans = list(spans)
        self.prices = dict(prices or {})
        self.max_spans = max_spans
        self.max_chars = max_chars

    def __len__(self) -> int:
        return len(self.spans)

    def tree(self) -> list[tuple[int, SpanRecord]]:
        ids = {s.span_id for s in self.spans}
        children: dict[str | None, list[SpanRecord]] = {}
        for s in self.spans:
            children.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
        out: list[tuple[int, SpanRecord]] = []
        stack = [(0, s) for s in reversed(children.get(None, []))]
        while stack:
            depth, span = stack.pop()
            out.append((depth, span))
            stack += [(depth + 1, c) for c in reversed(children.get(span.span_id, []))]
        return out

    @property
    def start_ns(self) -> int:
        return min((s.start_ns for s in self.spans), default=0)

    @property
    def duration_ms(self) -> float:
        return (max((s.end_ns for s in self.spans), default=0) - self.start_ns) / 1e6

    def _counted(self) -> list[SpanRecord]:
        return [s for s in self.spans if s.kind != "server"]

    @property
    def input_tokens(self) -> int:
        return sum(s.get(C.GEN_AI_USAGE_INPUT_TOKENS) or 0 for s in self._counted())

    @property
    def output_tokens(self) -> int:
        return sum(s.get(C.GEN_AI_USAGE_OUTPUT_TOKENS) or 0 for s in self._counted())

    @property
    def cost(self) -> float | None:
        costs = [c for c in (span_cost(s, self.prices) for s in self.spans) if c is not None]
        return sum(costs) if costs else None

    def _summary(self) -> str:
        cost = self.cost
        money = f", ${cost:.6f}" if cost is not None else ""
        return (
            f"trace {self.trace_id}: {len(self.spans)} spans, {self.duration_ms:.1f} ms, "
            f"tokens {self.input_tokens}→{self.output_tokens}{money}"
        )

    def _line(self, span: SpanRecord) -> str:
        tokens = _tokens(span.get(C.GEN_AI_USAGE_INPUT_TOKENS), span.get(C.GEN_AI_USAGE_OUTPUT_TOKENS))
        bits = [span.name, f"{span.duration_ms:.1f} ms"]
        if tokens:
            bits.append(f"tokens {tokens}")
        reasons = span.get(C.GEN_AI_RESPONSE_FINISH_REASONS)
        if reasons:
            bits.append(",".join(map(str, reasons)))
        if span.get(C.LLMOPS_PROMPT_REF):
            bits.append(str(span.get(C.LLMOPS_PROMPT_REF)))
        if span.status == "ERROR":
            bits.append(f"ERROR {span.get(C.ERROR_TYPE) or ''}".rstrip())
        return "  ".join(bits)

    def __str__(self) -> str:
        lines = [self._summary()]
        shown = self.tree()[: self.max_spans]
        for depth, span in shown:
            lines.append("  " * depth + "- " + self._line(span))
            for label, text in _content(span, self.max_chars):
                lines.append("  " * (depth + 1) + f"  {label}: " + text.replace("\n", " ⏎ "))
        if len(self.spans) > len(shown):
            lines.append(f"… {len(self.spans) - len(shown)} more spans not shown (see .spans)")
        return "\n".join(lines)

    def _bar(self, span: SpanRecord) -> str:
        total = max(self.duration_ms, 1e-6)
        left = (span.start_ns - self.start_ns) / 1e6 / total * 100
        width = max(span.duration_ms / total * 100, 0.4)
        colour = STATUS_COLOURS.get(span.status, STATUS_COLOURS["UNSET"])
        return (
            f"<div style='position:relative;width:{BAR_WIDTH_PX}px;height:10px;background:#eee'>"
            f"<div style='position:absolute;left:{left:.2f}%;width:{min(width, 100 - left):.2f}%;"
            f"height:10px;background:{colour}'></div></div>"
        )

    def _row(self, depth: int, span: SpanRecord) -> str:
        cost = span_cost(span, self.prices)
        tokens = _tokens(span.get(C.GEN_AI_USAGE_INPUT_TOKENS), span.get(C.GEN_AI_USAGE_OUTPUT_TOKENS))
        detail = "".join(
            f"<details><summary>{esc(label)}</summary><pre style='white-space:pre-wrap;margin:2px 0'>"
            f"{esc(text)}</pre></details>"
            for label, text in _content(span, self.max_chars)
        )
        prompt = span.get(C.LLMOPS_PROMPT_REF)
        note = f"<br><small>{esc(prompt)}</small>" if prompt else ""
        error = f" <b style='color:{STATUS_COLOURS['ERROR']}'>{esc(span.get(C.ERROR_TYPE) or 'error')}</b>"
        cells = [
            f"<div style='padding-left:{14 * depth}px'>{esc(span.name)}{error if span.status == 'ERROR' else ''}"
            f"{note}{detail}</div>",
            self._bar(span),
            esc(f"{span.duration_ms:.1f}"),
            esc(tokens),
            "" if cost is None else esc(f"${cost:.6f}"),
        ]
        return "<tr>" + "".join(f'<td style="{CELL}">{c}</td>' for c in cells) + "</tr>"

    def to_dict(self) -> dict[str, Any]:
        """The tree as JSON (the sidebar's Traces section): spans in display order with their depth and
        their offset from the trace's start, cut to ``max_spans`` spans and ``max_chars`` per text."""
        shown = self.tree()[: self.max_spans]
        start = self.start_ns
        root = shown[0][1].name if shown else ""
        return {
            "trace_id": self.trace_id,
            "name": root,
            "start_ms": start / 1e6,
            "duration_ms": self.duration_ms,
            "spans": len(self.spans),
            "truncated": len(self.spans) > len(shown),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "items": [
                {
                    "span_id": span.span_id,
                    "parent_id": span.parent_id,
                    "depth": depth,
                    "name": span.name,
                    "kind": span.kind,
                    "status": span.status,
                    "error_type": span.get(C.ERROR_TYPE),
                    "offset_ms": (span.start_ns - start) / 1e6,
                    "duration_ms": span.duration_ms,
                    "input_tokens": span.get(C.GEN_AI_USAGE_INPUT_TOKENS),
                    "output_tokens": span.get(C.GEN_AI_USAGE_OUTPUT_TOKENS),
                    "model": span.get(C.GEN_AI_REQUEST_MODEL),
                    "prompt_ref": span.get(C.LLMOPS_PROMPT_REF),
                    "artifact_ref": span.get(C.LLMOPS_ARTIFACT_REF),
                    "cost": span_cost(span, self.prices),
                    "content": [{"label": label, "text": text} for label, text in _content(span, self.max_chars)],
                }
                for depth, span in shown
            ],
        }

    def _repr_mimebundle_(self, include=None, exclude=None):
        shown = self.tree()[: self.max_spans]
        head = "".join(f'<th style="{CELL}">{h}</th>' for h in ("span", "timeline", "ms", "tokens", "cost"))
        rows = "".join(self._row(d, s) for d, s in shown)
        more = len(self.spans) - len(shown)
        tail = f"<p><i>… {more} more spans not shown (see .spans)</i></p>" if more > 0 else ""
        body = (
            f"<table style='{STYLE}'><caption style='text-align:left;font-weight:bold'>{esc(self._summary())}"
            f"</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{tail}"
        )
        return mimebundle(str(self), body, {"trace_id": self.trace_id})
