"""A trace as a W&B table: one row per span, logged into the run of the work that made it (an eval),
or a deployment's spans in a monitor's window, logged into the monitor's run.

The table is what the W&B UI can sort and filter: names, parents, timings, the GenAI
request and usage attributes, the prompt version, and the captured input and output when
content capture was on (otherwise those columns are empty: the spans never held them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import conventions as C
from .store import SpanRecord

__all__ = ["COLUMNS", "span_rows", "current_trace_id", "log_trace_table", "log_window_table"]

COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "kind",
    "start_ns",
    "duration_ms",
    "status",
    "error_type",
    "operation",
    "model",
    "prompt_ref",
    "temperature",
    "max_tokens",
    "finish_reasons",
    "input_tokens",
    "output_tokens",
    "input",
    "output",
)


def span_rows(spans: Sequence[SpanRecord]) -> list[list[Any]]:
    rows = []
    for s in spans:
        reasons = s.get(C.GEN_AI_RESPONSE_FINISH_REASONS)
        rows.append(
            [
                s.trace_id,
                s.span_id,
                s.parent_id,
                s.name,
                s.kind,
                s.start_ns,
                round(s.duration_ms, 3),
                s.status,
                s.get(C.ERROR_TYPE),
                s.get(C.GEN_AI_OPERATION_NAME) or s.get(C.LLMOPS_OPERATION),
                s.get(C.GEN_AI_REQUEST_MODEL),
                s.get(C.LLMOPS_PROMPT_REF),
                s.get(C.GEN_AI_REQUEST_TEMPERATURE),
                s.get(C.GEN_AI_REQUEST_MAX_TOKENS),
                ",".join(map(str, reasons)) if reasons else None,
                s.get(C.GEN_AI_USAGE_INPUT_TOKENS),
                s.get(C.GEN_AI_USAGE_OUTPUT_TOKENS),
                s.get(C.GEN_AI_INPUT_MESSAGES) or s.get(C.LLMOPS_INPUT),
                s.get(C.GEN_AI_OUTPUT_MESSAGES) or s.get(C.LLMOPS_OUTPUT),
            ]
        )
    return rows


def current_trace_id() -> str | None:
    """The trace the calling code runs in, or ``None`` (no span, or tracing never started)."""
    from . import spans

    if spans._otel is None:
        return None
    context = spans._otel[1].get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def log_trace_table(
    run: Any, workspace: Any, key: str = "traces", rows_filter: Callable[[Sequence[str], list], list] | None = None
) -> int:
    """Log the spans finished so far in the current trace as table ``key`` of ``run``; how many rows.

    ``rows_filter(columns, rows)`` sees the captured input and output columns first, when
    there are any (the examples table's redaction of personal data applies to them too)."""
    trace_id = current_trace_id()
    if run is None or trace_id is None:
        return 0
    from .export import flush_local
    from .store import SpanStore

    flush_local(10.0)
    return _log(run, key, SpanStore(workspace.home).spans(trace_id), rows_filter)


def log_window_table(
    run: Any,
    workspace: Any,
    ref_prefix: str,
    start_s: float,
    end_s: float,
    *,
    key: str = "traces",
    limit: int = 10_000,
    rows_filter: Callable[[Sequence[str], list], list] | None = None,
) -> int:
    """Log the spans linked to ``ref_prefix`` (``deployment://qa-svc/``) that started in the window, at most
    ``limit`` (the oldest), as table ``key`` of ``run``; how many rows. Nothing without a span store."""
    from .store import FILENAME, SpanStore

    if run is None or not (workspace.home / FILENAME).exists():
        return 0
    spans = SpanStore(workspace.home).linked(ref_prefix, int(start_s * 1e9), int(end_s * 1e9), limit)
    return _log(run, key, spans, rows_filter)


def _log(run: Any, key: str, spans: Sequence[SpanRecord], rows_filter: Any) -> int:
    rows = span_rows(spans)
    if rows_filter is not None and any(r[-1] or r[-2] for r in rows):  # only captured content is free text
        content = rows_filter(COLUMNS[-2:], [r[-2:] for r in rows])
        rows = [[*r[:-2], *c] for r, c in zip(rows, content, strict=True)]
    if rows:
        run.log_table(key, COLUMNS, rows)
    return len(rows)
