"""Client spans made off the calling thread: the ``openai`` wrapper hands each call over as plain data.

Why: a call to a local server takes a few milliseconds, and the SDK's work for one span
(``start_span``: parent look-up, sampler, attribute checks, the span object; ``end``: the
processors) costs 50-150 µs on a thread whose caches went cold during the network wait:
more than 2% of the call. So the calling thread does only what the request needs: the
start time, the span's ids (the trace's from the parent, or the provider's id generator;
the span's from the id generator), the sampling decision the SDK would make, and
``traceparent``. After the answer it queues one ``Pending`` (ids, times, request, answer,
parent context, error), and a background thread turns it into an ordinary SDK span:
``start_span`` of a copy of the tracer whose id generator replays the chosen ids, with the
measured start and end times, so processors and exporters see a normal span whose ids
are those the server received.

Only where that changes nothing anyone can see: every processor of the provider takes
spans late anyway (ours, the SDK's ``BatchSpanProcessor``), the sampler is one whose
decision can be reproduced here (static, trace-id ratio, parent-based over those), and
the tracer is enabled. Otherwise (a ``SimpleSpanProcessor``, which promises an exported
span when it ends; a user's own processor or sampler) the wrapper keeps the synchronous
path. Readers see queued spans first: ``export.flush_local`` (``%trace show|list``,
``Tracing.flush``, exit), ``provider.force_flush``/``shutdown`` (``export.DeferredSpans``
comes first among the processors), and ``%trace off`` all ``drain()`` the queue.
The queue is bounded: past ``MAX_PENDING`` a call makes its span itself, nothing is lost.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import warnings
from collections import deque
from typing import Any

from . import spans as _spans
from .content import cut

__all__ = ["Pending", "begin", "drain", "MAX_PENDING"]

MAX_PENDING = 10_000
BATCH = 256  # wake the worker early once this many calls wait
CHUNK = 64  # spans made per hold of the lock
INTERVAL_S = 0.2

_pending: deque[Pending] = deque()
_lock = threading.Lock()  # held while spans are made, by the worker or a drain
_cond = threading.Condition()
_thread: threading.Thread | None = None
_warned: set[str] = set()
_PARENT_BASED = ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled")
_PARENT_BASED += ("_local_parent_sampled", "_local_parent_not_sampled")


class _Content:
    """What a span may record, fixed when the call started (``%trace off`` may restore it before the span is made)."""

    __slots__ = ("capture_content", "max_chars")

    def __init__(self, capture_content: bool, max_chars: int) -> None:
        self.capture_content, self.max_chars = capture_content, max_chars


class _Replay:
    """An id generator that hands out the ids the calling thread already chose (used under ``_lock``)."""

    def __init__(self, real: Any) -> None:
        self.real, self.ids = real, (0, 0)

    def generate_trace_id(self) -> int:
        return self.ids[0]

    def generate_span_id(self) -> int:
        return self.ids[1]

    def is_trace_id_random(self) -> bool:
        return self.real.is_trace_id_random()


class _Plan:
    """How a workspace's spans are made late: its tracer's copy, the real id generator, the decision."""

    __slots__ = ("decide", "ids", "processors", "random_ids", "replay", "tracer")

    def __init__(self, tracer: Any, decide: Any, processors: tuple) -> None:
        self.ids = tracer.id_generator
        self.replay = _Replay(self.ids)
        self.tracer = copy.copy(tracer)
        self.tracer.id_generator = self.replay
        self.decide, self.processors = decide, processors
        self.random_ids = self.ids.is_trace_id_random()


def _decider(sampler: Any) -> Any:
    """``(parent span context, trace id) -> Decision``, the sampler's own, or ``None`` when it cannot be reproduced."""
    from opentelemetry.sdk.trace import sampling as S

    kind = type(sampler)
    if kind is S.StaticSampler:
        decision = sampler._decision
        return lambda parent, trace_id: decision
    if kind is S.TraceIdRatioBased:
        limit, bound = S.TraceIdRatioBased.TRACE_ID_LIMIT, sampler.bound
        keep, drop = S.Decision.RECORD_AND_SAMPLE, S.Decision.DROP
        return lambda parent, trace_id: keep if trace_id & limit < bound else drop
    if isinstance(sampler, S.ParentBased) and kind.should_sample is S.ParentBased.should_sample:
        parts = [_decider(getattr(sampler, name, None)) for name in _PARENT_BASED]
        if None in parts:
            return None
        root, remote_yes, remote_no, local_yes, local_no = parts

        def parent_based(parent: Any, trace_id: int) -> Any:
            if not parent.is_valid:
                return root(parent, trace_id)
            if parent.is_remote:
                return (remote_yes if parent.trace_flags.sampled else remote_no)(parent, trace_id)
            return (local_yes if parent.trace_flags.sampled else local_no)(parent, trace_id)

        return parent_based
    return None


def _plan_of(tracing: Any) -> _Plan | None:
    """The plan for this workspace's provider now, or ``None`` (then the synchronous path); kept until its processors change."""
    provider = tracing.provider
    try:
        processors = provider._active_span_processor._span_processors
    except AttributeError:
        return None
    cached = getattr(tracing, "deferred_plan", None)
    if cached is not None and cached[0] is processors:
        plan = cached[1]
    else:
        plan = _make_plan(tracing, processors)
        tracing.deferred_plan = (processors, plan)
    if plan is not None and not getattr(plan.tracer, "_is_enabled", lambda: True)():
        return None
    return plan


def _make_plan(tracing: Any, processors: tuple) -> _Plan | None:
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, Tracer
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from .export import DeferredSpans, LocalSpanProcessor

    tracer = tracing.tracer
    if type(tracer) is not Tracer or type(tracing.provider._active_span_processor) is not SynchronousMultiSpanProcessor:
        return None
    if not processors or type(processors[0]) is not DeferredSpans:
        return None
    if any(type(p) not in (DeferredSpans, LocalSpanProcessor, BatchSpanProcessor) for p in processors):
        return None
    decide = _decider(tracer.sampler)
    if decide is None or not hasattr(tracer, "id_generator"):
        return None
    return _Plan(tracer, decide, processors)


class Pending:
    """One call's span before it exists: what ``traceparent`` said, what came back. Quacks like a ``CallSpan``
    for ``streams`` (``captures_content``, ``response``, ``finish``).

    Content follows the synchronous path: the prompt is kept by the switch as it was when the call
    started, the answer by the switch as it is when the answer is read (a stream still open at
    ``%trace off`` records no answer text)."""

    __slots__ = ("answer", "content", "content_out", "context", "ended", "error", "headers", "inherited")
    __slots__ += ("plan", "recorded", "spec", "span_id", "started", "trace_id", "tracing")

    @property
    def captures_content(self) -> bool:
        return self.tracing.capture_content

    def response(self, **fields: Any) -> None:
        self.answer = (None, fields)

    def answered(self, read: Any, result: Any, operation: str) -> None:
        """The call returned ``result``: ``read(span, result, operation)`` fills the span when it is made."""
        self.answer = (read, (result, operation))
        self.finish()

    def finish(self, exc: BaseException | None = None) -> None:
        self.ended = time.time_ns()
        self.content_out = _Content(self.tracing.capture_content, self.tracing.max_chars)
        if exc is not None:
            self.error = (type(exc).__qualname__, cut(f"{type(exc).__name__}: {exc}", 300))
        if self.recorded:
            self.recorded = False  # once
            _put(self)


def begin(tracing: Any, spec: dict[str, Any]) -> Pending | None:
    """Choose the span's ids and sampling on the calling thread; ``None`` when the synchronous path must make it.

    ``spec`` holds ``model_call``'s arguments; the span is made from them later.
    """
    plan = _plan_of(tracing)
    if plan is None:
        return None
    otel_context, otel_trace, _ = _spans._sdk()
    context = otel_context.get_current()
    parent = otel_trace.get_current_span(context).get_span_context()
    call = Pending()
    if parent.is_valid:
        call.trace_id, random_ids = parent.trace_id, parent.trace_flags & 0x02
    elif not _spans._root_calls:
        return None  # the synchronous path makes no span either (``set_root_calls``)
    else:
        call.trace_id, random_ids = plan.ids.generate_trace_id(), plan.random_ids
    call.started = time.time_ns()
    decision = plan.decide(parent, call.trace_id)
    call.span_id = plan.ids.generate_span_id()
    flags = (0x01 if decision.is_sampled() else 0) | (0x02 if random_ids else 0)
    call.headers = {"traceparent": f"00-{call.trace_id:032x}-{call.span_id:016x}-{flags:02x}"}
    if parent.is_valid and parent.trace_state:
        call.headers["tracestate"] = parent.trace_state.to_header()
    call.plan, call.spec, call.context, call.inherited = plan, spec, context, _spans._inherited.get()
    call.content = _Content(tracing.capture_content, tracing.max_chars)
    call.tracing = tracing
    call.recorded, call.answer, call.error = decision.is_recording(), None, None
    return call


def _put(call: Pending) -> None:
    if len(_pending) >= MAX_PENDING:  # the worker is behind: this caller makes its own span rather than lose it
        with _lock:  # held by the worker for one chunk at most
            _make_one(call)
        return
    _pending.append(call)
    if _thread is None or not _thread.is_alive():
        _start()
    elif len(_pending) >= BATCH:
        with _cond:
            _cond.notify()


def _make(call: Pending) -> None:
    """The SDK span of ``call``: started and ended at the measured times, with the ids ``traceparent`` carried."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from . import conventions as C

    scope = _spans.model_call(**call.spec)
    attributes = _spans.call_attributes(scope.attributes, call.inherited)
    plan = call.plan
    plan.replay.ids = (call.trace_id, call.span_id)
    span = plan.tracer.start_span(
        scope.name, context=call.context, kind=SpanKind.CLIENT, attributes=attributes, start_time=call.started
    )
    made = span.get_span_context()
    if (made.trace_id, made.span_id) != (call.trace_id, call.span_id):
        _warn("ids", "a client span was made with other ids than its request's traceparent")
    if not span.is_recording():
        return
    try:
        if scope.inputs is not None and call.content.capture_content:
            _spans.CallSpan(span, call.content)._inputs(scope.inputs)
        if call.answer is not None:
            handle = _spans.CallSpan(span, call.content_out)
            read, args = call.answer
            read(handle, *args) if read is not None else handle.response(**args)
    except Exception:  # an answer of an unexpected shape costs its attributes, never the span
        pass
    if call.error is not None:
        span.set_attribute(C.ERROR_TYPE, call.error[0])
        span.set_status(Status(StatusCode.ERROR, call.error[1]))
    span.end(end_time=call.ended)


def _make_one(call: Pending) -> None:
    try:
        _make(call)
    except Exception as exc:  # one bad span must not stop the others, nor reach a call that was answered
        _warn("make", f"a client span could not be made: {type(exc).__name__}: {exc}")


def _run_chunk() -> None:
    """Make the spans of up to ``CHUNK`` queued calls (under ``_lock``, so a caller past the bound waits that long)."""
    for _ in range(CHUNK):
        try:
            call = _pending.popleft()
        except IndexError:
            return
        _make_one(call)


def drain(timeout: float | None = 10.0) -> bool:
    """Hand every call queued so far to the processors as a span (``False`` if ``timeout`` seconds were not enough)."""
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    while _pending or _lock.locked():
        left = -1 if deadline is None else deadline - time.monotonic()
        if deadline is not None and left <= 0:
            return False
        if not _lock.acquire(timeout=left):
            return False
        try:
            _run_chunk()
        finally:
            _lock.release()
        if not _pending:
            return True
    return True


def _loop() -> None:
    while True:
        try:
            with _cond:
                if len(_pending) < BATCH:
                    _cond.wait(INTERVAL_S)
            while _pending:
                with _lock:
                    _run_chunk()
        except Exception as exc:  # the thread must outlive anything (a warnings filter that raises, ...)
            try:
                _warn("worker", f"client spans: {type(exc).__name__}: {exc}")
            except Exception:
                pass


def _start() -> None:
    """Start the worker, and the span store's writer with it: spans made at exit (the last calls of a
    script) must find a writer running, since Python 3.12 starts no thread in an ``atexit`` handler."""
    global _thread
    from .export import start_writer

    with _cond:
        if _thread is None or not _thread.is_alive():
            thread = threading.Thread(target=_loop, name="llmops-client-spans", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # at interpreter exit: the queue is drained by the exit flush
                return
            _thread = thread
    start_writer()


def _warn(key: str, message: str) -> None:
    if key not in _warned:
        from .settings import TracingWarning

        _warned.add(key)
        warnings.warn(message, TracingWarning, stacklevel=2)


def _forked() -> None:
    """In a forked child: the parent's thread is not there, its locks may be held, its calls are its own."""
    global _thread, _lock, _cond
    _thread, _lock, _cond = None, threading.Lock(), threading.Condition()
    _pending.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
