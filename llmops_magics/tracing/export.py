"""Getting finished spans out of the process: into ``traces.db``, and over OTLP/HTTP when asked.

The local exporter is a span processor whose ``on_end`` only appends the span to a
queue: the caller of a model (a notebook cell, an eval batch, a server request) never
waits for SQLite. One background thread per process (not one per workspace, so a test
session that makes hundreds of workspaces keeps one thread) drains the queue every
half second, or sooner when it grows, converting and writing each workspace's spans in
one transaction. ``flush`` waits until every span ended before it was called is
written: ``%trace show`` and the tests read after it.

The queue is bounded: a process producing spans faster than the disk takes them drops
the excess and says so once, rather than growing without end. A store that cannot be
written (a read-only home, a full disk) costs its spans, never the call that made them.

OTLP: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set
when a workspace's tracing starts adds the SDK's ``BatchSpanProcessor`` with the
OTLP/HTTP protobuf exporter, which reads the rest of the standard ``OTEL_EXPORTER_OTLP_*``
variables itself (headers, timeout, compression). Nothing leaves the machine otherwise.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections import defaultdict, deque
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from . import deferred
from .rows import span_row
from .settings import TracingWarning
from .store import SpanStore

__all__ = ["DeferredSpans", "LocalSpanProcessor", "TracingWarning", "flush_local", "otlp_processor", "otlp_endpoint"]

log = logging.getLogger("llmops_magics.tracing")

MAX_QUEUE = 100_000
BATCH = 512  # wake the writer early once this many spans wait
INTERVAL_S = 0.5
MAX_OPEN = 4  # stores kept open between batches (a test session makes hundreds; a notebook uses one)
IDLE_CLOSE_S = 30.0


class _Writer:
    """The process's one writer thread; see the module docstring."""

    def __init__(self) -> None:
        self._queue: deque[tuple[SpanStore, Any]] = deque()
        self._cond = threading.Condition()
        self._waiters: list[threading.Event] = []
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.dropped = 0
        self._warned: set[str] = set()
        self._open: dict[SpanStore, float] = {}  # stores with an open connection, by last write

    def put(self, store: SpanStore, span: Any) -> None:
        if len(self._queue) >= MAX_QUEUE:
            self.dropped += 1
            if self.dropped == 1:
                self._warn("queue", f"more than {MAX_QUEUE} spans waited to be stored; spans are being dropped")
            return
        self._queue.append((store, span))
        if self._thread is None:  # the first span, or the first in a forked child (``_forked``)
            self._start()
        elif len(self._queue) >= BATCH:
            with self._cond:
                self._cond.notify()

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            thread = threading.Thread(target=self._loop, name="llmops-traces", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # Python 3.12+ at interpreter exit: ``flush`` writes on the calling thread
                return
            self._thread = thread

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until every span queued before this call is written (``False`` if ``timeout`` passed first)."""
        with self._cond:  # ``_start`` takes it too: no writer can start while this one writes
            if self._thread is None:  # no writer thread (none could be started): nobody else writes, so write here
                if self._queue:
                    self._drain()
                return True
        done = threading.Event()
        with self._cond:
            self._waiters.append(done)
            self._cond.notify()
        return done.wait(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._waiters and len(self._queue) < BATCH:
                    self._cond.wait(INTERVAL_S)
                waiters, self._waiters = self._waiters, []
            try:
                self._drain()
            except Exception as exc:  # the thread must outlive any one bad batch
                self._warn("writer", f"spans could not be stored: {type(exc).__name__}: {exc}")
            for done in waiters:
                done.set()

    def _drain(self) -> None:
        while self._queue:
            by_store: dict[SpanStore, list[tuple]] = defaultdict(list)
            for _ in range(min(len(self._queue), 4 * BATCH)):
                store, span = self._queue.popleft()
                try:
                    by_store[store].append(span_row(span))
                except Exception as exc:
                    self._warn("convert", f"a span could not be converted: {type(exc).__name__}: {exc}")
            for store, rows in by_store.items():
                try:
                    store.write(rows)
                except Exception as exc:
                    self._warn(str(store.path), f"{len(rows)} span(s) could not be written to {store.path}: {exc}")
                self._open[store] = time.monotonic()
        self._close_idle()

    def _close_idle(self) -> None:
        """Keep the connections of the stores written lately; close those idle or beyond ``MAX_OPEN``."""
        now = time.monotonic()
        by_age = sorted(self._open.items(), key=lambda kv: kv[1], reverse=True)
        for i, (store, last) in enumerate(by_age):
            if i >= MAX_OPEN or now - last > IDLE_CLOSE_S:
                store.close()
                del self._open[store]

    def _warn(self, key: str, message: str) -> None:
        log.warning(message)
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, TracingWarning, stacklevel=2)

    def _forked(self) -> None:
        """In a forked child: the parent's thread is not there, and its lock may have been held.

        The spans queued in the parent are the parent's to write. Its open SQLite connections
        must not be used here (SQLite forbids carrying one across a fork) nor closed (closing
        the last one checkpoints and may delete the WAL the parent is using): they are kept,
        unused, until the child ends, and the child's stores open their own.
        """
        self._cond = threading.Condition()
        self._waiters = []
        self._thread = None
        self._queue = deque()
        for store in self._open:
            _inherited.append(store.forget_connection())
        self._open = {}


_inherited: list[Any] = []  # a forked child's copies of its parent's connections, never touched


_writer = _Writer()
if hasattr(os, "register_at_fork"):  # put() then need not ask for the pid (a system call) on every span
    os.register_at_fork(after_in_child=_writer._forked)


def start_writer() -> None:
    """Start the writer thread now if it is not running (see ``deferred._start``)."""
    if _writer._thread is None:
        _writer._start()


def flush_local(timeout: float | None = 10.0) -> bool:
    """Write every span finished so far to its store (client calls whose spans are still queued
    in ``deferred`` are made first)."""
    started = time.monotonic()
    made = deferred.drain(timeout)
    left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
    return _writer.flush(left) and made


class DeferredSpans(SpanProcessor):
    """First among a workspace provider's processors: its ``force_flush`` and ``shutdown`` make the
    spans still queued in ``deferred`` first, so the processors after it see them."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        deferred.drain(5.0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return deferred.drain(timeout_millis / 1000)


class LocalSpanProcessor(SpanProcessor):
    """Queues each finished span for its workspace's ``traces.db``."""

    def __init__(self, store: SpanStore) -> None:
        self.store = store

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            _writer.put(self.store, span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return _writer.flush(timeout_millis / 1000)


def otlp_endpoint() -> str | None:
    """The OTLP/HTTP endpoint the environment names, or ``None`` (then nothing is exported)."""
    for var in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return None


def otlp_processor() -> SpanProcessor | None:
    """A batching OTLP/HTTP exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else ``None``."""
    if otlp_endpoint() is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        warnings.warn(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http is not installed "
            "(pip install 'llmops-magics[trace]'); spans are stored locally only",
            TracingWarning,
            stacklevel=3,
        )
        return None
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter())
