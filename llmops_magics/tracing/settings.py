"""Tracing settings: ``[tool.llmops.tracing]``, then the standard OpenTelemetry variables.

::

    [tool.llmops.tracing]
    enabled = true            # spans of the project's own model calls, stored in the workspace
    capture_content = false   # prompts, answers, function arguments and results in spans
    max_content_chars = 4000  # each captured text is cut to this many characters

``OTEL_SDK_DISABLED=true`` turns tracing off whatever the file says;
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (the GenAI instrumentations' own
switch) turns content capture on or off. Content is off by default because a trace
store, an OTLP collector or a W&B table is read by more people than the notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ValidationError

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
    unknown = set(table) - {"enabled", "capture_content", "max_content_chars"}
    if unknown:
        raise ValidationError(
            f"[tool.llmops.tracing] has unknown key(s) {', '.join(sorted(unknown))}; "
            "known: enabled, capture_content, max_content_chars"
        )
    enabled = _flag(table.get("enabled", True), "[tool.llmops.tracing] enabled")
    content = _flag(table.get("capture_content", False), "[tool.llmops.tracing] capture_content")
    chars = table.get("max_content_chars", 4000)
    if not isinstance(chars, int) or isinstance(chars, bool) or chars < 1:
        raise ValidationError(f"[tool.llmops.tracing] max_content_chars must be a positive integer, found {chars!r}")
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        enabled = False
    env = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
    if env:  # newer instrumentations also say where content goes: span_only, span_and_event, no_content
        content = env in _SPAN_CONTENT or (
            env not in ("no_content", "event_only") and _flag(env, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
        )
    return TracingSettings(enabled, content, chars)
