"""``%eval``: evaluate or compare targets on a dataset, as a job; ``result = %eval …`` returns it."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_values, spec_arguments, split, usage_errors

__all__ = ["EvalMagics"]

FRONT = (
    (("--wait",), {"action": "store_true", "help": "Block the cell until the eval ends."}),
    (
        ("--panel",),
        {
            "action": "store_true",
            "help": "Wait, then display the comparison panel (the grid panel for several prompts).",
        },
    ),
    (("--show",), {"default": None, "metavar": "REF", "help": "Show a recorded eval instead of running one."}),
    (("--list-metrics",), {"action": "store_true", "help": "List the registered metrics."}),
)


@magics_class
class EvalMagics(Magics):
    @spec_arguments("llmops_magics.ops.evaluate:EvalSpec", *FRONT)
    @line_magic
    @usage_errors
    def eval(self, line):
        """Evaluate a model, adapter, prompt or endpoint on a dataset, or compare several (A/B).

        %eval TARGET [--compare TARGET ...] --data DATASET [--metrics exact_match,rouge_l] [--limit N]
              [--prompt REF] [--model REF] [--judge-model REF] [--fail-on-regression] [--panel] ...
        %eval --show eval://NAME/3 [--panel]      %eval --list-metrics

        Returns the running eval at once (a live panel with a cancel button); reading a result
        attribute (``result.summary``) waits for it. ``--wait``, ``--panel`` and
        ``--fail-on-regression`` (a gate that fails the cell) wait in the cell.
        """
        from ... import evaluation
        from ...ops.evaluate import EVAL

        values, front, spec = parse_values(self.eval, split(line))
        if front["list_metrics"]:
            return evaluation.list_metrics()
        if front["show"]:
            result = evaluation.get_eval(front["show"])
        else:
            result = EVAL.run(spec.from_dict(values), call(f"%eval {line}"))
            if front["wait"] or front["panel"] or result.spec.fail_on_regression:  # a gate fails its cell
                result.wait()
        if front["panel"]:
            from IPython.display import display

            from ..widgets import panel_for

            display(panel_for(result))  # a prompts x models grid gets the grid panel
        return result
