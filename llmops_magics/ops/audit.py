"""The audit trail: ``%audit [REF]`` / ``audit(ref)`` / ``llmops audit [REF]``.

Every alias move, deployment, promotion, rollback, stop, redaction and release-policy
override is an append-only event in the registry (``store/audit.py``); this operation
reads them, narrowed to one artifact (a name: every version; a version: that one), a
time and an action. It writes nothing and offers no way to change or delete an event.

``override_option()`` is the ``--override-policy`` field of a spec (deploy's); the tag and
promote commands (``%model tag``, ``%prompt tag``, ``%deploy promote``, ``llmops tag|promote``)
show the same help, ``PolicyError.OVERRIDE_HELP``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PolicyError, ValidationError
from ..store.audit import ACTIONS
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..governance.audit import AuditLog

__all__ = ["AuditSpec", "audit", "AUDIT", "OVERRIDE_HELP", "override_reason", "override_option"]

OVERRIDE_HELP = PolicyError.OVERRIDE_HELP


def override_reason(value: str | None) -> str | None:
    """An override needs a reason a reviewer can read later."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        raise ValidationError("override_policy (--override-policy) needs a reason, found nothing")
    return text


def override_option():
    """The ``override_policy`` field of a spec: not stored, so a replay is checked against the policy again."""
    return option(None, check=override_reason, stored=False, metavar="REASON", help=OVERRIDE_HELP)


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    from ..tracing.read import since_ns

    since_ns(value)  # refuses a bad value here, before anything is read
    return str(value)


@dataclass(frozen=True, kw_only=True)
class AuditSpec(Spec):
    """Which events to show: of one artifact, since when, of which action."""

    op = "audit"

    ref: str | None = option(
        None, positional=True, help="Only events about this artifact (qa-lora: every version; adapter://qa-lora/2)."
    )
    since: str | None = option(None, check=_since, help="Only events since then: 2h, 7d, 2026-12-01T10:00.")
    action: str | None = option(None, choices=ACTIONS, help="Only events of this action.")


def audit(
    ref: str | None = None,
    *,
    since: str | None = None,
    action: str | None = None,
    workspace: Workspace | None = None,
) -> AuditLog:
    """The audit trail, oldest first: who moved which alias or deployment, when, from what to what, and why.

    Returns an ``AuditLog`` (a list of ``AuditEvent``: ``actor``, ``action``, ``ref``,
    ``from_ref``, ``to_ref``, ``reason``, ``detail``) that displays as a table.
    """
    return AUDIT.call(locals())


AUDIT = Operation(
    "audit",
    AuditSpec,
    "llmops_magics.governance.audit:run_audit",
    "audit",
    "the audit trail: alias moves, deployments, promotions, rollbacks, policy overrides, redactions",
    ref_of=lambda value, stored: f"{len(value)} audit event(s)",
)
