"""``%audit [REF] [--since 7d] [--action alias-move]``: the audit trail as a table."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["AuditMagics"]


@magics_class
class AuditMagics(Magics):
    @spec_arguments("llmops_magics.ops.audit:AuditSpec")
    @line_magic
    @usage_errors
    def audit(self, line):
        """Who moved which alias or deployment, when, from what to what, and why (oldest first).

        %audit                      every event
        %audit qa-lora --since 7d   events about any version of qa-lora in the last week
        %audit --action policy-override

        Events are append-only: nothing here (or anywhere) changes or deletes one.
        """
        from ...ops.audit import AUDIT

        spec, _ = parse_spec(self.audit, split(line))
        return AUDIT.run(spec, call(f"%audit {line}"))
