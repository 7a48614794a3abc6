"""``%pii scan REF [--entities …] [--columns …]`` and ``%pii redact DATASET [--entities …] --operator mask|replace|hash``."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["PiiMagics"]


@spec_arguments("llmops_magics.ops.pii:PiiScanSpec")
def _scan(line):
    """%pii scan REF [--entities E,...] [--columns C,...] [--threshold 0.35] [--limit N] [--name NAME]"""


@spec_arguments("llmops_magics.ops.pii:PiiRedactSpec")
def _redact(line):
    """%pii redact DATASET [--entities E,...] [--operator replace|mask|hash] [--columns C,...] [--name NAME]"""


@magics_class
class PiiMagics(Magics):
    @line_magic
    @usage_errors
    def pii(self, line):
        """Find personal data (Microsoft Presidio, offline) or make a redacted dataset version.

        %pii scan REF      a dataset, an eval's outputs, a prompt or a deployment's request log:
                           counts per entity type and column, highlighted spans, a pii-scan artifact
        %pii redact DATASET [--operator replace|mask|hash]   a new dataset version, linked redacted_from
        """
        words = split(line)
        if words[:1] == ["scan"]:
            from ...ops.pii import PII_SCAN

            return PII_SCAN.run(parse_spec(_scan, words[1:])[0], call(f"%pii {line}"))
        if words[:1] == ["redact"]:
            from ...ops.pii import PII_REDACT

            return PII_REDACT.run(parse_spec(_redact, words[1:])[0], call(f"%pii {line}"))
        raise UsageError(f"%pii expects a subcommand scan|redact, found {words[0]!r}" if words else
                         "%pii expects a subcommand scan|redact, found nothing")  # fmt: skip
