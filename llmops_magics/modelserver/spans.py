"""Server-side spans: one per completion request, joined to the caller's trace, linked to the deployment.

An ASGI layer around the app (``server.py`` wraps it; the routes know nothing of it):
``POST /v1/completions`` and ``POST /v1/chat/completions`` each become a ``server`` span
named ``"{operation} {model}"``, a child of the span in the request's ``traceparent``
header when there is one (the ``openai`` client after ``%trace on``, an eval of this
endpoint), so ``%trace show`` in the notebook shows the request on both sides. The span
carries the request's GenAI parameters, the answer's finish reasons and token usage
(from the JSON body, or from the streamed chunks), the HTTP status as ``error.type`` for
4xx/5xx, and ``llmops.artifact.ref``: the deployment version serving it.

Spans go to ``traces.db`` of the deployment's registry (the launcher sets
``LLMOPS_HOME``), written by this process's own background writer. The batches the
engine runs for many requests at once make no spans of their own (``set_root_calls``):
the requests' spans stand for them. Prompts and answers are never recorded here; the
request log keeps them under its own settings.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..tracing import conventions as C

__all__ = ["traced_app", "ROUTES"]

ROUTES = {"/v1/completions": C.OP_TEXT_COMPLETION, "/v1/chat/completions": C.OP_CHAT}
REQUEST_KEYS = ("temperature", "max_tokens", "seed", "top_p", "stop", "n")
MAX_READ = 1 << 20  # bytes of a request or a response read for attributes; the rest passes untouched
_CONTEXT_HEADERS = (b"traceparent", b"tracestate")  # ASGI header names are lower case


def traced_app(app: Any, deployment: str | None) -> Any:
    """``app`` with a span per completion request; ``app`` itself when tracing is off."""
    from ..tracing.provider import tracing_for
    from ..tracing.spans import set_root_calls

    if tracing_for() is None:
        return app
    set_root_calls(False)
    return _TracedApp(app, deployment)


def _request_attributes(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    from ..tracing.spans import _REQUEST

    out: dict[str, Any] = {}
    if isinstance(data.get("model"), str):
        out[C.GEN_AI_REQUEST_MODEL] = data["model"]
    for key in REQUEST_KEYS:
        value = data.get(key)
        if key == "stop" and isinstance(value, str):
            value = [value]
        if (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        ):
            out[_REQUEST[key]] = value
    return out


def _response_attributes(body: bytes, streamed: bool) -> dict[str, Any]:
    """Finish reasons and usage from a JSON answer, or from the ``data:`` chunks of a stream."""
    chunks: list[Any] = []
    if streamed:
        for line in body.split(b"\n"):
            if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
                try:
                    chunks.append(json.loads(line[6:]))
                except ValueError:
                    continue
    else:
        try:
            chunks.append(json.loads(body))
        except ValueError:
            return {}
    reasons: dict[int, str] = {}
    out: dict[str, Any] = {}
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                reasons[int(choice.get("index") or 0)] = str(choice["finish_reason"])
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out[C.GEN_AI_USAGE_INPUT_TOKENS] = int(usage.get("prompt_tokens") or 0)
            out[C.GEN_AI_USAGE_OUTPUT_TOKENS] = int(usage.get("completion_tokens") or 0)
        if isinstance(chunk.get("id"), str):
            out.setdefault(C.GEN_AI_RESPONSE_ID, chunk["id"])
        if isinstance(chunk.get("model"), str):
            out.setdefault(C.GEN_AI_RESPONSE_MODEL, chunk["model"])
    if reasons:
        out[C.GEN_AI_RESPONSE_FINISH_REASONS] = [reasons[i] for i in sorted(reasons)]
    return out


class _TracedApp:
    def __init__(self, app: Any, deployment: str | None) -> None:
        self.app = app
        self.deployment = deployment

    @staticmethod
    def _flushing(send: Any) -> Any:
        """The lifespan's ``send``: spans are written before the app reports its shutdown complete
        (uvicorn then re-raises SIGTERM, and the process ends without running ``atexit``)."""

        async def send_flushed(message: dict) -> None:
            if message.get("type") == "lifespan.shutdown.complete":
                from starlette.concurrency import run_in_threadpool

                from ..tracing.export import flush_local

                await run_in_threadpool(flush_local, 5.0)
            await send(message)

        return send_flushed

    def __getattr__(self, name: str) -> Any:  # uvicorn and tests reach the FastAPI app through it
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "lifespan":
            await self.app(scope, receive, self._flushing(send))
            return
        operation = ROUTES.get(scope.get("path", "")) if scope.get("type") == "http" else None
        if operation is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        from ..tracing.provider import tracing_for

        tracing = tracing_for()
        if tracing is None:
            await self.app(scope, receive, send)
            return
        # Only the start time is taken now: the span itself is made once the answer is sent
        # (``_span``), with that start time, so none of its work (the SDK's span, the
        # ``traceparent`` parsed, the bodies read) stands between a request and its answer.
        started = time.time_ns()
        request, response = bytearray(), bytearray()
        state: dict[str, Any] = {"status": None, "streamed": False}

        async def receive_traced() -> dict:
            message = await receive()
            if message.get("type") == "http.request" and len(request) < MAX_READ:
                request.extend(message.get("body", b""))
            return message

        async def send_traced(message: dict) -> None:
            if message.get("type") == "http.response.start":
                state["status"] = int(message.get("status", 0))
                kind = dict(message.get("headers") or ()).get(b"content-type", b"")
                state["streamed"] = kind.startswith(b"text/event-stream")
            elif message.get("type") == "http.response.body" and len(response) < MAX_READ:
                response.extend(message.get("body", b""))
            await send(message)

        failure: BaseException | None = None
        try:
            await self.app(scope, receive_traced, send_traced)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._span(tracing, operation, scope, started, bytes(request), bytes(response), state, failure)

    def _span(
        self,
        tracing: Any,
        operation: str,
        scope: dict,
        started: int,
        request: bytes,
        response: bytes,
        state: dict[str, Any],
        failure: BaseException | None,
    ) -> None:
        """The request's span, from ``started`` to now: a child of the request's ``traceparent``."""
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier = {}
        for key, value in scope.get("headers", ()):
            if key in _CONTEXT_HEADERS:  # the only headers the W3C propagator reads
                carrier[key.decode("latin-1")] = value.decode("latin-1")
        attributes: dict[str, Any] = {
            C.GEN_AI_OPERATION_NAME: operation,
            C.GEN_AI_PROVIDER_NAME: C.PROVIDER_TRANSFORMERS,
        }
        if self.deployment:
            attributes[C.LLMOPS_ARTIFACT_REF] = self.deployment
        found = _request_attributes(request)
        model = found.get(C.GEN_AI_REQUEST_MODEL)
        span = tracing.tracer.start_span(
            operation if model is None else f"{operation} {model}",
            context=TraceContextTextMapPropagator().extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=started,
        )
        if failure is not None:
            span.set_attribute(C.ERROR_TYPE, type(failure).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(failure).__name__))
        status = state["status"]
        if status is not None and status >= 400:
            found[C.ERROR_TYPE] = str(status)
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        elif status is not None:
            found.update(_response_attributes(response, state["streamed"]))
        found["http.response.status_code"] = status or 0
        span.set_attributes(found)
        span.end()
