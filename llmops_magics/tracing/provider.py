"""One tracer provider per workspace home, owned by the project and started on first use.

The provider is never made the process's global one (``trace.set_tracer_provider`` can be
called once per process and never undone): a notebook that also uses another
OpenTelemetry setup keeps it, and tests give each workspace its own provider and
store. The SDK is imported on the first span, never at ``%load_ext``.

Which provider a span goes to: the one a surrounding span chose (``active``: an eval run
in a job thread, a server request), else the current workspace's. ``tracing_for`` is on
every model call's path, so it is a dictionary lookup once a workspace has its tracing.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import TracingSettings, tracing_settings

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from .store import SpanStore

__all__ = ["Tracing", "tracing_for", "active", "paused", "reset", "SCOPE"]

SCOPE = "llmops_magics"

_by_home: dict[Path, Tracing] = {}
_by_workspace: weakref.WeakKeyDictionary[Any, Tracing | None] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
active: contextvars.ContextVar[Tracing | None] = contextvars.ContextVar("llmops_tracing", default=None)
_paused: contextvars.ContextVar[bool] = contextvars.ContextVar("llmops_tracing_paused", default=False)


class Tracing:
    """A workspace's tracing: its provider, its tracer, its ``traces.db``."""

    def __init__(self, home: Path, settings: TracingSettings) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        from .. import __version__
        from .export import DeferredSpans, LocalSpanProcessor, otlp_processor
        from .store import SpanStore

        self.home = Path(home)
        self.settings = settings
        self.capture_content = settings.capture_content
        self.store: SpanStore = SpanStore(self.home, settings.retention)
        # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (read by Resource.create) name the service when set
        resource = Resource.create({"llmops.version": __version__})
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "llmops-magics"}))
        self.provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.provider.add_span_processor(DeferredSpans())  # first: a flush makes the queued client spans first
        self.provider.add_span_processor(LocalSpanProcessor(self.store))
        self.otlp = otlp_processor()
        if self.otlp is not None:
            self.provider.add_span_processor(self.otlp)
        self.tracer = self.provider.get_tracer(SCOPE, __version__)
        self.deferred_plan: tuple | None = None  # ``deferred``'s plan for this provider, by its processors

    @property
    def max_chars(self) -> int:
        return self.settings.max_content_chars

    def flush(self, timeout: float = 10.0, *, export: bool = False) -> bool:
        """Write every finished span to ``traces.db``; ``export`` also waits for the OTLP collector."""
        from .export import flush_local

        ok = flush_local(timeout)
        if export and self.otlp is not None:
            ok = self.otlp.force_flush(int(timeout * 1000)) and ok
        return ok

    def shutdown(self) -> None:
        self.flush(5.0)
        self.provider.shutdown()


def _for_home(home: Path) -> Tracing | None:
    settings = tracing_settings()
    if not settings.enabled:
        return None
    with _lock:
        tracing = _by_home.get(home)
        if tracing is None:
            tracing = _by_home[home] = Tracing(home, settings)
        return tracing


_current: Any = None  # ``context.workspaces.current``, imported on the first call
_last: tuple[Any, Tracing | None] = (lambda: None, None)  # (weak reference to a workspace, its tracing)


def tracing_for(workspace: Workspace | None = None) -> Tracing | None:
    """The tracing spans go to now (``None`` when tracing is off: ``[tool.llmops.tracing] enabled``,
    or inside ``paused()``).

    On every traced call's path, so the usual case (the same workspace as last time) is two
    context-variable reads and a weak reference's call: no import statement, no
    ``WeakKeyDictionary`` look-up (both run Python code that a call made after a network wait
    pays for in cold caches).
    """
    global _current, _last
    if _paused.get():
        return None
    if workspace is None:
        chosen = active.get()
        if chosen is not None:
            return chosen
        if _current is None:
            from ..context.workspaces import current

            _current = current
        workspace = _current()
    last_ref, last = _last
    if last_ref() is workspace:
        return last
    try:
        tracing = _by_workspace[workspace]
    except KeyError:
        tracing = _for_home(workspace.home)
        _by_workspace[workspace] = tracing
    _last = (weakref.ref(workspace), tracing)
    return tracing


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No spans inside this block (and the jobs it starts): a benchmark's baseline, a noisy loop."""
    token = _paused.set(True)
    try:
        yield
    finally:
        _paused.reset(token)


def _at_exit() -> None:
    """A script's last spans: the queued client calls made, ``traces.db`` written, and sent over OTLP when
    it is set (its batch processor would otherwise lose the last few seconds). Bounded: 2 s a workspace."""
    with _lock:
        all_ = list(_by_home.values())
    for tracing in all_:
        try:
            tracing.flush(2.0, export=True)
        except Exception:  # exit goes on
            pass


atexit.register(_at_exit)


def reset() -> None:
    """Flush and forget every workspace's tracing (tests; a changed ``[tool.llmops.tracing]``)."""
    global _last
    with _lock:
        all_ = list(_by_home.values())
        _by_home.clear()
        _by_workspace.clear()
        _last = (lambda: None, None)
    for tracing in all_:
        tracing.shutdown()
