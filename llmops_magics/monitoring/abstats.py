"""Online A/B statistics for a canary: is the new version better, worse, or not yet distinguishable?

Four decisions shape everything here:

* **The user is the unit.** Routing is sticky per user (``modelserver/routing.py``), so
  requests from one user are not independent: a heavy user with 1,000 requests would
  otherwise weigh as 1,000 independent observations and make every interval too narrow.
  Each user becomes one value per metric (the mean over their requests), and the arms
  are compared over users. Rows without a user id (routed at random, per request) and
  users seen in both arms (the split changed under them) are left out and counted.
* **A sample-ratio mismatch blocks every verdict.** If the users per arm are not what the
  design's weights predict (chi-square test, ``p < 0.001``), assignment or logging is
  broken and any difference in the metrics may be that bug, not the version.
* **Looking at any time is allowed.** Each metric's difference (canary minus primary)
  gets an *always-valid* interval: the asymptotic normal-mixture confidence sequence of
  Waudby-Smith et al. (2023, eq. 9; the "mixture sequential" interval GrowthBook
  documents, close to Howard et al.'s), which covers the true difference at every look
  simultaneously with probability ``1 - alpha``. A fixed-horizon interval is reported
  beside it for comparison only: checked after every batch of users, it declares a
  difference in A/A tests far more often than ``alpha`` (the tests show how much).
  The tuning parameter ``tuning`` (N*, default 5,000 users over both arms, GrowthBook's
  default) is where the sequence is tightest relative to the fixed interval; set it to
  the number of users at which you expect to decide, and keep it fixed for a test.
* **A stop rule, decided in advance.** Stop and roll back when a metric shows harm (its
  interval lies wholly on the harmful side of zero); stop and promote when every guarded
  metric's interval excludes harm beyond its margin; stop at ``max_users`` regardless.
  A metric is guarded once both arms report it (feedback nobody has sent yet shows as
  "no data" and holds nothing open); below ``min_users`` per arm it decides nothing,
  since the interval is asymptotic.

``alpha`` applies to each metric; with several metrics a false "worse" on some metric is
more likely than ``alpha``, which errs towards rolling back. Pure numpy/scipy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .sequential import (
    ALPHA,
    SRM_P,
    TUNING,
    Difference,
    SampleRatio,
    difference,
    mixture_rho2,
    sample_ratio,
    srm_p_values,
)

# fmt: off
__all__ = [
    "ARMS", "METRICS", "SRM_P", "AbAnalysis", "Difference", "Metric", "MetricResult", "SampleRatio", "Stop",
    "Users", "Verdict", "analyse", "compare_metric", "difference", "mixture_rho2", "per_user", "sample_ratio",
    "srm_p_values"
]
# fmt: on

ARMS = ("primary", "canary")
MIN_USERS = 30  # per arm, before a metric may decide anything (the interval is asymptotic)


@dataclass(frozen=True)
class Metric:
    """One compared quantity. ``margin``: the harm tolerated, a fraction of the primary's mean if ``relative``."""

    name: str
    label: str
    unit: str
    higher_is_better: bool
    margin: float
    relative: bool = False


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("latency", "latency", "ms", False, 0.10, relative=True),
        Metric("ttft", "time to first token", "ms", False, 0.10, relative=True),
        Metric("error_rate", "error rate", "", False, 0.01),
        Metric("feedback", "feedback score", "", True, 0.05),
        Metric("quality", "judged quality", "", True, 0.05),
    )
}


# ---------------------------------------------------------------------- per-user aggregation


@dataclass(frozen=True)
class Users:
    """One row per user: ``arm`` (0 primary, 1 canary) and each metric's per-user mean (NaN: no data)."""

    arm: np.ndarray
    values: Mapping[str, np.ndarray]
    requests: np.ndarray
    anonymous_requests: int = 0  # rows without a user id: routed per request, so not comparable
    crossed_users: int = 0  # users seen in both arms: their assignment changed, so they are dropped
    other_requests: int = 0  # rows of neither arm (before the canary, or a pinned version)

    def count(self, arm: str) -> int:
        return int(np.count_nonzero(self.arm == ARMS.index(arm)))


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=float)


def _user_mean(inverse: np.ndarray, values: np.ndarray, users: int) -> np.ndarray:
    have = ~np.isnan(values)
    total = np.bincount(inverse[have], weights=values[have], minlength=users)
    count = np.bincount(inverse[have], minlength=users)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def per_user(rows: Iterable[Mapping[str, Any]]) -> Users:
    """Aggregate request rows (``user``, ``arm``, ``status``, ``latency_ms``, ``ttft_ms``, optional
    ``feedback`` and ``quality``) into one value per user and metric, never one per request.

    Latency and time to first token average a user's successful requests (a failed request's
    latency measures the failure); the error rate is the user's share of requests with status
    400 or above.
    """
    rows = list(rows)
    anonymous = sum(1 for r in rows if not r.get("user"))
    kept = [r for r in rows if r.get("user") and r.get("arm") in ARMS]
    other = len(rows) - anonymous - len(kept)
    if not kept:
        empty = np.zeros(0)
        return Users(np.zeros(0, dtype=int), {m: empty for m in METRICS}, empty, anonymous, 0, other)
    ids, inverse = np.unique(np.array([str(r["user"]) for r in kept]), return_inverse=True)
    n = len(ids)
    arm = np.array([ARMS.index(r["arm"]) for r in kept])
    requests = np.bincount(inverse, minlength=n)
    canary = np.bincount(inverse, weights=arm, minlength=n)
    crossed = (canary > 0) & (canary < requests)
    status = np.array([int(r.get("status") or 0) for r in kept])
    ok = status < 400
    values = {
        "latency": _user_mean(inverse, np.where(ok, _column(kept, "latency_ms"), np.nan), n),
        "ttft": _user_mean(inverse, np.where(ok, _column(kept, "ttft_ms"), np.nan), n),
        "error_rate": _user_mean(inverse, (status >= 400).astype(float), n),
        "feedback": _user_mean(inverse, _column(kept, "feedback"), n),
        "quality": _user_mean(inverse, _column(kept, "quality"), n),
    }
    keep = ~crossed
    return Users(
        arm=(canary[keep] > 0).astype(int),
        values={k: v[keep] for k, v in values.items()},
        requests=requests[keep],
        anonymous_requests=anonymous,
        crossed_users=int(crossed.sum()),
        other_requests=other,
    )


# ---------------------------------------------------------------------- per-metric results, verdict, stop


@dataclass(frozen=True)
class MetricResult:
    metric: Metric
    users: tuple[int, int]  # users with data, primary and canary
    means: tuple[float | None, float | None]
    diff: float | None = None
    interval: tuple[float, float] | None = None  # always-valid
    fixed: tuple[float, float] | None = None
    p_value: float | None = None
    margin: float | None = None  # the harm tolerated, in the metric's units
    outcome: str = "no data"  # better | worse | no difference yet | too few users | no data

    @property
    def guarded(self) -> bool:
        """Part of the stop rule: it has data in both arms."""
        return self.outcome != "no data"

    @property
    def safe(self) -> bool:
        """The interval excludes harm beyond the margin (the canary is at worst ``margin`` worse)."""
        if self.interval is None or self.margin is None or self.outcome == "too few users":
            return False
        low, high = self.interval
        return low > -self.margin if self.metric.higher_is_better else high < self.margin

    @property
    def relative(self) -> float | None:
        base = self.means[0]
        return self.diff / base if self.diff is not None and base else None

    def describe(self) -> str:
        m, unit = self.metric, f" {self.metric.unit}" if self.metric.unit else ""
        if self.interval is None or self.diff is None:
            return f"{m.label}: {self.outcome}"
        lo, hi = self.interval
        return f"{m.label} {self.diff:+.4g}{unit} (always-valid interval {lo:+.4g} to {hi:+.4g}{unit})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.name, "higher_is_better": self.metric.higher_is_better, "users": list(self.users),
            "means": list(self.means), "diff": self.diff, "relative": self.relative,
            "interval": list(self.interval) if self.interval else None, "fixed": list(self.fixed) if self.fixed else None,
            "p_value": self.p_value, "margin": self.margin, "outcome": self.outcome, "safe": self.safe,
        }  # fmt: skip


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def compare_metric(
    metric: Metric, primary: np.ndarray, canary: np.ndarray, *, alpha: float, tuning: float, min_users: int,
    margin: float | None = None,
) -> MetricResult:  # fmt: skip
    """One metric's per-user values in each arm (NaN: that user has no value) → its result."""
    a, b = primary[~np.isnan(primary)], canary[~np.isnan(canary)]
    users = (len(a), len(b))
    means = (_num(a.mean()) if len(a) else None, _num(b.mean()) if len(b) else None)
    if not len(a) or not len(b):
        return MetricResult(metric, users, means)
    var = lambda x: float(x.var(ddof=1)) if len(x) > 1 else 0.0
    var_a, var_b = var(a), var(b)
    if var_a == 0 and var_b == 0 and a.mean() != b.mean():
        # Every user of each arm gave one value (all thumbs up here, all down there): the plug-in
        # interval would collapse to a point, and a zero sample variance of a bounded metric is an
        # accident of small samples. One pseudo-user at the pooled mean in each arm keeps it finite.
        pooled = float(np.concatenate([a, b]).mean())
        var_a, var_b = var(np.append(a, pooled)), var(np.append(b, pooled))
    d = difference(a.mean(), var_a, len(a), b.mean(), var_b, len(b), alpha=alpha, tuning=tuning)
    tol = metric.margin if margin is None else margin
    tol = tol * abs(means[0] or 0.0) if metric.relative else tol
    if min(users) < min_users:
        outcome = "too few users"
    elif not d.se > 0 or not (d.low > 0 or d.high < 0):
        outcome = "no difference yet"
    else:
        outcome = "better" if (d.low > 0) == metric.higher_is_better else "worse"
    return MetricResult(
        metric, users, means, _num(d.diff), (float(d.low), float(d.high)), (float(d.fixed_low), float(d.fixed_high)),
        float(d.p_value), tol, outcome,
    )  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    code: str  # better | worse | inconclusive | blocked
    text: str


@dataclass(frozen=True)
class Stop:
    stop: bool
    action: str  # continue | roll back | promote | investigate | decide
    reason: str


@dataclass(frozen=True)
class AbAnalysis:
    """What ``analyse`` found: the users, the sample-ratio check, each metric, the verdict and the stop rule."""

    users: Users
    srm: SampleRatio
    metrics: tuple[MetricResult, ...]
    verdict: Verdict
    stop: Stop
    alpha: float
    tuning: float
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        u = self.users
        return {
            "users": {a: u.count(a) for a in ARMS}, "requests": int(u.requests.sum()),
            "anonymous_requests": u.anonymous_requests, "crossed_users": u.crossed_users,
            "other_requests": u.other_requests,
            "srm": {"counts": list(self.srm.counts), "weights": list(self.srm.weights), "p_value": self.srm.p_value,
                    "blocked": self.srm.blocked},
            "metrics": [m.to_dict() for m in self.metrics], "verdict": {"code": self.verdict.code, "text": self.verdict.text},
            "stop": {"stop": self.stop.stop, "action": self.stop.action, "reason": self.stop.reason},
            "alpha": self.alpha, "tuning": self.tuning, **dict(self.settings),
        }  # fmt: skip


def _verdict(srm: SampleRatio, results: Sequence[MetricResult], total: int) -> Verdict:
    if srm.blocked:
        return Verdict("blocked", f"blocked by sample-ratio mismatch: {srm.describe()}; fix assignment or logging "
                       "before reading any metric")  # fmt: skip
    worse = [r for r in results if r.outcome == "worse"]
    better = [r for r in results if r.outcome == "better"]
    if worse:
        return Verdict("worse", "canary worse: " + "; ".join(r.describe() for r in worse))
    if better:
        return Verdict("better", "canary better: " + "; ".join(r.describe() for r in better) + "; no metric worse")
    pending = [r.metric.label for r in results if r.outcome == "too few users"]
    why = f"; too few users yet for {', '.join(pending)}" if pending else ""
    return Verdict("inconclusive", f"no detectable difference yet ({total:,} users){why}")


def _stop(srm: SampleRatio, results: Sequence[MetricResult], total: int, max_users: int | None) -> Stop:
    guarded = [r for r in results if r.guarded]
    if srm.blocked:
        return Stop(True, "investigate", "the users per arm do not match the design")
    if any(r.outcome == "worse" for r in guarded):
        return Stop(True, "roll back", "a guarded metric shows harm")
    if guarded and all(r.safe for r in guarded):
        return Stop(True, "promote", "every guarded metric excludes harm beyond its margin")
    if max_users is not None and total >= max_users:
        open_ = ", ".join(r.metric.label for r in guarded if not r.safe) or "every metric"
        return Stop(True, "decide", f"the cap of {max_users:,} users is reached; harm is not ruled out for {open_}")
    return Stop(False, "continue", "no metric shows harm and not every one is shown safe yet")


def analyse(
    rows: Iterable[Mapping[str, Any]],
    *,
    weights: Sequence[float],
    metrics: Sequence[str] = ("latency", "error_rate", "feedback", "quality"),
    alpha: float = ALPHA,
    tuning: float = TUNING,
    min_users: int = MIN_USERS,
    max_users: int | None = None,
    margins: Mapping[str, float] | None = None,
) -> AbAnalysis:
    """Judge the canary from request ``rows``; ``weights`` are the design's (primary, canary) shares."""
    users = per_user(rows)
    counts = [users.count(a) for a in ARMS]
    srm = sample_ratio(counts, weights)
    margins = dict(margins or {})
    settings = {"alpha": alpha, "tuning": tuning, "min_users": min_users}
    primary, canary = users.arm == 0, users.arm == 1
    values = {name: users.values[name] for name in metrics}
    results = tuple(
        compare_metric(METRICS[n], v[primary], v[canary], **settings, margin=margins.get(n)) for n, v in values.items()
    )
    total = sum(counts)
    return AbAnalysis(
        users, srm, results, _verdict(srm, results, total), _stop(srm, results, total, max_users), alpha, tuning,
        {"min_users": min_users, "max_users": max_users},
    )  # fmt: skip
