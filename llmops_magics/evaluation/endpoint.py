"""An OpenAI-compatible endpoint as an eval target (a ``%deploy`` deployment, vLLM, any ``/v1`` server).

Text prompts go to ``POST /v1/completions``, chat prompts to ``POST /v1/chat/completions``;
requests run concurrently, at most ``concurrency`` at a time, on threads (a notebook
already runs an event loop, so no ``asyncio.run``). Connection failures, 429 and 5xx
answers are retried up to ``RETRIES`` times with a jittered back-off (a 429's ``Retry-After``
honoured, within a bound); anything else fails fast with an
``EndpointError`` naming the URL and the server's message. The API key is sent as a
bearer token and never stored.

With ``stream`` on (the ``ttft`` metric, ``%model compare``) each request asks for
server-sent events (``stream: true`` with ``stream_options.include_usage``) and the
time to its first text chunk is the answer's time to first token; a server that
answers a stream request with plain JSON is read as such (no time to first token).

``GET /v1/models`` is read once: its first entry names the model requests ask for, and
a ``%deploy`` server's entries carry an ``llmops`` object naming the deployment and the
artifacts it serves (see ``deployment_behind``), which gives the eval its lineage.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import json
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import EndpointError, ValidationError
from .generations import GenParams, GenRecord

__all__ = ["EndpointBackend", "is_endpoint", "normalize_url"]

RETRIES = 3
RETRIED = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0  # seconds; a server asking for longer is reported instead of waited for


def _snippet(text: str) -> str:
    return repr(" ".join(text.split())[:200])


def _hint(status: int | None) -> str:
    if status in (401, 403):
        return "check the API key (--api-key-env, or key_env of the registered model)"
    if status == 404:
        return "check the URL (the base URL, with or without /v1) and the model name (--endpoint-model)"
    if status == 400 or status == 422:
        return "the server refused the request's parameters"
    return "the server is failing or overloaded; try again later or lower --batch-size"


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def is_endpoint(target: object) -> bool:
    return isinstance(target, str) and target.strip().lower().startswith(("http://", "https://"))


def normalize_url(url: str) -> str:
    """``http://host:8000/v1/`` and ``http://host:8000`` are the same endpoint."""
    url = url.strip().rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


class EndpointBackend:
    """Generation through HTTP; see the module docstring."""

    kind = "endpoint"
    identity = None  # never cached

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        backoff: float = 0.5,
        stream: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self.stream = stream
        self.api_key = api_key
        self.concurrency = max(1, int(concurrency))
        self.timeout = timeout
        self.backoff = backoff
        self._model = model
        self._client: Any = None
        self._listed: list[dict[str, Any]] | None = None

    @property
    def label(self) -> str:
        return self.url

    def _http(self):
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            self._client = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout, limits=limits)
        return self._client

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> dict[str, Any]:
        """One call, retried where waiting can help: 408, 429 (after its ``Retry-After``), 5xx and a
        refused or reset connection, with jittered exponential backoff, at most ``RETRIES`` times.
        A timeout, 401/403, 404 and a malformed answer fail at once: repeating them cannot succeed
        sooner than the person reading the error fixes them."""
        import httpx

        where = f"{method} {self.url}{path}"
        for attempt in range(RETRIES + 1):
            wait = self.backoff * (2**attempt) * random.uniform(0.5, 1.0)
            try:
                if stream:
                    with self._http().stream(method, path, json=body, headers=headers) as resp:
                        if resp.status_code < 400:
                            return self._events(resp, where)
                        resp.read()  # an error's body, for the message below
                else:
                    resp = self._http().request(method, path, json=body, headers=headers)
            except httpx.TimeoutException:
                raise EndpointError(
                    f"{where}: no answer within {self.timeout:g} s; raise the timeout or ask for fewer tokens"
                ) from None
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except ValueError:
                        raise EndpointError(
                            f"{where}: HTTP {resp.status_code} with a body that is not JSON ({_snippet(resp.text)}); "
                            "is this an OpenAI-compatible /v1 endpoint?"
                        ) from None
                last = f"HTTP {resp.status_code} {_snippet(resp.text)}"
                if resp.status_code not in RETRIED:
                    raise EndpointError(f"{where}: {last}; {_hint(resp.status_code)}") from None
                after = _retry_after(resp.headers.get("retry-after"))
                if after is not None:
                    if after > MAX_RETRY_AFTER:
                        raise EndpointError(
                            f"{where}: {last}; the server asks to wait {after:g} s, longer than {MAX_RETRY_AFTER:g} s"
                        )
                    wait = after
            if attempt < RETRIES:
                time.sleep(wait)
        raise EndpointError(f"{where}: {last} after {RETRIES + 1} attempts; {_hint(None)}")

    def _events(self, resp: Any, where: str) -> dict[str, Any]:
        """A streamed answer as ``{"chunks": [...], "first": perf_counter at the first text}``; plain JSON as is."""
        if resp.headers.get("content-type", "").startswith("application/json"):
            resp.read()
            try:
                return resp.json()
            except ValueError:
                raise EndpointError(f"{where}: HTTP {resp.status_code} with a body that is not JSON") from None
        chunks: list[dict[str, Any]] = []
        first = None
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, comments, event names
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise EndpointError(
                    f"{where}: a server-sent event that is not JSON ({_snippet(data)}); "
                    "is this an OpenAI-compatible /v1 endpoint?"
                ) from None
            if not isinstance(chunk, dict):
                raise EndpointError(f"{where}: a server-sent event that is not a JSON object ({_snippet(data)})")
            if first is None and _chunk_text(chunk):
                first = time.perf_counter()
            chunks.append(chunk)
        return {"chunks": chunks, "first": first}

    def listed_models(self) -> list[dict[str, Any]]:
        """The entries of the server's ``GET /v1/models``, read once; empty when it cannot be read.

        One attempt, no retries: this runs while targets are resolved, before ``check``
        reports an unreachable URL, and an unlisted model is no error.
        """
        if self._listed is None:
            import httpx

            try:
                resp = self._http().get("/v1/models")
                data = resp.json() if resp.status_code < 400 else {}
            except (httpx.HTTPError, ValueError):
                data = {}
            listed = data.get("data") if isinstance(data, Mapping) else None
            self._listed = [dict(e) for e in listed if isinstance(e, Mapping)] if isinstance(listed, list) else []
        return self._listed

    @property
    def model(self) -> str:
        """The model name sent in requests: the one given, else the first the server lists."""
        if self._model is None:
            listed = self.listed_models()
            self._model = str(listed[0].get("id")) if listed else "default"
        return self._model

    def check(self) -> None:
        """Fail early (before any work) when nothing answers at the URL."""
        import httpx

        try:
            self._http().get("/v1/models")
        except httpx.HTTPError as exc:
            raise EndpointError(f"cannot reach endpoint {self.url}: {type(exc).__name__}: {exc}") from None

    def _one(self, payload: str | Sequence[Mapping[str, str]], params: GenParams) -> GenRecord:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        chat = not isinstance(payload, str)
        if chat:
            body["messages"] = [dict(m) for m in payload]
        else:
            body["prompt"] = payload
        started = time.perf_counter()
        with self._span(chat, body, payload) as span:
            path = "/v1/chat/completions" if chat else "/v1/completions"
            data = self._request("POST", path, body, span.headers(), stream=self.stream)
            seconds = time.perf_counter() - started
            ttft = None
            if "chunks" in data:
                ttft = data["first"] - started if data["first"] is not None else None
                data = _joined(data["chunks"], chat)
            try:
                choice = data["choices"][0]
                text = choice["message"]["content"] if chat else choice["text"]
            except (KeyError, IndexError, TypeError):
                raise EndpointError(f"{self.url} answered without choices[0] text: {str(data)[:200]}") from None
            usage = data.get("usage") or {}
            try:
                tokens = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            except (AttributeError, TypeError, ValueError):
                raise EndpointError(
                    f"{self.url} answered with a malformed usage ({str(usage)[:100]}); "
                    "is it an OpenAI-compatible server?"
                ) from None
            record = GenRecord(
                text=str(text or ""),
                prompt_tokens=tokens[0],
                completion_tokens=tokens[1],
                finish_reason=str(choice.get("finish_reason") or "stop"),
                latency_s=seconds,
                cached=False,
                ttft_s=ttft,
            )
            span.response(
                finish_reasons=[record.finish_reason],
                input_tokens=record.prompt_tokens,
                output_tokens=record.completion_tokens,
                outputs=[record.text],
                model=data.get("model"),
                response_id=data.get("id"),
            )
        return record

    def _span(self, chat: bool, body: Mapping[str, Any], payload: Any):
        """The client span of one request (``chat MODEL`` / ``text_completion MODEL``, provider ``openai``)."""
        from urllib.parse import urlsplit

        from ..tracing.conventions import OP_CHAT, OP_TEXT_COMPLETION, PROVIDER_OPENAI
        from ..tracing.spans import model_call

        where = urlsplit(self.url)
        return model_call(
            OP_CHAT if chat else OP_TEXT_COMPLETION,
            body["model"],
            provider=PROVIDER_OPENAI,
            request=body,
            inputs=payload if chat else [payload],
            kind="client",
            server=(where.hostname or "", where.port),
        )

    def generate(self, payloads: Sequence[Any], params: GenParams) -> list[GenRecord]:
        if not payloads:
            return []
        # each request runs in the caller's context, so its span is a child of the eval's
        tasks = [(contextvars.copy_context(), p) for p in payloads]
        with cf.ThreadPoolExecutor(max_workers=min(self.concurrency, len(payloads))) as pool:
            return list(pool.map(lambda t: t[0].run(self._one, t[1], params), tasks))

    def log_likelihoods(self, payloads: Sequence[Any], continuations: Sequence[str]):
        raise ValidationError(f"{self.url} is an endpoint; perplexity needs a local model target")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _first_choice(chunk: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        return choices[0]
    return None


def _chunk_text(chunk: Mapping[str, Any]) -> str:
    """The text a stream chunk adds (``choices[0].text``, or ``.delta.content`` for chat); "" for none."""
    choice = _first_choice(chunk)
    if choice is None:
        return ""
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, Mapping) else choice.get("text")
    return text if isinstance(text, str) else ""


def _joined(chunks: Sequence[Mapping[str, Any]], chat: bool) -> dict[str, Any]:
    """Stream chunks as the one answer a non-streamed request gets (text, finish reason, usage, id, model).

    No chunk with a choice reads as an answer without ``choices[0]`` (an ``EndpointError``)."""
    choices = [c for c in (_first_choice(c) for c in chunks) if c is not None]
    if not choices:
        return {"chunks_without_choices": len(chunks)}
    text = "".join(_chunk_text(c) for c in chunks)
    finish = next((c["finish_reason"] for c in reversed(choices) if c.get("finish_reason")), None)
    usage = next((c["usage"] for c in reversed(chunks) if isinstance(c.get("usage"), Mapping)), None)
    choice: dict[str, Any] = {"message": {"content": text}} if chat else {"text": text}
    choice["finish_reason"] = finish
    head = chunks[0]
    return {"id": head.get("id"), "model": head.get("model"), "choices": [choice], "usage": usage or {}}
