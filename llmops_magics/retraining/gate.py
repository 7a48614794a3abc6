"""The retrain gate: does the candidate (B) beat the production version (A) on held-out rows?

Two conditions, both from the eval's paired comparisons (per-example deltas, a bootstrap
interval and a sign-flip p-value, ``evaluation/stats.py``):

* no significant regression on any gate metric (``Comparison.regression``: the interval
  excludes zero on the harmful side, p < 0.05, beyond float noise);
* the target metric's gain is *shown*: the lower bound of its 95% bootstrap interval reaches
  ``min_gain``. The point estimate alone would let a lucky draw on a few rows through; the
  bound asks for the gain with the confidence the regression check uses for harm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..evaluation.stats import format_number

if TYPE_CHECKING:
    from ..evaluation.results import EvalResult

__all__ = ["GateVerdict", "judge_gate"]


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reason: str
    gain: float | None = None  # the target metric's mean gain (B - A, in the better direction)
    lower: float | None = None  # the lower bound of its 95% interval


def judge_gate(result: EvalResult, target_metric: str, min_gain: float) -> GateVerdict:
    """Pass or fail, with the reason in words (what regressed, what the gain and its bound were)."""
    problems = [f"regression: {c.verdict}" for c in result.regressions]
    target = next((c for c in result.comparisons if c.metric == target_metric), None)
    gain = lower = None
    if target is None or target.delta is None or target.ci_low is None or target.ci_high is None:
        problems.append(f"no paired comparison on {target_metric} to show a gain")
    else:
        worse_when_higher = target.higher_is_better is False
        gain = -target.delta if worse_when_higher else target.delta
        lower = -target.ci_high if worse_when_higher else target.ci_low
        shown = f"{target_metric} gain {format_number(gain, sign=True)}, 95% interval from {format_number(lower, sign=True)}"
        if lower < min_gain:
            problems.append(f"{shown}: below min_gain {min_gain:g}")
    if problems:
        return GateVerdict(False, "; ".join(problems), gain, lower)
    return GateVerdict(True, f"no gate metric regressed; {shown} (min_gain {min_gain:g})", gain, lower)
