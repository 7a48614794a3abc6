"""Paired A/B statistics: per-example deltas, a bootstrap CI on their mean, a sign-flip p-value.

Both targets answer the same examples, so the comparison is paired: the unit is the
per-example delta ``b - a``. The confidence interval is the percentile interval of the
mean delta over ``n_resamples`` bootstrap resamples of the examples; the two-sided
p-value comes from a sign-flip (paired permutation) test, which is exact under the null
hypothesis that A and B are exchangeable per example. A difference is called
significant only when the CI excludes 0 *and* p < alpha: with a handful of examples a
percentile CI can exclude 0 while the permutation test rightly cannot. Everything is
seeded, so the same data gives the same verdict.

A significant difference must also be at least ``min_delta``: a constant delta of 1e-9
(float noise, say, from two runs summing the same numbers in another order) passes both
tests with any number of examples but is no difference at all. By default ``min_delta``
is ``NOISE_TOLERANCE`` times the larger of the two means (absolute), at least 1e-12; pass
a larger one to ignore differences too small to matter (``min_delta=0.01``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "NOISE_TOLERANCE",
    "Comparison",
    "paired_bootstrap",
    "sign_flip_p_value",
    "compare_paired",
    "format_p",
    "format_number",
    "noise_tolerance",
]

NOISE_TOLERANCE = 1e-6


def noise_tolerance(mean_a: float, mean_b: float) -> float:
    """The default ``min_delta``: a mean difference this small, relative to the means, is float noise."""
    return max(1e-12, NOISE_TOLERANCE * max(abs(mean_a), abs(mean_b)))


def paired_bootstrap(
    deltas: Sequence[float], *, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile ``1 - alpha`` interval of the mean of ``deltas`` under resampling with replacement."""
    import numpy as np

    d = np.asarray(deltas, dtype=float)
    if d.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // d.size)  # bound memory for large data sets
    for start in range(0, n_resamples, chunk):
        n = min(chunk, n_resamples - start)
        idx = rng.integers(0, d.size, size=(n, d.size))
        means[start : start + n] = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def sign_flip_p_value(deltas: Sequence[float], *, n_resamples: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value of mean(deltas) = 0 by randomly flipping each delta's sign."""
    import numpy as np

    d = np.asarray(deltas, dtype=float)
    if d.size == 0:
        return 1.0
    observed = abs(d.mean())
    rng = np.random.default_rng(seed + 1)
    extreme = 0
    chunk = max(1, 2_000_000 // d.size)
    for start in range(0, n_resamples, chunk):
        n = min(chunk, n_resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n, d.size))
        extreme += int((np.abs((signs * d).mean(axis=1)) >= observed - 1e-12).sum())
    return (extreme + 1) / (n_resamples + 1)


def format_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def format_number(x: float, sign: bool = False) -> str:
    """Two decimals for scores (``+0.12``), two significant digits for tiny or huge values."""
    spec = "+" if sign else ""
    if x == 0 or 0.01 <= abs(x) < 10_000:
        return f"{x:{spec}.2f}"
    return f"{x:{spec}.2g}"


@dataclass(frozen=True)
class Comparison:
    """Target ``b`` against baseline ``a`` on one metric column."""

    metric: str
    a: str
    b: str
    n: int
    mean_a: float | None
    mean_b: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float
    higher_is_better: bool | None
    gate: bool
    alpha: float = 0.05
    min_delta: float = 0.0  # a mean delta smaller than this is a tie, however consistent

    @property
    def _passes_tests(self) -> bool:
        if self.delta is None or self.ci_low is None or self.ci_high is None or self.n < 2:
            return False
        return (self.ci_low > 0 or self.ci_high < 0) and self.p_value < self.alpha

    @property
    def significant(self) -> bool:
        return self._passes_tests and abs(self.delta) >= self.min_delta  # type: ignore[arg-type]

    @property
    def outcome(self) -> str:
        """``better``/``worse`` (or ``higher``/``lower`` for neutral metrics), or ``same``."""
        if not self.significant:
            return "same"
        up = self.delta > 0  # type: ignore[operator]
        if self.higher_is_better is None:
            return "higher" if up else "lower"
        return "better" if up == self.higher_is_better else "worse"

    @property
    def regression(self) -> bool:
        return self.gate and self.outcome == "worse"

    @property
    def verdict(self) -> str:
        """``"B better on rouge_l by +0.12 [0.05, 0.19] (p=0.003)"``, or ``no significant difference …``."""
        if self.delta is None:
            return f"{self.metric}: no paired examples to compare {self.b} with {self.a}"
        numbers = (
            f"{format_number(self.delta, sign=True)} [{format_number(self.ci_low)}, "  # type: ignore[arg-type]
            f"{format_number(self.ci_high)}] ({format_p(self.p_value)})"  # type: ignore[arg-type]
        )
        if self.outcome == "same":
            within = f", below min_delta {format_number(self.min_delta)}" if self._passes_tests else ""
            return f"no significant difference between {self.b} and {self.a} on {self.metric}: {numbers}{within}"
        return f"{self.b} {self.outcome} on {self.metric} by {numbers}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "significant": self.significant,
            "outcome": self.outcome,
            "regression": self.regression,
            "verdict": self.verdict,
        }


def compare_paired(
    metric: str,
    a_label: str,
    b_label: str,
    a_values: Sequence[float | None],
    b_values: Sequence[float | None],
    *,
    higher_is_better: bool | None = True,
    gate: bool = True,
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    min_delta: float | None = None,
) -> Comparison:
    """Compare on the examples where both sides have a value (``None`` means not applicable).

    ``min_delta``: the smallest mean difference that can be significant; ``None`` for the
    float-noise tolerance (see the module docstring).
    """
    pairs = [(a, b) for a, b in zip(a_values, b_values, strict=True) if a is not None and b is not None]
    if not pairs:
        return Comparison(metric, a_label, b_label, 0, None, None, None, None, None, 1.0, higher_is_better, gate, alpha)
    deltas = [b - a for a, b in pairs]
    lo, hi = paired_bootstrap(deltas, n_resamples=n_resamples, seed=seed, alpha=alpha)
    p = sign_flip_p_value(deltas, n_resamples=n_resamples, seed=seed)
    n = len(pairs)
    mean_a, mean_b = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    tolerance = noise_tolerance(mean_a, mean_b) if min_delta is None else float(min_delta)
    return Comparison(
        metric,
        a_label,
        b_label,
        n,
        mean_a,
        mean_b,
        sum(deltas) / n,
        lo,
        hi,
        p,
        higher_is_better,
        gate,
        alpha,
        tolerance,
    )
