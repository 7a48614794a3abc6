"""``%monitor NAME [--window 1h] [--checks slo,drift,quality] [--threshold K=V] [--every 5m]``.

The checks operation. The live panel of one deployment's traffic stays ``%deploy monitor NAME``.
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["MonitorMagics"]


@magics_class
class MonitorMagics(Magics):
    @spec_arguments("llmops_magics.ops.monitor:MonitorSpec")
    @line_magic
    @usage_errors
    def monitor(self, line):
        """Check a deployment's request log (service levels, input drift, live quality) and store the verdicts.

        %monitor NAME [--window 1h] [--checks slo,drift,quality] [--threshold p95_latency_ms=800] [--baseline EVAL]
        %monitor NAME --every 5m     (repeats in the background; returns the job, job.cancel() stops it)

        Returns a report (``.failed``, ``.status``, ``report["p95_latency_ms"]``, ``.ref``).
        """
        from ...ops.monitor import MONITOR

        spec, _ = parse_spec(self.monitor, split(line))
        return MONITOR.run(spec, call(f"%monitor {line}"))
