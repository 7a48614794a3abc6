"""Making spans: ``model_call()`` for every model call, ``operation_span()`` for the project's operations.

``model_call`` is what generation, eval batches, the judge, endpoint requests and the
``openai`` client wrapper share: a span named ``"{operation} {model}"`` with the GenAI
request attributes, then ``call.response(...)`` for finish reasons and token usage, and
``error.type`` when the call raises (the error still reaches the caller unchanged).

Links: a span made while a prompt version or a model version is in play (an eval's
target, ``api.trace(..., prompt=...)``, a rendered prompt passed as input) carries its
reference, and spans made inside it inherit the reference unless they name their own, so
each generation of an eval batch names the prompt version that made its input.

Content (prompts, answers, a traced function's arguments and result) is recorded only
when the workspace's tracing captures content (``settings``), cut to
``max_content_chars`` per text. Without it nothing here serialises any content.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from . import conventions as C
from .content import attribute_value, cut, genai_messages, prompt_ref_of
from .provider import Tracing, active, tracing_for

__all__ = ["Span", "CallSpan", "model_call", "operation_span", "prompt_ref_of", "cut", "set_root_calls"]

_inherited: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "llmops_trace_links", default=MappingProxyType({})
)
_root_calls = True
_REQUEST = {
    "temperature": C.GEN_AI_REQUEST_TEMPERATURE,
    "max_tokens": C.GEN_AI_REQUEST_MAX_TOKENS,
    "seed": C.GEN_AI_REQUEST_SEED,
    "top_p": C.GEN_AI_REQUEST_TOP_P,
    "stop": C.GEN_AI_REQUEST_STOP_SEQUENCES,
    "n": C.GEN_AI_REQUEST_CHOICE_COUNT,
}


def set_root_calls(allowed: bool) -> None:
    """Whether a model call outside any span starts a trace of its own (the model server says no:
    its batches serve requests whose own spans already stand for them)."""
    global _root_calls
    _root_calls = allowed


class Span:
    """A live span (or, with tracing off, one that records nothing): ``set``, ``record_input``,
    ``record_output``; ``trace_id`` names the trace for ``%trace show``."""

    __slots__ = ("_span", "_tracing")

    def __init__(self, span: Any = None, tracing: Tracing | None = None) -> None:
        self._span, self._tracing = span, tracing

    @property
    def recording(self) -> bool:
        return self._span is not None

    @property
    def trace_id(self) -> str | None:
        return None if self._span is None else f"{self._span.get_span_context().trace_id:032x}"

    @property
    def span_id(self) -> str | None:
        return None if self._span is None else f"{self._span.get_span_context().span_id:016x}"

    @property
    def captures_content(self) -> bool:
        return self._tracing is not None and self._tracing.capture_content

    def set(self, attributes: Mapping[str, Any] | None = None, /, **more: Any) -> Span:
        """Set attributes (values that are not text, numbers or lists of them are stored as JSON)."""
        if self._span is not None:
            limit = self._tracing.max_chars  # type: ignore[union-attr]
            for key, value in {**(attributes or {}), **more}.items():
                if value is not None:
                    self._span.set_attribute(key, attribute_value(value, limit))
        return self

    def record_input(self, value: Any) -> Span:
        """The span's input, when content is captured."""
        if self.captures_content:
            self.set({C.LLMOPS_INPUT: value})
        return self

    def record_output(self, value: Any) -> Span:
        """The span's output, when content is captured."""
        if self.captures_content:
            self.set({C.LLMOPS_OUTPUT: value})
        return self

    def headers(self) -> dict[str, str]:
        """``traceparent`` (W3C Trace Context) for a request this span makes: the server's span of
        the request (a ``%deploy`` server) then joins this trace.

        Written here rather than by ``TraceContextTextMapPropagator().inject`` (a new propagator,
        a context and two look-ups per request): the same two headers, the same format
        (``tests/test_tracing_openai.py`` checks them against the propagator's ``extract``).
        """
        if self._span is None:
            return {}
        ctx = self._span.get_span_context()
        if not ctx.is_valid:
            return {}
        carrier = {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"}
        if ctx.trace_state:
            carrier["tracestate"] = ctx.trace_state.to_header()
        return carrier

    def _failed(self, exc: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute(C.ERROR_TYPE, type(exc).__qualname__)
        self._span.set_status(Status(StatusCode.ERROR, cut(f"{type(exc).__name__}: {exc}", 300)))


class CallSpan(Span):
    """The span of one model call; ``response(...)`` records what came back."""

    __slots__ = ()

    def _inputs(self, inputs: Sequence[Any]) -> None:
        limit = self._tracing.max_chars  # type: ignore[union-attr]
        messages = genai_messages(inputs)
        for m in messages:
            for part in m["parts"]:
                part["content"] = cut(part["content"], limit)
        self._span.set_attribute(C.GEN_AI_INPUT_MESSAGES, json.dumps(messages, default=str))

    def response(
        self,
        *,
        finish_reasons: Sequence[str] | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        outputs: Sequence[str] | None = None,
        model: str | None = None,
        response_id: str | None = None,
    ) -> None:
        span = self._span
        if span is None:
            return
        attrs: dict[str, Any] = {}
        if finish_reasons:
            attrs[C.GEN_AI_RESPONSE_FINISH_REASONS] = [str(r) for r in finish_reasons]
        if input_tokens is not None:
            attrs[C.GEN_AI_USAGE_INPUT_TOKENS] = int(input_tokens)
        if output_tokens is not None:
            attrs[C.GEN_AI_USAGE_OUTPUT_TOKENS] = int(output_tokens)
        if model:
            attrs[C.GEN_AI_RESPONSE_MODEL] = str(model)
        if response_id:
            attrs[C.GEN_AI_RESPONSE_ID] = str(response_id)
        span.set_attributes(attrs)
        if outputs is not None and self.captures_content:
            reasons = list(finish_reasons or [])
            messages = [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": cut(text, self._tracing.max_chars)}],  # type: ignore[union-attr]
                    "finish_reason": reasons[i] if i < len(reasons) else None,
                }
                for i, text in enumerate(outputs)
            ]
            span.set_attribute(C.GEN_AI_OUTPUT_MESSAGES, json.dumps(messages))

    def finish(self, exc: BaseException | None = None) -> None:
        """End the span (a streamed answer, once read); ``exc`` records ``error.type``."""
        if self._span is not None:
            _Scope.finish(self, exc)


def call_attributes(attributes: dict[str, Any], inherited: Mapping[str, str]) -> dict[str, Any]:
    """A model call's attributes with the links it inherits and its prompt's name (``deferred`` shares it)."""
    for key, value in inherited.items():
        attributes.setdefault(key, value)
    if C.LLMOPS_PROMPT_REF in attributes:
        attributes[C.GEN_AI_PROMPT_NAME] = attributes[C.LLMOPS_PROMPT_REF].split("://")[-1].rsplit("/", 1)[0]
    return attributes


_otel: Any = None
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        import warnings

        from .settings import TracingWarning

        _warned.add(message)
        warnings.warn(message, TracingWarning, stacklevel=3)


def _sdk() -> Any:
    """``(context module, trace module, kinds by name)``, imported once, on the first span."""
    global _otel
    if _otel is None:
        from opentelemetry import context as otel_context
        from opentelemetry import trace as otel_trace

        kinds = {k.name.lower(): k for k in otel_trace.SpanKind}
        _otel = (otel_context, otel_trace, kinds)
    return _otel


class _Scope:
    """A span made current for a ``with`` block: a class, not a generator, since it runs on every model call."""

    __slots__ = ("_state", "attributes", "cls", "context", "inputs", "kind", "links", "name", "root", "workspace")

    def __init__(
        self,
        cls: type[Span],
        name: str,
        attributes: dict[str, Any],
        *,
        kind: str = "internal",
        workspace: Any = None,
        root: bool = True,
        links: Mapping[str, str] | None = None,
        context: Any = None,
        inputs: Sequence[Any] | None = None,
    ) -> None:
        self.cls, self.name, self.attributes, self.kind = cls, name, attributes, kind
        self.workspace, self.root, self.links, self.context, self.inputs = workspace, root, links, context, inputs
        self._state: tuple | None = None

    def __enter__(self) -> Any:
        try:
            tracing = tracing_for(self.workspace)
        except Exception as exc:  # a bad [tool.llmops.tracing] or home costs the span, never the call
            _warn_once(f"tracing is off for this call: {type(exc).__name__}: {exc}")
            return self.cls()
        if tracing is None:
            return self.cls()
        otel_context, otel_trace, kinds = _sdk()
        if not self.root and self.context is None and not otel_trace.get_current_span().get_span_context().is_valid:
            return self.cls()
        attributes = self.attributes
        inherited = _inherited.get()
        linked = None
        if self.links is not None:  # this span's links hold for it and everything inside it; None unsets one
            inherited = {k: v for k, v in {**inherited, **self.links}.items() if v}
            linked = _inherited.set(inherited)
        if self.cls is CallSpan:
            call_attributes(attributes, inherited)
        else:
            for key, value in inherited.items():
                attributes.setdefault(key, value)
        span = tracing.tracer.start_span(self.name, context=self.context, kind=kinds[self.kind], attributes=attributes)
        handle = self.cls(span, tracing)
        token = chosen = None
        if self.cls is not CallSpan:  # a model call is a leaf: nothing is made inside it, so it need not be current
            token = otel_context.attach(otel_trace.set_span_in_context(span, self.context))
            chosen = active.set(tracing)
        self._state = (handle, token, chosen, linked)
        if self.inputs is not None and tracing.capture_content:
            handle._inputs(self.inputs)
        return handle

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        handle = self.leave()
        if handle is not None:
            self.finish(handle, exc)
        return False

    def leave(self) -> Any:
        """Stop being the current span, without ending it (a streamed answer ends it later); the handle."""
        if self._state is None:
            return None
        handle, token, chosen, linked = self._state
        self._state = None
        if linked is not None:
            _inherited.reset(linked)
        if token is not None:
            active.reset(chosen)
            _sdk()[0].detach(token)
        return handle

    @staticmethod
    def finish(handle: Any, exc: BaseException | None = None) -> None:
        """End the span (``error.type`` and an error status when ``exc`` is given)."""
        if exc is not None:
            handle._failed(exc)
        handle._span.end()


def operation_span(
    operation: str, name: str, *, workspace: Any = None, links: Mapping[str, str] | None = None, **attributes: Any
):
    """A span for one of the project's operations (an eval run, a judge pass, a comparison).

    ``links`` (``llmops.prompt.ref``, ``llmops.model.ref``) hold for this span and every span
    inside it that names none of its own; a ``None`` value stops one inherited from outside.
    """
    attrs = {C.LLMOPS_OPERATION: operation, **{k: v for k, v in attributes.items() if v is not None}}
    return _Scope(Span, name, attrs, workspace=workspace, links=links)


def model_call(
    operation: str,
    model: str,
    *,
    provider: str,
    request: Mapping[str, Any] | None = None,
    inputs: Sequence[Any] | None = None,
    prompt_ref: str | None = None,
    model_ref: str | None = None,
    kind: str = "internal",
    server: tuple[str, int | None] | None = None,
    workspace: Any = None,
    context: Any = None,
):
    """The span of one model call (see the module docstring); a context manager yielding a ``CallSpan``.

    ``inputs``: the prompts (text) or messages (chat) sent, recorded only when content is
    captured; a rendered prompt among them supplies ``prompt_ref``.
    """
    attrs: dict[str, Any] = {
        C.GEN_AI_OPERATION_NAME: operation,
        C.GEN_AI_PROVIDER_NAME: provider,
        C.GEN_AI_REQUEST_MODEL: str(model),
    }
    for key, value in (request or {}).items():
        if value is not None and key in _REQUEST:
            if key == "stop":
                value = [value] if isinstance(value, str) else [str(s) for s in value]
                if not value:
                    continue
            attrs[_REQUEST[key]] = value
    ref = prompt_ref or (prompt_ref_of(inputs) if inputs is not None else None)
    if ref:
        attrs[C.LLMOPS_PROMPT_REF] = ref
    if model_ref:
        attrs[C.LLMOPS_MODEL_REF] = model_ref
    if server is not None:
        attrs[C.SERVER_ADDRESS] = server[0]
        if server[1] is not None:
            attrs[C.SERVER_PORT] = int(server[1])
    return _Scope(
        CallSpan,
        f"{operation} {model}",
        attrs,
        kind=kind,
        workspace=workspace,
        root=_root_calls,
        context=context,
        inputs=inputs,
    )
