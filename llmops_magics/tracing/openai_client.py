"""``%trace on``: spans for calls made with the official ``openai`` client, undone by ``%trace off``.

``instrument_openai()`` replaces ``create`` on the client's four completion resources
(chat and text, sync and async) with a wrapper, keeping the functions it replaced;
``uninstrument_openai()`` puts those exact functions back, so the classes are as they
were before (``Completions.__dict__["create"] is`` the original again). A wrapper that
some object captured while tracing was on (``with_raw_response`` binds ``create`` once)
checks the switch on every call and passes straight through once it is off: nothing
traced is left behind. It passes straight through as well while tracing is paused or
disabled (``paused()``, ``OTEL_SDK_DISABLED``): no span to fill, so none of its work is
done. Nothing is patched at import or at ``%load_ext``.

Each call is a client span in the GenAI conventions (``chat gpt-4o-mini``: request
parameters, finish reasons, token usage, the server's address), a child of whatever span
is current (a ``trace()`` block, a ``@traced`` function); its request carries
``traceparent``, so a ``%deploy`` server's span of it joins the same trace. Messages that
came from ``PromptVersion.render`` name their prompt version. A streamed answer's span
ends when the stream is used up or closed; usage is recorded when the server sends it
(``stream_options={"include_usage": True}``).

The span is made off the calling thread when that changes nothing visible (``deferred``:
the ids and ``traceparent`` are chosen here, the SDK span is made from them later, and
every reader drains the queue first); otherwise here, around the call (``model_call``).
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ValidationError
from .content import prompt_ref_of
from .conventions import OP_CHAT, OP_TEXT_COMPLETION, PROVIDER_OPENAI
from .deferred import begin as _defer
from .provider import tracing_for as _tracing_for
from .spans import model_call

__all__ = ["instrument_openai", "uninstrument_openai", "is_instrumented", "TARGETS"]

# (module, class, operation, async)
TARGETS = (
    ("openai.resources.chat.completions", "Completions", OP_CHAT, False),
    ("openai.resources.chat.completions", "AsyncCompletions", OP_CHAT, True),
    ("openai.resources.completions", "Completions", OP_TEXT_COMPLETION, False),
    ("openai.resources.completions", "AsyncCompletions", OP_TEXT_COMPLETION, True),
)
_REQUEST_KEYS = ("temperature", "max_tokens", "seed", "top_p", "stop", "n")

_originals: dict[type, Callable] = {}
_wrappers: dict[type, Callable] = {}  # what ``%trace on`` put in place, to take back only that
_lock = threading.Lock()
_on = False
_generation = 0  # which ``%trace on`` the wrappers in place belong to; a wrapper of an earlier one only passes calls on
_content_before: list[tuple[Any, bool]] = []


class TraceStatus:
    """What ``%trace on|off`` did, in one line."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def is_instrumented() -> bool:
    return _on


def _classes() -> list[tuple[type, str, bool]]:
    try:
        out = []
        for module, name, operation, is_async in TARGETS:
            out.append((getattr(importlib.import_module(module), name), operation, is_async))
        return out
    except ImportError:
        raise ValidationError(
            "%trace on traces the openai client, which is not installed (pip install openai)"
        ) from None


def instrument_openai(*, capture_content: bool | None = None) -> TraceStatus:
    """Trace every call of the ``openai`` client's chat and text completions until ``uninstrument_openai()``.

    ``capture_content=True`` records prompts and answers in the spans until then, whatever
    ``[tool.llmops.tracing] capture_content`` says.
    """
    global _on
    from .provider import tracing_for

    tracing = tracing_for()
    if tracing is None:
        raise ValidationError(
            "tracing is off ([tool.llmops.tracing] enabled = false, or OTEL_SDK_DISABLED); nothing would be recorded"
        )
    with _lock:
        for cls, operation, is_async in _classes():
            if cls not in _originals:
                original = cls.__dict__["create"]
                _originals[cls] = original
                cls.create = _wrappers[cls] = _wrap(original, operation, is_async, _generation)
        if capture_content is not None:
            _content_before.append((tracing, tracing.capture_content))
            tracing.capture_content = capture_content
        _on = True
    content = "with" if tracing.capture_content else "without"
    return TraceStatus(f"tracing openai client calls into {tracing.store.path} ({content} prompts and answers)")


def uninstrument_openai() -> TraceStatus:
    """Put the ``openai`` client back exactly as it was; already traced calls stay in the store."""
    global _on, _generation
    from .deferred import drain

    with _lock:
        restored = len(_originals)
        for cls, original in _originals.items():
            if cls.__dict__.get("create") is _wrappers.get(cls):
                cls.create = original
            # else another tool wrapped ours since: its wrapper stays, and ours inside it passes calls on
        _originals.clear()
        _wrappers.clear()
        _generation += 1
        while _content_before:
            tracing, before = _content_before.pop()
            tracing.capture_content = before
        _on = False
    drain()  # the calls traced so far reach the processors as spans now, not after the worker's next pass
    return TraceStatus(
        "openai client calls are no longer traced" if restored else "openai client calls were not traced"
    )


def _given(value: Any) -> bool:
    """``omit`` / ``NOT_GIVEN`` mean "not sent"; anything else was asked for."""
    return value is not None and type(value).__name__ not in ("Omit", "NotGiven")


_server: tuple[Any, tuple[str, int | None] | None] = (None, None)  # (the last base URL seen, its host and port)


def _server_of(resource: Any) -> tuple[str, int | None] | None:
    """``server.address`` / ``server.port`` of the client's base URL, read again only when the URL changes."""
    global _server
    try:
        url = resource._client.base_url
    except AttributeError:
        return None
    seen, server = _server
    if url is not seen:
        try:
            server = (str(url.host), url.port)
        except AttributeError:
            server = None
        _server = (url, server)
    return server


def _describe(resource: Any, operation: str, kwargs: dict[str, Any], content: bool) -> dict[str, Any]:
    """``model_call``'s arguments for this call, read now (the caller may change its messages once it returns)."""
    request = {k: kwargs[k] for k in _REQUEST_KEYS if k in kwargs and _given(kwargs[k])}
    if "max_tokens" not in request and _given(kwargs.get("max_completion_tokens")):
        request["max_tokens"] = kwargs["max_completion_tokens"]
    ref = None
    if operation == OP_CHAT:
        messages = kwargs.get("messages")
        if messages is not None and not isinstance(messages, (list, tuple)):
            messages = kwargs["messages"] = list(messages)  # an iterator is read once: the request gets the list
        inputs = list(messages or ())
        ref = prompt_ref_of(messages)  # ``PromptVersion.render`` marks the list itself
        if content:  # a chat loop appends to the history, and may edit a message, after the call
            inputs = [dict(m) if isinstance(m, Mapping) else m for m in inputs]
    else:
        prompt = kwargs.get("prompt")
        inputs = list(prompt) if isinstance(prompt, list) else [prompt]
    return {  # ``model_call`` looks for a prompt version among the inputs when ``prompt_ref`` is None
        "operation": operation,
        "model": str(kwargs.get("model") or "unknown"),
        "provider": PROVIDER_OPENAI,
        "request": request,
        "inputs": inputs,
        "prompt_ref": ref,
        "kind": "client",
        "server": _server_of(resource),
    }


def _with_headers(kwargs: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """The call's keywords with ``traceparent`` (and ``tracestate``) added to its ``extra_headers``."""
    if not headers:
        return kwargs
    extra = kwargs.get("extra_headers")
    merged = {**(extra if isinstance(extra, Mapping) else {}), **headers}
    return {**kwargs, "extra_headers": merged}


def _record(span: Any, result: Any, operation: str) -> None:
    """Finish reasons, usage and (when captured) the answers of a completed response."""
    choices = getattr(result, "choices", None)
    if choices is None:
        return
    usage = getattr(result, "usage", None)
    texts = (
        [
            (getattr(getattr(c, "message", None), "content", None) if operation == OP_CHAT else getattr(c, "text", None))
            or ""
            for c in choices
        ]
        if span.captures_content
        else None
    )  # fmt: skip
    span.response(
        finish_reasons=[str(getattr(c, "finish_reason", "") or "") for c in choices],
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        outputs=texts,
        model=getattr(result, "model", None),
        response_id=getattr(result, "id", None),
    )


def _record_then_exit(scope: Any, span: Any, result: Any, operation: str) -> None:
    """Record the response and end the span; a response of an unexpected shape costs its attributes, never the call."""
    try:
        _record(span, result, operation)
    except Exception:  # the caller gets its answer whatever we could read from it
        pass
    finally:
        scope.__exit__(None, None, None)


_UNREADABLE = object()  # a tracing that could not be set up: the synchronous path warns once and records nothing


def _tracing_now(generation: int) -> Any:
    """The tracing this call goes to; ``None``: off, paused or a wrapper left over, the call as if never wrapped."""
    if not _on or generation != _generation:
        return None
    try:
        return _tracing_for()
    except Exception:  # not a reason to fail the call
        return _UNREADABLE


def _deferred(tracing: Any, resource: Any, operation: str, kwargs: dict[str, Any]) -> Any:
    """A ``deferred.Pending`` when this call's span can be made off the calling thread, else ``None``."""
    if tracing is _UNREADABLE:
        return None
    return _defer(tracing, _describe(resource, operation, kwargs, tracing.capture_content))


def _answered(call: Any, result: Any, operation: str, stream: bool, is_async: bool) -> Any:
    """A stream keeps the span open until it is read to the end; any other answer ends it now."""
    if stream:
        from .streams import TracedAsyncStream, TracedStream

        return (TracedAsyncStream if is_async else TracedStream)(result, call, operation)
    call.answered(_record, result, operation)
    return result


def _synchronous(tracing: Any, resource: Any, operation: str, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The span made here and now (``model_call``): ``(scope, span)``."""
    content = tracing is not _UNREADABLE and tracing.capture_content
    scope = model_call(**_describe(resource, operation, kwargs, content))
    return scope, scope.__enter__()


def _ended(scope: Any, span: Any, result: Any, operation: str, stream: bool, is_async: bool) -> Any:
    if stream:
        from .streams import TracedAsyncStream, TracedStream

        scope.leave()
        return (TracedAsyncStream if is_async else TracedStream)(result, span, operation)
    _record_then_exit(scope, span, result, operation)
    return result


def _wrap(original: Callable, operation: str, is_async: bool, generation: int) -> Callable:
    """Either path: ``deferred`` (ids and ``traceparent`` here, the span made later) or ``model_call`` (all here)."""
    if is_async:

        @functools.wraps(original)
        async def traced_create_async(self, *args: Any, **kwargs: Any) -> Any:
            tracing = _tracing_now(generation)
            if tracing is None:
                return await original(self, *args, **kwargs)
            call = _deferred(tracing, self, operation, kwargs)
            if call is not None:
                try:
                    result = await original(self, *args, **_with_headers(kwargs, call.headers))
                except BaseException as exc:
                    call.finish(exc)
                    raise
                return _answered(call, result, operation, kwargs.get("stream") is True, True)
            scope, span = _synchronous(tracing, self, operation, kwargs)
            try:
                result = await original(self, *args, **_with_headers(kwargs, span.headers()))
            except BaseException as exc:
                scope.__exit__(type(exc), exc, exc.__traceback__)
                raise
            return _ended(scope, span, result, operation, kwargs.get("stream") is True, True)

        return traced_create_async

    @functools.wraps(original)
    def traced_create(self, *args: Any, **kwargs: Any) -> Any:
        tracing = _tracing_now(generation)
        if tracing is None:
            return original(self, *args, **kwargs)
        call = _deferred(tracing, self, operation, kwargs)
        if call is not None:
            try:
                result = original(self, *args, **_with_headers(kwargs, call.headers))
            except BaseException as exc:
                call.finish(exc)
                raise
            return _answered(call, result, operation, kwargs.get("stream") is True, False)
        scope, span = _synchronous(tracing, self, operation, kwargs)
        try:
            result = original(self, *args, **_with_headers(kwargs, span.headers()))
        except BaseException as exc:
            scope.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return _ended(scope, span, result, operation, kwargs.get("stream") is True, False)

    return traced_create
