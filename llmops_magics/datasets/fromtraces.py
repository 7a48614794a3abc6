"""What ``from-traces`` runs: traced model calls → rows → a dataset version.

A call becomes rows only if its span kept its content (``gen_ai.input.messages`` and
``gen_ai.output.messages``, recorded when content capture is on); a text-completion span of
a batch (``generate()`` with several prompts) gives one row per prompt, its answers in the
same order. A text that was cut to ``max_content_chars`` when it was recorded would train on
a fragment: such calls are left out. What is left out, and why, is counted in the version's
metadata. Every row keeps ``trace_id`` and ``span_id``, and the version is linked to each
prompt version its rows came from (``from_traces``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..ops.catalog import Call
from ..ops.fromtraces import DEFAULT_FIELDS, FromTracesSpec
from ..tracing import conventions as C
from ..tracing.store import SpanRecord
from .versions import DatasetVersion, save_rows

__all__ = ["run", "rows_from_calls"]

CUT = "more characters]"


def _text(message: Mapping[str, Any]) -> str:
    return "".join(str(p.get("content") or "") for p in message.get("parts", []) if isinstance(p, Mapping))


def _examples(span: SpanRecord) -> list[dict[str, Any]] | None:
    """The call's ``(input, output)`` examples as dicts of every source, or ``None`` without content."""
    try:
        inputs = json.loads(span.get(C.GEN_AI_INPUT_MESSAGES) or "null")
        outputs = json.loads(span.get(C.GEN_AI_OUTPUT_MESSAGES) or "null")
    except ValueError:
        return None
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs or not outputs:
        return None
    reasons = list(span.get(C.GEN_AI_RESPONSE_FINISH_REASONS) or [])
    base = {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "prompt_ref": span.get(C.LLMOPS_PROMPT_REF),
        "model": span.get(C.GEN_AI_REQUEST_MODEL),
    }
    if span.get(C.GEN_AI_OPERATION_NAME) == C.OP_TEXT_COMPLETION and len(inputs) == len(outputs):
        return [
            {**base, "input": _text(i), "output": _text(o), "messages": None, "system": None,
             "finish_reason": reasons[k] if k < len(reasons) else None}
            for k, (i, o) in enumerate(zip(inputs, outputs, strict=True))
        ]  # fmt: skip
    users = [m for m in inputs if m.get("role") == "user"]
    system = [m for m in inputs if m.get("role") == "system"]
    return [
        {
            **base,
            "input": _text(users[-1]) if users else _text(inputs[-1]),
            "output": _text(outputs[0]),
            "messages": [{"role": m.get("role"), "content": _text(m)} for m in inputs],
            "system": _text(system[0]) if system else None,
            "finish_reason": reasons[0] if reasons else None,
        }
    ]


def rows_from_calls(
    spans: Sequence[SpanRecord], fields: Mapping[str, str], where: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``(rows, what was left out and why)`` from model-call spans."""
    skipped = {"without_content": 0, "cut": 0, "not_matching": 0}
    attrs = {"model": C.GEN_AI_REQUEST_MODEL, "operation": C.GEN_AI_OPERATION_NAME, "provider": C.GEN_AI_PROVIDER_NAME}
    rows = []
    for span in spans:
        if any(key in attrs and str(span.get(attrs[key])) != wanted for key, wanted in where.items()):
            skipped["not_matching"] += 1
            continue
        examples = _examples(span)
        if examples is None:
            skipped["without_content"] += 1
            continue
        for ex in examples:
            if "finish_reason" in where and ex["finish_reason"] != where["finish_reason"]:
                skipped["not_matching"] += 1
            elif CUT in ex["input"] or CUT in ex["output"]:
                skipped["cut"] += 1
            else:
                row = {col: span.get(src[5:]) if src.startswith("attr:") else ex[src] for col, src in fields.items()}
                row.setdefault("trace_id", span.trace_id)
                row.setdefault("span_id", span.span_id)
                rows.append(row)
    return rows, skipped


def run(spec: FromTracesSpec, call: Call) -> DatasetVersion:
    """Run a ``FromTracesSpec`` (see ``llmops_magics.dataset_from_traces``)."""
    from ..tracing.read import flush_traces, prompt_filter
    from ..tracing.store import SpanStore

    ws = call.ws
    flush_traces(ws)
    prompt = prompt_filter(spec.prompt, ws)
    until = spec.until if spec.until is not None else time.time()
    if spec.since is not None and spec.since >= until:
        raise ValidationError(f"since must be before until; the window {spec.since:.0f} to {until:.0f} is empty")
    resolved = spec.replace(prompt=prompt, until=until)
    spans = SpanStore(ws.home).calls(
        prompt=prompt,
        since_ns=None if spec.since is None else int(spec.since * 1e9),
        until_ns=int(until * 1e9),
    )
    rows, skipped = rows_from_calls(spans, dict(spec.field or DEFAULT_FIELDS), dict(spec.where or {}))
    if not rows:
        hint = (
            "; calls keep their inputs and outputs only with [tool.llmops.tracing] capture_content = true "
            "or %trace on --content"
            if skipped["without_content"]
            else ""
        )
        raise ValidationError(f"no rows for a dataset from traces: {len(spans)} traced call(s) matched{hint}")
    parents = []
    for ref in sorted({r for s in spans if (r := s.get(C.LLMOPS_PROMPT_REF))}):
        try:
            parents.append((ws.registry.resolve(ref, "prompt"), "from_traces"))
        except (NotFoundError, ValidationError):
            continue  # a prompt of another registry
    return save_rows(
        spec.name,
        {"train": rows},
        spec=resolved,
        call=call,
        aliases=spec.aliases,
        metadata={
            "description": spec.description,
            "window": {"since": spec.since, "until": until},
            "prompt": prompt,
            "where": dict(spec.where or {}),
            "fields": dict(spec.field or DEFAULT_FIELDS),
            "calls": len(spans),
            "skipped": skipped,
            "traces": len({r["trace_id"] for r in rows}),
        },
        parents=parents,
    )
