"""Traces of every LLM call, in OpenTelemetry's GenAI conventions, stored in the workspace.

What is traced: the project's own model calls (generation, eval batches, judge calls,
comparisons, endpoint requests, the model server's requests), ``with trace("name"):``
and ``@traced`` around a user's code, and calls of the official ``openai`` client while
``instrument_openai()`` (``%trace on``) is in force.

Where spans go: ``traces.db`` next to the registry (always, so traces work offline), an
OTLP/HTTP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and an eval's W&B run as
a table. Read them back with ``list_traces`` / ``get_trace`` (``%trace list|show``).

Modules: ``conventions`` (attribute names), ``settings`` (``[tool.llmops.tracing]``),
``provider`` (one tracer provider per workspace, never the global one), ``spans``
(model-call and operation spans), ``api`` (``trace``, ``traced``), ``store`` and
``export`` (``traces.db``, OTLP), ``openai_client`` and ``streams`` (the undoable client
wrapper), ``read`` and ``views`` (queries and their display), ``wandb_table``. Importing
this package imports no OpenTelemetry: the SDK loads with the first span.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "trace",
    "traced",
    "list_traces",
    "get_trace",
    "instrument_openai",
    "uninstrument_openai",
    "flush_traces",
]

_EXPORTS = {
    "trace": ".api",
    "traced": ".api",
    "list_traces": ".read",
    "get_trace": ".read",
    "flush_traces": ".read",
    "instrument_openai": ".openai_client",
    "uninstrument_openai": ".openai_client",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmops_magics.tracing' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
