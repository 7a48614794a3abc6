"""The HTTP face of a ``Service``: OpenAI-compatible routes, health and Prometheus metrics.

Routes: ``POST /v1/completions``, ``POST /v1/chat/completions`` (``stream: true``
gives server-sent events ending in ``data: [DONE]``, see ``stream_writer``), ``POST /v1/load_lora_adapter`` and
``POST /v1/unload_lora_adapter`` (vLLM's request shape), ``POST /v1/feedback`` (a rating of
an answer, see ``feedback.py``), ``GET /v1/models``,
``GET /v1/models/{id}``, ``GET /health``, ``GET /metrics``. With an API key
configured every ``/v1`` route wants ``Authorization: Bearer KEY`` (feedback also takes the
admin token, so the kernel can rate answers without the clients' key); ``/health``
and ``/metrics`` stay open for probes and scrapers (the server binds 127.0.0.1
unless told otherwise). Every outcome, rejections included, is one call to
``Service.observe``. Only the server process imports this module (FastAPI at
module level: route annotations must resolve).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from .batcher import GenParams, Job, ShuttingDown
from .feedback import store_feedback
from .protocol import (
    MAX_BODY_BYTES,
    ChatRequest,
    CompletionRequest,
    LoadLoraRequest,
    RequestError,
    UnloadLoraRequest,
    chat_body,
    chat_logprobs,
    completion_body,
    completion_logprobs,
    error_body,
    new_id,
    parse_body,
    parse_request,
)
from .service import Arm, Service
from .stream_writer import stream_answer

__all__ = ["build_app"]

log = logging.getLogger("llmops_magics.serving")


def _check_auth(service: Service, request: Any, *, admin: bool = False) -> None:
    """The API key on every /v1 route; routes that change what is served (``admin``) always want a
    key: the API key, or the deployment's admin token (``run_dir/admin.token``, for the kernel)."""
    accepted = [k for k in (service.api_key_sha256, service.admin_sha256 if admin else None) if k]
    if not accepted:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RequestError(
            "you didn't provide an API key; send it as Authorization: Bearer KEY", status=401, code="invalid_api_key"
        )
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    if not any(hmac.compare_digest(digest, k) for k in accepted):
        raise RequestError("incorrect API key provided", status=401, code="invalid_api_key")


async def _read_body(request: Any) -> bytes:
    length = request.headers.get("content-length", "")
    too_big = RequestError(f"request body is larger than {MAX_BODY_BYTES} bytes", status=413, code="request_too_large")
    if length.isascii() and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000.0, 3)


class _ClientGone(Exception):
    """The client of a non-streaming request closed its connection before the answer was ready."""


DISCONNECT_POLL_S = 0.25


async def _answers(request: Any, jobs: list[Job]) -> list[Any]:
    """The jobs' results; a client that disconnects meanwhile abandons them (its rows stop at the next
    token) instead of the model finishing answers nobody will read. Polled, as Starlette offers it."""
    gathered = asyncio.gather(*(j.future for j in jobs))
    while True:
        done, _ = await asyncio.wait({gathered}, timeout=DISCONNECT_POLL_S)
        if done:
            return list(gathered.result())
        if await request.is_disconnected():
            for job in jobs:
                job.abandon()
            gathered.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: nobody awaits it
            raise _ClientGone


def _nth(params: GenParams, i: int) -> GenParams:
    """The settings of choice ``i`` of ``n``: a seeded sampled request gets seed + i, so its choices differ."""
    if i == 0 or params.seed is None or params.temperature <= 0:
        return params
    seed = params.seed + i
    return replace(params, seed=seed if seed < 2**64 else params.seed - i)


def _logprobs(result: Any, shape: Callable[[Any], dict]) -> dict | None:
    return None if result.logprobs is None else shape(result.logprobs)


def _tpot_ms(jobs: list[Job], results: list[Any]) -> float | None:
    """Mean time per output token after the first, over the answers of one request."""
    per = [
        (j.finished - j.first_token) / (r.completion_tokens - 1)
        for j, r in zip(jobs, results, strict=False)
        if j.finished is not None and j.first_token is not None and r.completion_tokens > 1
    ]
    return round(1000.0 * sum(per) / len(per), 3) if per else None


class _Call:
    """One request in flight: what it was, where it went, and its log row."""

    def __init__(self, service: Service, endpoint: str) -> None:
        self.service, self.endpoint = service, endpoint
        self.t0 = time.perf_counter()
        self.rid = new_id("cmpl" if endpoint == "completions" else "chatcmpl")
        self.row: dict[str, Any] = {"ts": time.time(), "request_id": self.rid, "endpoint": endpoint, "stream": 0}
        self.arm: Arm | None = None
        self.req: Any = None

    @property
    def headers(self) -> dict[str, str]:
        out = {"X-Request-Id": self.rid, "X-LLMOps-Deployment": self.service.spec.name}
        if self.arm is not None:
            out.update({"X-LLMOps-Arm": self.arm.label, "X-LLMOps-Version": self.arm.version})
        return out

    @property
    def extra(self) -> dict[str, Any]:
        assert self.arm is not None
        return {
            "deployment": self.service.ref,
            "arm": self.arm.label,
            "version": self.arm.version,
            "fingerprint": self.arm.fingerprint,
        }

    def finish(
        self, status: int, jobs: list[Job] = (), results: list[Any] = (), error: str | None = None, n: int = 1
    ) -> None:
        end = time.perf_counter()
        firsts = [j.first_token for j in jobs if j.first_token is not None]
        starts = [j.started for j in jobs if j.started is not None]
        self.row.update(
            status=status,
            error=error,
            latency_ms=_ms(self.t0, end),
            ttft_ms=_ms(self.t0, min(firsts)) if firsts else (_ms(self.t0, end) if results else None),
            queue_ms=_ms(self.t0, min(starts)) if starts else None,
            tpot_ms=_tpot_ms(jobs, results),
            batch_size=max((j.batch_size for j in jobs), default=None),
            prompt_tokens=sum(r.prompt_tokens for r in results[::n]),  # n choices share one prompt
            completion_tokens=sum(r.completion_tokens for r in results),
            output_text="\n\n".join(r.text for r in results) if results else None,
        )
        try:
            self.service.observe(self.row)
        except Exception:  # bookkeeping must never turn an answered request into a 500
            log.exception("could not record request %s", self.row.get("request_id"))


def build_app(service: Service, on_startup: Callable[[], None] | None = None):
    """The FastAPI app; ``on_startup`` runs once the server accepts connections (the ready file)."""

    @asynccontextmanager
    async def lifespan(app):
        if on_startup is not None:
            on_startup()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(
        title=f"llmops deployment {service.spec.name}",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = {404: "unknown_url", 405: "method_not_allowed"}.get(exc.status_code)
        message = f"unknown request URL: {request.method} {request.url.path}" if exc.status_code == 404 else exc.detail
        return JSONResponse(error_body(str(message), code=code), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse(error_body(str(exc.errors()[:1])), status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        return JSONResponse(error_body(f"internal server error ({type(exc).__name__})", "server_error"), 500)

    @app.get("/health")
    async def health():
        return service.health()

    @app.get("/metrics")
    async def metrics():
        service.refresh_depth()
        body, content_type = service.metrics.render()
        return Response(content=body, headers={"Content-Type": content_type})

    @app.get("/v1/models")
    async def models(request: Request):
        try:
            _check_auth(service, request)
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return {"object": "list", "data": service.models()}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request):
        try:
            _check_auth(service, request)
            for entry in service.models():
                if entry["id"] == model_id:
                    return entry
            raise RequestError(f"the model {model_id!r} does not exist", status=404, code="model_not_found")
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    async def _admin(request: Request, cls: type, action: Callable[[Any], Any]):
        """A route that changes what is served: a key always, a strict body, 4xx/503 JSON errors."""
        try:
            _check_auth(service, request, admin=True)
            return await action(parse_body(cls, await _read_body(request)))
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except ShuttingDown as exc:
            return JSONResponse(error_body(str(exc), "server_error", code="shutting_down"), 503)

    @app.post("/v1/load_lora_adapter")
    async def load_lora_adapter(request: Request):
        return await _admin(request, LoadLoraRequest, lambda req: service.load_adapter(req.lora_name, req.lora_path))

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora_adapter(request: Request):
        return await _admin(request, UnloadLoraRequest, lambda req: service.unload_adapter(req.lora_name))

    @app.post("/v1/feedback")
    async def feedback(request: Request):
        try:
            if service.api_key_sha256:  # open like the other /v1 routes when no key is set
                _check_auth(service, request, admin=True)
            return await run_in_threadpool(store_feedback, service, await _read_body(request))
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await _handle(_Call(service, "completions"), request, CompletionRequest)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await _handle(_Call(service, "chat"), request, ChatRequest)

    async def _handle(call: _Call, request: Request, cls: type):
        jobs: list[Job] = []
        try:
            _check_auth(service, request)
            req = call.req = parse_request(cls, await _read_body(request))
            call.row.update(user=req.user, stream=int(bool(req.stream)))
            arm = call.arm = service.pick(req.model, req.user)
            call.row.update(arm=arm.label, version=arm.version)
            if cls is CompletionRequest:
                inputs, limit, default = service.completion_inputs(arm, req), req.max_tokens, 16
            else:
                inputs, limit, default = (
                    [service.chat_input(arm, req)],
                    req.token_limit,
                    service.spec.default_max_tokens,
                )
            params = service.params(arm, req, [arm.count_tokens(t) for t in inputs], limit, default)
            call.row.update(
                input_chars=sum(len(t) for t in inputs),
                input_text="\n\n".join(inputs),
                outputs=len(inputs) * req.choices,  # texts joined in one row: a dataset from the log skips them
            )
            loop = asyncio.get_running_loop()
            n = req.choices
            jobs = [
                arm.submit(Job(t, _nth(params, i), loop, stream=bool(req.stream))) for t in inputs for i in range(n)
            ]
            service.refresh_depth()
            if req.stream:
                stream = stream_answer(call, jobs, n)
                return StreamingResponse(stream, media_type="text/event-stream", headers=call.headers)
            results = await _answers(request, jobs)
        except _ClientGone:  # nobody will read an answer: its rows stopped generating
            call.finish(499, jobs, error="client_disconnected")
            return Response(status_code=499)
        except RequestError as exc:
            call.finish(exc.status, jobs, error=exc.code or exc.type)
            return JSONResponse(exc.body(), status_code=exc.status, headers=call.headers)
        except ShuttingDown as exc:
            call.finish(503, jobs, error="shutting_down")
            return JSONResponse(error_body(str(exc), "server_error", code="shutting_down"), 503, call.headers)
        except Exception as exc:  # generation itself failed: an answer, never a dropped connection
            call.finish(500, jobs, error=type(exc).__name__)
            return JSONResponse(error_body(f"generation failed ({type(exc).__name__}: {exc})", "server_error"), 500)
        call.finish(200, jobs, results, n=n)
        headers = {**call.headers, "X-LLMOps-Batch-Size": str(max(j.batch_size for j in jobs))}
        usage = (sum(r.prompt_tokens for r in results[::n]), sum(r.completion_tokens for r in results))
        model = call.arm.version
        if cls is CompletionRequest:
            choices = [
                {
                    "text": r.text,
                    "index": i,
                    "logprobs": _logprobs(r, completion_logprobs),
                    "finish_reason": r.finish_reason,
                }
                for i, r in enumerate(results)
            ]
            return JSONResponse(completion_body(call.rid, model, choices, usage, call.extra), headers=headers)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": r.text},
                "logprobs": _logprobs(r, chat_logprobs),
                "finish_reason": r.finish_reason,
            }
            for i, r in enumerate(results)
        ]
        return JSONResponse(chat_body(call.rid, model, choices, usage, call.extra), headers=headers)

    return app
