"""``%monitor NAME [--window 1h] [--checks slo,drift,quality] [--threshold K=V] [--every 5m]`` ``%monitor review NAME``, ``%monitor history NAME``.

The checks operation, and the review of logged answers (thumbs up/down, corrections). The
live panel of one deployment's traffic stays ``%deploy monitor NAME``.
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .base import call, parse, parse_spec, spec_arguments, split, usage_errors

__all__ = ["MonitorMagics"]


@magic_arguments()
@argument("name", help="Deployment whose answers to review (deployed with --log-text).")
@argument("--limit", "-n", type=int, default=100, help="How many of the newest requests to load.")
def _review(line):
    """%monitor review NAME [--limit 100]"""


@magic_arguments()
@argument("name", help="Deployment whose monitor runs to plot.")
@argument("--limit", "-n", type=int, default=50, help="How many of the newest runs.")
def _history(line):
    """%monitor history NAME [--limit 50]"""


@magics_class
class MonitorMagics(Magics):
    @spec_arguments("llmops_magics.ops.monitor:MonitorSpec")
    @line_magic
    @usage_errors
    def monitor(self, line):
        """Check a deployment's request log (service levels, input drift, live quality) and store the verdicts.

        %monitor NAME [--window 1h] [--checks slo,drift,quality] [--threshold p95_latency_ms=800] [--baseline EVAL]
        %monitor NAME --every 5m     (repeats in the background; returns the job, job.cancel() stops it)
        %monitor review NAME [--limit 100]   (step through logged answers: thumbs up/down, edit the answer)
        %monitor history NAME [--limit 50]   (each check's value over the runs, against its thresholds)

        Returns a report (``.failed``, ``.status``, ``report["p95_latency_ms"]``, ``.ref``).
        """
        words = split(line)
        if words[:1] == ["review"]:
            from ..widgets.feedback_review import FeedbackReview

            args = parse(_review, line.strip()[len("review") :])
            return FeedbackReview(args.name, limit=args.limit)
        if words[:1] == ["history"]:
            from ...monitoring.history import monitor_history

            args = parse(_history, line.strip()[len("history") :])
            return monitor_history(args.name, limit=args.limit)
        from ...ops.monitor import MONITOR

        spec, _ = parse_spec(self.monitor, words)
        return MONITOR.run(spec, call(f"%monitor {line}"))
