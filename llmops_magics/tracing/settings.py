"""Tracing settings: ``[tool.llmops.tracing]``, then the standard OpenTelemetry variables.

::

    [tool.llmops.tracing]
    enabled = true            # spans of the project's own model calls, stored in the workspace
    capture_content = false   # prompts, answers, function arguments and results in spans
    max_content_chars = 4000  # each captured text is cut to this many characters
    keep_days = 30            # traces.db keeps traces this many days (0: whatever their age)
    max_spans = 200000        # and at most about this many spans, the oldest traces going first (0: no limit)

``OTEL_SDK_DISABLED=true`` turns tracing off whatever the file says;
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (the GenAI instrumentations' own
switch) turns content capture on or off. Content is off by default because a trace
store, an OTLP collector or a W&B table is read by more people than the notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ValidationError
from .retention import DEFAULT_KEEP_DAYS, DEFAULT_MAX_SPANS, Retention

__all__ = ["TracingSettings", "TracingWarning", "tracing_settings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SPAN_CONTENT = {"span_only", "span_and_event"}


class TracingWarning(UserWarning):
    """Spans could not be made, stored or kept; the traced calls themselves were unaffected."""


@dataclass(frozen=True)
class TracingSettings:
    enabled: bool = True
    capture_content: bool = False
    max_content_chars: int = 4000
    keep_days: float = DEFAULT_KEEP_DAYS
    max_spans: int = DEFAULT_MAX_SPANS

    @property
    def retention(self) -> Retention:
        return Retention(self.keep_days, self.max_spans)


def _flag(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationError(f"{where} must be true or false, found {value!r}")


def tracing_settings() -> TracingSettings:
    """The settings in force now (read when a workspace's tracing starts, and by ``%trace on``)."""
    from ..context.home import project_config

    table = project_config().get("tracing") or {}
    if not isinstance(table, dict):
        raise ValidationError(f"[tool.llmops.tracing] must be a table, found {table!r}")
    unknown = set(table) - {"enabled", "capture_content", "max_content_chars", "keep_days", "max_spans"}
    if unknown:
        raise ValidationError(
            f"[tool.llmops.tracing] has unknown key(s) {', '.join(sorted(unknown))}; "
            "known: enabled, capture_content, max_content_chars, keep_days, max_spans"
        )
    enabled = _flag(table.get("enabled", True), "[tool.llmops.tracing] enabled")
    content = _flag(table.get("capture_content", False), "[tool.llmops.tracing] capture_content")
    chars = table.get("max_content_chars", 4000)
    if not isinstance(chars, int) or isinstance(chars, bool) or chars < 1:
        raise ValidationError(f"[tool.llmops.tracing] max_content_chars must be a positive integer, found {chars!r}")
    days = table.get("keep_days", DEFAULT_KEEP_DAYS)
    if not isinstance(days, (int, float)) or isinstance(days, bool) or not 0 <= days < 1e6:
        raise ValidationError(f"[tool.llmops.tracing] keep_days must be a number of days >= 0, found {days!r}")
    spans = table.get("max_spans", DEFAULT_MAX_SPANS)
    if not isinstance(spans, int) or isinstance(spans, bool) or spans < 0:
        raise ValidationError(f"[tool.llmops.tracing] max_spans must be an integer >= 0, found {spans!r}")
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        enabled = False
    env = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
    if env:  # newer instrumentations also say where content goes: span_only, span_and_event, no_content
        content = env in _SPAN_CONTENT or (
            env not in ("no_content", "event_only") and _flag(env, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
        )
    return TracingSettings(enabled, content, chars, float(days), spans)
