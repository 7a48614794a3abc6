"""The canary statistics, validated by simulation with known truth (seeded, numpy-vectorised, a few seconds).

Each simulated experiment lets users arrive one by one, assigns each to an arm at random in
the design's proportions, and looks at the result after every 50 users up to 5,000: exactly
the "check the dashboard whenever you like" use that inflates a fixed-horizon interval's false
positives. The always-valid interval must cover the true difference at *every* look in at
least 95% of experiments; the fixed-horizon interval, under the same looks, must not manage
it, which proves the tests can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmops_magics.monitoring.abstats import ARMS, analyse, difference, per_user, sample_ratio, srm_p_values

RUNS = 400
USERS = 5000
EVERY = 50
LOG_MU, LOG_SIGMA = math.log(400.0), 0.6  # per-user mean latency, ms: lognormal, skewed like real latency
LATENCY_MEAN = math.exp(LOG_MU + LOG_SIGMA**2 / 2)


def peeks(rng: np.random.Generator, *, share: float, draw, shift: float = 0.0, runs: int = RUNS):
    """Every look of ``runs`` experiments: ``difference`` over arrays shaped (runs, looks)."""
    canary = rng.random((runs, USERS)) < share
    values = draw(rng, (runs, USERS)) + shift * canary

    def cumulative(x):  # running sums at each look
        return x.reshape(runs, USERS // EVERY, EVERY).sum(axis=2).cumsum(axis=1)

    moments = []
    for mask in (~canary, canary):
        n, s, q = cumulative(mask.astype(float)), cumulative(values * mask), cumulative(values**2 * mask)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / n
            var = (q - n * mean**2) / (n - 1)
        moments += [mean, var, n]
    return difference(*moments, alpha=0.05, tuning=5000)


def latency(rng, size):
    return rng.lognormal(LOG_MU, LOG_SIGMA, size)


def error_share(rng, size):  # a user's share of failed requests over 4 requests, 3% failure rate
    return rng.binomial(4, 0.03, size) / 4


def covers_always(d, truth) -> np.ndarray:
    """Per experiment: the interval held the truth at every look (a look with an undefined interval counts as held)."""
    held = (d.low <= truth) & (truth <= d.high)
    return np.all(held | np.isnan(d.low), axis=1)


def fixed_covers_always(d, truth) -> np.ndarray:
    held = (d.fixed_low <= truth) & (truth <= d.fixed_high)
    return np.all(held | np.isnan(d.fixed_low), axis=1)


# ---------------------------------------------------------------------- the always-valid interval


@pytest.mark.parametrize(("share", "seed"), [(0.5, 1), (0.1, 2)], ids=["50/50", "90/10"])
def test_the_sequential_interval_covers_a_true_latency_difference_at_every_look(share, seed):
    shift = 0.05 * LATENCY_MEAN  # the canary is 5% slower
    d = peeks(np.random.default_rng(seed), share=share, draw=latency, shift=shift)
    coverage = covers_always(d, shift).mean()
    print(f"coverage at every look ({share:.0%} canary, {RUNS} runs): {coverage:.3f}")
    assert coverage >= 0.95


@pytest.mark.parametrize(("draw", "seed"), [(latency, 3), (error_share, 4)], ids=["latency", "error-rate"])
def test_continuous_peeking_at_an_aa_test_keeps_false_positives_under_five_percent(draw, seed):
    d = peeks(np.random.default_rng(seed), share=0.5, draw=draw)
    sequential = 1 - covers_always(d, 0.0).mean()
    naive = 1 - fixed_covers_always(d, 0.0).mean()
    print(f"A/A false positives with a look every {EVERY} users: sequential {sequential:.3f}, fixed {naive:.3f}")
    assert sequential <= 0.05
    assert naive >= 0.15 and naive >= 3 * max(sequential, 0.01)  # peeking breaks the fixed interval


def test_the_sequential_interval_is_wider_than_the_fixed_one_and_narrows_as_users_arrive():
    d = difference(0.0, 1.0, [100, 1000, 10000], 0.0, 1.0, [100, 1000, 10000])
    width, fixed = d.high - d.low, d.fixed_high - d.fixed_low
    assert np.all(width > fixed) and np.all(np.diff(width) < 0)


def test_the_always_valid_p_value_falls_below_alpha_exactly_when_the_interval_excludes_zero():
    d = difference(0.0, 1.0, 2000, np.linspace(0, 0.3, 61), 1.0, 2000)
    assert np.array_equal(d.p_value < 0.05, (d.low > 0) | (d.high < 0))


# ---------------------------------------------------------------------- sample-ratio mismatch


def test_the_sample_ratio_check_catches_a_45_55_split_of_a_50_50_design_at_3000_users():
    rng = np.random.default_rng(5)
    canary = rng.binomial(3000, 0.55, size=2000)
    p = srm_p_values(np.stack([3000 - canary, canary], axis=1), [0.5, 0.5])
    power = (p < 0.001).mean()
    print(f"SRM power on a 45/55 split of a 50/50 design at 3,000 users: {power:.4f}")
    assert power >= 0.95


def test_the_sample_ratio_check_stays_quiet_on_a_true_50_50_split():
    rng = np.random.default_rng(6)
    canary = rng.binomial(3000, 0.5, size=2000)
    p = srm_p_values(np.stack([3000 - canary, canary], axis=1), [0.5, 0.5])
    quiet = (p >= 0.001).mean()
    print(f"SRM quiet on a true 50/50 split at 3,000 users: {quiet:.4f}")
    assert quiet >= 0.99


def test_a_sample_ratio_mismatch_blocks_the_verdict_however_clear_the_metrics_look():
    rng = np.random.default_rng(7)
    rows = [
        {"user": f"u{i}", "arm": arm, "status": 200, "latency_ms": (900.0 if arm == "canary" else 300.0) + rng.normal()}
        for i, arm in enumerate(rng.choice(ARMS, size=3000, p=[0.45, 0.55]))
    ]
    result = analyse(rows, weights=[0.5, 0.5], metrics=("latency",))
    assert result.srm.blocked and result.verdict.code == "blocked"
    assert result.verdict.text.startswith("blocked by sample-ratio mismatch")
    assert (result.stop.stop, result.stop.action) == (True, "investigate")


def test_a_ten_percent_canary_is_judged_against_its_own_design():
    assert not sample_ratio([900, 100], [0.9, 0.1]).blocked
    assert sample_ratio([500, 500], [0.9, 0.1]).blocked


# ---------------------------------------------------------------------- per-user aggregation


def _rows(users, arm, latency, requests=1, **extra):
    return [
        {"user": u, "arm": arm, "status": 200, "latency_ms": latency, "ttft_ms": latency / 2, **extra}
        for u in users
        for _ in range(requests)
    ]


def test_a_heavy_user_with_a_thousand_requests_counts_once():
    rows = _rows(["heavy"], "canary", 5000.0, requests=1000) + _rows([f"c{i}" for i in range(9)], "canary", 100.0)
    rows += _rows([f"p{i}" for i in range(10)], "primary", 100.0)
    users = per_user(rows)
    assert (users.count("primary"), users.count("canary")) == (10, 10)
    canary_latency = users.values["latency"][users.arm == 1]
    assert canary_latency.mean() == pytest.approx((5000 + 9 * 100) / 10)  # not (1000*5000 + 900) / 1009


def test_rows_without_a_user_and_users_seen_in_both_arms_are_left_out_and_counted():
    rows = _rows(["a", "b"], "primary", 100.0) + _rows(["b", "c"], "canary", 100.0)
    rows += [{"user": None, "arm": "canary", "status": 200, "latency_ms": 1.0}] * 3
    users = per_user(rows)
    assert (users.count("primary"), users.count("canary")) == (1, 1)
    assert (users.anonymous_requests, users.crossed_users) == (3, 1)


def test_latency_averages_successful_requests_and_errors_count_per_user():
    rows = [
        {"user": "u", "arm": "primary", "status": 200, "latency_ms": 100.0},
        {"user": "u", "arm": "primary", "status": 500, "latency_ms": 9000.0},
    ]
    users = per_user(rows)
    assert users.values["latency"][0] == 100.0 and users.values["error_rate"][0] == 0.5


# ---------------------------------------------------------------------- verdict and stop rule


def _experiment(seed, n, canary_latency, *, feedback_shift=0.0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arm = ARMS[int(rng.random() < 0.5)]
        mean = canary_latency if arm == "canary" else 400.0
        for _ in range(3):
            rows.append(
                {
                    "user": f"u{i}",
                    "arm": arm,
                    "status": 500 if rng.random() < 0.01 else 200,
                    "latency_ms": rng.lognormal(math.log(mean), 0.3),
                    "feedback": float(rng.random() < 0.6 + (feedback_shift if arm == "canary" else 0.0)),
                }
            )
    return rows


def test_a_clearly_slower_canary_is_worse_and_the_stop_rule_says_roll_back():
    result = analyse(_experiment(8, 600, 520.0), weights=[0.5, 0.5], metrics=("latency", "error_rate"))
    latency = result.metrics[0]
    assert latency.outcome == "worse" and latency.interval[0] > 0
    assert result.verdict.code == "worse" and result.verdict.text.startswith("canary worse: latency +")
    assert (result.stop.stop, result.stop.action) == (True, "roll back")


def test_a_canary_with_better_feedback_and_no_harm_is_better():
    result = analyse(_experiment(9, 3000, 400.0, feedback_shift=0.15), weights=[0.5, 0.5], metrics=("feedback",))
    assert result.verdict.code == "better" and "feedback score +" in result.verdict.text


def test_an_equal_canary_is_promoted_once_every_metric_excludes_harm_beyond_its_margin():
    rows = _experiment(10, 4000, 400.0)
    result = analyse(rows, weights=[0.5, 0.5], metrics=("latency", "error_rate", "quality"))
    assert result.verdict.code == "inconclusive" and result.verdict.text.startswith("no detectable difference yet")
    assert [m.outcome for m in result.metrics] == ["no difference yet", "no difference yet", "no data"]
    assert (result.stop.stop, result.stop.action) == (True, "promote")


def test_early_on_the_test_continues_and_a_user_cap_stops_it():
    rows = _experiment(11, 200, 400.0)
    assert analyse(rows, weights=[0.5, 0.5]).stop.action == "continue"
    capped = analyse(rows, weights=[0.5, 0.5], max_users=200).stop
    assert (capped.stop, capped.action) == (True, "decide") and "200 users" in capped.reason


def test_too_few_users_decide_nothing_however_large_the_difference():
    rows = _rows([f"p{i}" for i in range(10)], "primary", 100.0) + _rows([f"c{i}" for i in range(10)], "canary", 900.0)
    result = analyse(rows, weights=[0.5, 0.5], metrics=("latency",))
    assert result.metrics[0].outcome == "too few users" and result.verdict.code == "inconclusive"
    assert not result.stop.stop


def test_unanimous_arms_are_judged_not_left_undecided():
    down = _rows([f"c{i}" for i in range(40)], "canary", 100.0)
    up = _rows([f"p{i}" for i in range(40)], "primary", 100.0)
    for row in down:
        row["feedback"] = 0.0
    for row in up:
        row["feedback"] = 1.0
    result = analyse(up + down, weights=[0.5, 0.5], metrics=("feedback",))
    assert result.metrics[0].outcome == "worse" and result.stop.action == "roll back"
    low, high = result.metrics[0].interval
    assert -1.0 < high < 0 and low < -1.0  # finite: one pseudo-user at the pooled mean per arm
    for row in down:
        row["feedback"] = 1.0
    assert analyse(up + down, weights=[0.5, 0.5], metrics=("feedback",)).metrics[0].outcome == "no difference yet"
