"""``%fairness TARGET --data REF [--attributes gender,name,nationality]``: counterfactual fairness of a target."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["FairnessMagics"]


@magics_class
class FairnessMagics(Magics):
    @spec_arguments("llmops_magics.ops.fairness:FairnessSpec")
    @line_magic
    @usage_errors
    def fairness(self, line):
        """Swap gender, name or nationality terms in each row, run the target on every variant, compare per group.

        %fairness tiny --data qa [--attributes gender,name] [--metric rouge_l] [--terms terms.json] [--limit 50]

        Per group: the task metric, output length, refusal rate and sentiment (fairlearn MetricFrame:
        by group, difference, ratio) with paired bootstrap intervals; a ``fairness`` artifact.
        """
        from ...ops.fairness import FAIRNESS

        spec, _ = parse_spec(self.fairness, split(line))
        return FAIRNESS.run(spec, call(f"%fairness {line}"))
