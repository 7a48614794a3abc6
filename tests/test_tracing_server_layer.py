"""The server's span layer in process (``modelserver/spans.py``): an ASGI app driven directly, spans read from memory.

The span is made once the answer is sent, with the start time taken when the request came
in: these tests hold it to the same span as one started up front (parent, name, timing,
attributes, errors). ``test_tracing_server.py`` runs the real server process.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from llmops_magics.modelserver.spans import _TracedApp
from llmops_magics.tracing import conventions as C

pytest_plugins = ["tracing_support"]

BODY = json.dumps({"model": "bench", "prompt": "hi", "max_tokens": 3, "temperature": 0}).encode()
ANSWER = json.dumps(
    {
        "id": "cmpl-9",
        "model": "bench",
        "choices": [{"index": 0, "text": " there", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 3},
    }
).encode()


def _serve(app, headers, body=BODY):
    """One ``POST /v1/completions`` through ``app``; (what was sent back, when the inner app ran)."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/v1/completions", "method": "POST", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent


class Inner:
    """A completion route: answers ``status`` with ``ANSWER``, or raises ``error``; notes when it ran."""

    def __init__(self, status=200, error=None):
        self.status, self.error, self.ran = status, error, None

    async def __call__(self, scope, receive, send):
        began = time.time_ns()
        await receive()
        if self.error is not None:
            raise self.error
        await send(
            {"type": "http.response.start", "status": self.status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": ANSWER})
        self.ran = (began, time.time_ns())


def _server_span(spans):
    (span,) = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    return span


def test_a_request_with_a_traceparent_is_a_child_span_covering_the_whole_request(spans):
    inner = Inner()
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    sent = _serve(
        _TracedApp(inner, "model://tiny/2"), [(b"content-type", b"application/json"), (b"traceparent", tp.encode())]
    )
    assert sent[-1]["body"] == ANSWER
    span = _server_span(spans)
    assert (f"{span.context.trace_id:032x}", f"{span.parent.span_id:016x}") == tuple(tp.split("-")[1:3])
    assert span.name == "text_completion bench"
    assert span.start_time <= inner.ran[0] and span.end_time >= inner.ran[1]
    a = span.attributes
    assert (a[C.GEN_AI_REQUEST_MODEL], a[C.GEN_AI_REQUEST_MAX_TOKENS], a[C.LLMOPS_ARTIFACT_REF]) == (
        "bench",
        3,
        "model://tiny/2",
    )
    assert (a[C.GEN_AI_USAGE_INPUT_TOKENS], a[C.GEN_AI_USAGE_OUTPUT_TOKENS], a["http.response.status_code"]) == (
        2,
        3,
        200,
    )
    assert list(a[C.GEN_AI_RESPONSE_FINISH_REASONS]) == ["length"]


def test_a_request_without_one_is_a_root_span(spans):
    _serve(_TracedApp(Inner(), None), [(b"content-type", b"application/json")])
    span = _server_span(spans)
    assert span.parent is None and C.LLMOPS_ARTIFACT_REF not in span.attributes


def test_a_refused_request_and_a_failing_app_are_error_spans(spans):
    _serve(_TracedApp(Inner(status=422), None), [])
    refused = _server_span(spans)
    assert (refused.status.status_code.name, refused.attributes[C.ERROR_TYPE]) == ("ERROR", "422")
    assert C.GEN_AI_USAGE_INPUT_TOKENS not in refused.attributes
    spans.clear()
    with pytest.raises(RuntimeError):
        _serve(_TracedApp(Inner(error=RuntimeError("boom")), None), [])
    failed = _server_span(spans)
    assert (failed.status.status_code.name, failed.attributes[C.ERROR_TYPE]) == ("ERROR", "RuntimeError")
    assert failed.attributes["http.response.status_code"] == 0
