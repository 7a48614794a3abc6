"""Reading the audit trail: ``audit_events`` and the ``AuditLog`` that shows it.

The events are written by the registry (``store/audit.py``: alias moves inside the move's
own transaction) and by ``Registry.record_event`` (deploy, canary, promote, rollback, stop,
redaction, and policy overrides). This module only reads: an ``AuditLog`` is a tuple of
frozen ``AuditEvent`` records, and there is no call here or anywhere in the package that
changes or deletes one (the table's triggers refuse it for every other client too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..display.html import format_time, mimebundle, table_html, text_table
from ..store.audit import AuditEvent

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..ops.audit import AuditSpec
    from ..ops.catalog import Call

__all__ = ["AuditLog", "AuditEvent", "audit_events", "run_audit"]

COLUMNS = ("time", "actor", "action", "ref", "from", "to", "reason", "detail")


class AuditLog(tuple):
    """Events oldest first; displays as a table (escaped HTML, and text)."""

    def __new__(cls, events: Iterable[AuditEvent], title: str = "audit trail"):
        out = super().__new__(cls, tuple(events))
        out.title = title
        return out

    def _rows(self) -> list[list[Any]]:
        rows = []
        for e in self:
            detail = {k: v for k, v in e.to_dict()["detail"].items() if k != "refs"}
            shown = ", ".join(f"{k}={'; '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in detail.items())
            rows.append([format_time(e.time), e.actor, e.action, e.ref, e.from_ref, e.to_ref, e.reason, shown])
        return rows

    def to_dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self]

    def __str__(self) -> str:
        if not self:
            return f"{self.title}: no events"
        return f"{self.title}: {len(self)} event(s)\n" + text_table(COLUMNS, self._rows())

    def __repr__(self) -> str:
        return f"AuditLog({len(self)} event(s))"

    def _repr_mimebundle_(self, include=None, exclude=None):
        body = table_html(COLUMNS, self._rows(), f"{self.title}: {len(self)} event(s)") if self else ""
        return mimebundle(str(self), body or f"<p>{self.title}: no events</p>")


def audit_events(
    ref: Any = None, *, since: str | float | None = None, action: str | None = None, workspace: Workspace | None = None
) -> AuditLog:
    """Events about ``ref`` (a name: every version; a version or alias: that version), since then, of that action.

    ``since``: seconds since the epoch, a duration ago (``2h``) or a date/time.
    """
    from ..context.workspaces import current
    from ..tracing.read import since_ns

    ws = workspace or current()
    when = since if isinstance(since, (int, float)) else (since_ns(since) / 1e9 if since else None)
    events = ws.registry.audit_events(ref, since=when, action=action)
    return AuditLog(events, f"audit trail of {ref}" if ref else "audit trail")


def run_audit(spec: AuditSpec, call: Call) -> AuditLog:
    return audit_events(spec.ref, since=spec.since, action=spec.action, workspace=call.ws)
