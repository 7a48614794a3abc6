"""The two tests behind an online A/B verdict: a sample-ratio check and an always-valid interval.

Pure numpy/scipy over arrays, vectorised so the simulation tests can pass whole grids of looks;
``abstats`` turns request rows into per-user values and these numbers into a verdict. The
reasoning behind both (why a sample-ratio mismatch blocks everything, why a confidence
sequence rather than a fixed-horizon interval) is in ``abstats``'s docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["ALPHA", "SRM_P", "TUNING", "Difference", "SampleRatio", "difference", "mixture_rho2", "sample_ratio",
           "srm_p_values"]  # fmt: skip

SRM_P = 0.001  # a sample-ratio p-value below this blocks any verdict
ALPHA = 0.05
TUNING = 5000.0  # N*: users over both arms where the sequence is tightest (GrowthBook's default)


# ---------------------------------------------------------------------- sample-ratio mismatch


def srm_p_values(counts: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Chi-square goodness-of-fit p-values of user counts (last axis: arms) against design ``weights``."""
    from scipy.stats import chisquare

    counts = np.asarray(counts, dtype=float)
    w = np.asarray(weights, dtype=float) / float(np.sum(weights))
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = chisquare(counts, f_exp=total * w, axis=-1).pvalue
    return np.where(total[..., 0] > 0, p, 1.0)


@dataclass(frozen=True)
class SampleRatio:
    """Users per arm against the design: ``blocked`` when ``p_value < SRM_P``."""

    counts: tuple[int, ...]
    weights: tuple[float, ...]
    p_value: float

    @property
    def blocked(self) -> bool:
        return self.p_value < SRM_P

    @property
    def expected(self) -> tuple[float, ...]:
        total = sum(self.counts)
        return tuple(total * w / sum(self.weights) for w in self.weights)

    def describe(self) -> str:
        seen = " / ".join(f"{c:,}" for c in self.counts)
        design = "/".join(f"{100 * w / sum(self.weights):g}" for w in self.weights)
        return f"{seen} users for a {design} design (chi-square p = {self.p_value:.2g})"


def sample_ratio(counts: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    return SampleRatio(tuple(int(c) for c in counts), tuple(float(w) for w in weights),
                       float(srm_p_values(np.asarray(counts), weights)))  # fmt: skip


# ---------------------------------------------------------------------- intervals


class Difference(NamedTuple):
    """Canary minus primary, element-wise over whatever shape the inputs broadcast to."""

    diff: np.ndarray
    se: np.ndarray
    low: np.ndarray  # always-valid (confidence sequence)
    high: np.ndarray
    fixed_low: np.ndarray  # fixed-horizon, valid only at one look decided in advance
    fixed_high: np.ndarray
    p_value: np.ndarray  # always-valid p-value at this look (1 / the mixture e-value)


def mixture_rho2(alpha: float = ALPHA, tuning: float = TUNING) -> float:
    """The mixture's variance ρ² that makes the sequence tightest at ``tuning`` users (Waudby-Smith eq. 161)."""
    log_a = -2.0 * math.log(alpha)
    return (log_a + math.log(log_a + 1.0)) / tuning


def difference(
    mean_p: Any, var_p: Any, n_p: Any, mean_c: Any, var_c: Any, n_c: Any, *, alpha: float = ALPHA,
    tuning: float = TUNING,
) -> Difference:  # fmt: skip
    """The difference in means of two independent arms with its always-valid and fixed intervals.

    With ``n`` users over both arms and ``se`` the difference's standard error, the half-width is
    ``se * sqrt(2 (n ρ² + 1) / (n ρ²) * log(sqrt(n ρ² + 1) / alpha))``, where ``se² n`` plays the
    per-user variance of Waudby-Smith et al.'s asymptotic confidence sequence (it holds for any
    split, balanced or not). Vectorised: the simulation tests pass whole grids of looks.
    """
    from scipy.stats import norm

    mean_p, var_p, n_p, mean_c, var_c, n_c = (
        np.asarray(x, dtype=float) for x in (mean_p, var_p, n_p, mean_c, var_c, n_c)
    )
    diff = mean_c - mean_p
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(var_p / n_p + var_c / n_c)
        n = n_p + n_c
        nr = n * mixture_rho2(alpha, tuning)
        half = se * np.sqrt(2.0 * (nr + 1.0) / nr * np.log(np.sqrt(nr + 1.0) / alpha))
        fixed = se * norm.ppf(1.0 - alpha / 2.0)
        z2 = np.where(se > 0, (diff / se) ** 2, np.where(diff != 0, np.inf, 0.0))
        p = np.minimum(1.0, np.sqrt(nr + 1.0) * np.exp(-nr * z2 / (2.0 * (nr + 1.0))))
    return Difference(diff, se, diff - half, diff + half, diff - fixed, diff + fixed, p)
