"""A finished SDK span as a row of ``traces.db``'s ``spans`` table, and a batch's ``traces`` summaries.

What the exporter's thread turns spans into before ``store.SpanStore.write`` stores them: the
span's attributes and events as JSON, plus the few the store's queries filter on as columns
(operation, model, prompt version, artifact, tokens), in ``store._COLUMNS`` order. Apart from the
store because it is about the SDK's span objects, not about SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from .conventions import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    LLMOPS_ARTIFACT_REF,
    LLMOPS_OPERATION,
    LLMOPS_PROMPT_REF,
)

__all__ = ["span_row", "trace_rows"]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def span_row(span: Any) -> tuple:
    """The ``spans`` row of an SDK ``ReadableSpan``."""
    attrs = span.attributes  # the SDK's read-only view: its copy() copies in C, dict(view) key by key in Python
    attrs = dict(attrs.copy() if isinstance(attrs, MappingProxyType) else attrs or ())
    for key, value in attrs.items():
        if isinstance(value, tuple):
            attrs[key] = list(value)
    events = (
        json.dumps(
            [{"name": e.name, "ts": e.timestamp, "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()}}
             for e in span.events],
            default=str,
        )
        if span.events
        else "[]"
    )  # fmt: skip
    parent = span.parent
    context = span.context
    status = span.status
    service = span.resource.attributes.get("service.name") if span.resource is not None else None
    return (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        None if parent is None else f"{parent.span_id:016x}",
        span.name,
        span.kind.name.lower(),
        span.start_time,
        span.end_time or span.start_time,
        status.status_code.name,
        status.description,
        attrs.get(GEN_AI_OPERATION_NAME) or attrs.get(LLMOPS_OPERATION),
        attrs.get(GEN_AI_REQUEST_MODEL),
        attrs.get(LLMOPS_PROMPT_REF),
        attrs.get(LLMOPS_ARTIFACT_REF),
        attrs.get(GEN_AI_USAGE_INPUT_TOKENS),
        attrs.get(GEN_AI_USAGE_OUTPUT_TOKENS),
        None if service is None else str(service),
        json.dumps(attrs, default=str),
        events,
    )


def trace_rows(rows: Sequence[tuple]) -> list[tuple]:
    """One ``traces`` upsert per trace of a batch: its spans' extent, count, tokens, errors and root."""
    out: dict[str, list] = {}
    for row in rows:
        trace_id, _, parent, name, kind, start, end, status = row[:8]
        counted = kind != "server"
        tokens_in = (row[13] or 0) if counted else 0
        tokens_out = (row[14] or 0) if counted else 0
        rank = int(parent is not None)
        t = out.get(trace_id)
        if t is None:
            out[trace_id] = [trace_id, start, end, 1, tokens_in, tokens_out, int(status == "ERROR"), name, rank, start]
            continue
        t[1], t[2], t[3] = min(t[1], start), max(t[2], end), t[3] + 1
        t[4], t[5], t[6] = t[4] + tokens_in, t[5] + tokens_out, t[6] + int(status == "ERROR")
        if (rank, start) < (t[8], t[9]):
            t[7], t[8], t[9] = name, rank, start
    return [tuple(t) for t in out.values()]
