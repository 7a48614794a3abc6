"""Reading traces back: ``list_traces`` (``%trace list``) and ``get_trace`` (``%trace show``).

Both flush the process's finished spans first, so a call that just returned is listed.
Prompt references are resolved through the registry before matching: ``qa@production``
finds the traces of the version the alias names now, a bare ``qa`` those of any version
of ``qa``, ``qa/3`` exactly that version.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import AmbiguousReferenceError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from .views import TraceList, TraceView

__all__ = ["list_traces", "get_trace", "flush_traces", "since_ns", "prompt_filter", "trace_listing", "trace_tree"]


def _store(workspace: Workspace | None):
    from ..context.workspaces import current
    from .store import SpanStore

    ws = workspace or current()
    flush_traces(ws)
    return ws, SpanStore(ws.home)


def flush_traces(workspace: Workspace | None = None, timeout: float = 10.0) -> bool:
    """Write every span finished so far to ``traces.db`` (``False`` if ``timeout`` seconds were not enough)."""
    from .export import flush_local

    try:
        return flush_local(timeout)
    except ImportError:  # no OpenTelemetry SDK: nothing was ever queued
        return True


def since_ns(since: str | float | None) -> int | None:
    """``1h``/``30m``/``2d``/``90s`` ago, or a date/time (``2026-12-01``, ``2026-12-01T10:00``), as ns."""
    if since is None or since == "":
        return None
    text = str(since).strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        from ..ops.monitor import seconds

        try:
            return int((time.time() - seconds(text)) * 1e9)
        except ValidationError:
            raise ValidationError(
                f"since must be a duration (90s, 30m, 1h, 2d) or a date/time (2026-12-01T10:00), found {since!r}"
            ) from None
    return int(when.timestamp() * 1e9)


def prompt_filter(prompt: str | None, ws: Workspace) -> str | None:
    """The ``prompt_ref`` a trace must carry: pinned when the reference names a version or an alias."""
    if prompt is None:
        return None
    from ..store.refs import parse_reference

    ref = parse_reference(str(prompt), "prompt")
    if ref.version is None and ref.alias is None:
        return f"prompt://{ref.name}"
    return ws.registry.resolve(str(prompt), "prompt").ref


def list_traces(
    *,
    prompt: str | None = None,
    since: str | None = None,
    artifact: str | None = None,
    limit: int = 20,
    workspace: Workspace | None = None,
) -> TraceList:
    """The latest traces in the workspace, newest first: ``prompt`` (a prompt reference), ``since``
    (``1h`` or a date), ``artifact`` (``eval://…``, ``deployment://…``) narrow them."""
    from .views import TraceList

    if limit < 1:
        raise ValidationError(f"limit must be a positive integer, found {limit!r}")
    ws, store = _store(workspace)
    pinned_artifact = ws.registry.resolve(artifact).ref if artifact else None
    rows = store.traces(
        since_ns=since_ns(since), prompt=prompt_filter(prompt, ws), artifact=pinned_artifact, limit=limit
    )
    return TraceList(rows)


def _resolve(store: Any, trace_id: str) -> str:
    text = (trace_id or "last").strip().lower()
    if text == "last":
        latest = store.traces(limit=1)
        if not latest:
            raise NotFoundError(f"no traces yet in {store.path}")
        return latest[0].trace_id
    if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
        raise ValidationError(f"a trace id is 'last' or at least 4 hex digits of an id, found {trace_id!r}")
    found = store.find(text)
    if not found:
        raise NotFoundError(f"no trace id starts with {text!r} in {store.path}")
    if len(found) > 1:
        raise AmbiguousReferenceError(f"more than one trace id starts with {text!r}; give more digits")
    return found[0]


def get_trace(
    trace_id: str = "last",
    *,
    max_spans: int = 200,
    max_chars: int = 2000,
    workspace: Workspace | None = None,
) -> TraceView:
    """One trace as a tree with a timeline: ``"last"`` or a trace id (a unique prefix is enough).

    The display shows at most ``max_spans`` spans and ``max_chars`` characters of each
    captured input or output; the spans themselves are all in ``.spans``.
    """
    from .views import TraceView

    _, store = _store(workspace)
    tid = _resolve(store, trace_id)
    return TraceView(tid, store.spans(tid), _prices(), max_spans=max_spans, max_chars=max_chars)


def _prices() -> dict[str, dict[str, float]]:
    """``[tool.llmops.prices]`` (dollars per million input/output tokens), as ``compare_models`` reads it.

    A malformed table costs the dollars only (one ``PriceWarning``), never the trace.
    """
    from ..evaluation.usage import price_table

    return price_table() or {}


# ---------------------------------------------------------------- for browsers (the sidebar's routes)


def trace_listing(
    home: Any, registry: Any, *, prompt: str | None = None, since: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """The latest traces of the store in ``home`` as JSON, newest first, each with the prompt versions it used.

    ``registry`` resolves a pinned or aliased prompt reference (``None`` while the folder has
    none: then only a bare prompt name can filter). Times are milliseconds since the epoch,
    which a browser's ``Date`` takes as they are.
    """
    from types import SimpleNamespace

    from .store import SpanStore

    if prompt is not None and registry is None:
        from ..store.refs import parse_reference

        ref = parse_reference(str(prompt), "prompt")
        if ref.version is not None or ref.alias is not None:
            raise NotFoundError(f"no registry at {home} yet to resolve {prompt!r}")
    pinned = prompt_filter(prompt, SimpleNamespace(registry=registry))
    store = SpanStore(home)
    rows = store.traces(since_ns=since_ns(since), prompt=pinned, limit=limit)
    refs = store.prompt_refs([r.trace_id for r in rows])
    items = [
        {
            "trace_id": r.trace_id,
            "name": r.name,
            "start_ms": r.start_ns / 1e6,
            "duration_ms": r.duration_ms,
            "spans": r.spans,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "errors": r.errors,
            "status": "error" if r.errors else "ok",
            "prompts": refs.get(r.trace_id, []),
        }
        for r in rows
    ]
    return {"items": items, "prompt": pinned, "since": since, "limit": limit}


def trace_tree(home: Any, trace_id: str, *, max_spans: int = 200, max_chars: int = 2000) -> dict[str, Any]:
    """One trace of the store in ``home`` as a JSON tree (``TraceView.to_dict``): ``last`` or a unique id prefix."""
    from .store import SpanStore
    from .views import TraceView

    if len(trace_id) > 32:
        raise ValidationError(f"a trace id has at most 32 hex digits, found {len(trace_id)} characters")
    store = SpanStore(home)
    tid = _resolve(store, trace_id)
    return TraceView(tid, store.spans(tid), _prices(), max_spans=max_spans, max_chars=max_chars).to_dict()
