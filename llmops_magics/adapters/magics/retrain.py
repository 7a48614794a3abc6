"""``%retrain NAME --data REF`` and ``%retrain --on-failure MONITOR_REF``: the retrain pipeline as a job."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["RetrainMagics"]


@magics_class
class RetrainMagics(Magics):
    @spec_arguments("llmops_magics.ops.retrain:RetrainSpec")
    @line_magic
    @usage_errors
    def retrain(self, line):
        """Fine-tune a deployment's adapter on new rows, gate it, canary it, then promote or roll back.

        %retrain NAME --data NEW_ROWS [--combine append|replace] [--min-gain 0.05] [--canary 10] [--ab min_users=50]
        %retrain --on-failure monitor://NAME/3     (new rows: the answers reviewers corrected in its log)

        Returns the job; ``job.wait()`` gives the ``pipeline`` (``.decision``, ``.reason``, ``.steps``).
        """
        from ...ops.retrain import RETRAIN

        spec, _ = parse_spec(self.retrain, split(line))
        return RETRAIN.run(spec, call(f"%retrain {line}"))
