"""Fixtures of the tracing tests: a workspace whose spans are also kept in memory by the real SDK."""

from __future__ import annotations

import pytest


class Spans:
    """The spans an ``InMemorySpanExporter`` received, with the look-ups the tests need."""

    def __init__(self, exporter, provider=None) -> None:
        self.exporter = exporter
        self.provider = provider  # given: the exporter sits behind a batching processor, flushed before each read

    @property
    def made_later(self) -> bool:
        return self.provider is not None

    def get_finished_spans(self):
        if self.provider is not None:
            self.provider.force_flush()
        return self.exporter.get_finished_spans()

    def by_name(self) -> dict:
        """Finished spans by name (the last of each name)."""
        return {s.name: s for s in self.exporter.get_finished_spans()}

    def parent_of(self, span):
        wanted = span.parent.span_id if span.parent is not None else None
        return next((s for s in self.exporter.get_finished_spans() if s.context.span_id == wanted), None)

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def spans(workspace):
    """The real SDK's in-memory exporter on the test workspace's provider, beside ``traces.db``.

    Every workspace's tracing is dropped before and after, so settings read from the
    environment or ``pyproject.toml`` in a test apply to it and nothing leaks to the next.
    """
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llmops_magics.tracing import provider

    provider.reset()
    exporter = InMemorySpanExporter()
    provider.tracing_for(workspace).provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Spans(exporter)
    provider.reset()
