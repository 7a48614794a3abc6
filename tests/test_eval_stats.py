"""Paired bootstrap CIs, sign-flip p-values and verdicts on synthetic data with known answers."""

from __future__ import annotations

import random

import pytest

from llmops_magics.evaluation.stats import compare_paired, paired_bootstrap, sign_flip_p_value


def synthetic(n: int, shift: float, seed: int = 0):
    """Per-example scores for A, and B = A + shift + paired noise."""
    rng = random.Random(seed)
    a = [rng.uniform(0, 1) for _ in range(n)]
    b = [x + shift + rng.gauss(0, 0.1) for x in a]
    return a, b


def test_a_known_improvement_gets_a_ci_around_it_that_excludes_zero():
    a, b = synthetic(200, 0.3)
    c = compare_paired("rouge_l", "A", "B", a, b)
    assert c.ci_low > 0.25 and c.ci_high < 0.35
    assert c.ci_low < c.delta < c.ci_high


def test_a_known_improvement_is_called_better_with_a_small_p_value():
    a, b = synthetic(200, 0.3)
    c = compare_paired("rouge_l", "A", "B", a, b)
    assert c.outcome == "better"
    assert c.p_value < 0.001


def test_the_verdict_names_the_metric_delta_interval_and_p_value():
    a, b = synthetic(200, 0.3)
    c = compare_paired("rouge_l", "A", "B", a, b)
    assert c.verdict == f"B better on rouge_l by +0.30 [{c.ci_low:.2f}, {c.ci_high:.2f}] (p<0.001)"


def test_data_without_a_difference_gets_a_ci_spanning_zero():
    a, b = synthetic(200, 0.0)
    c = compare_paired("rouge_l", "A", "B", a, b)
    assert c.ci_low < 0 < c.ci_high
    assert c.p_value > 0.05


def test_data_without_a_difference_is_reported_as_no_significant_difference():
    a, b = synthetic(200, 0.0)
    c = compare_paired("rouge_l", "A", "B", a, b)
    assert c.verdict.startswith("no significant difference between B and A on rouge_l: ")


def test_identical_scores_give_a_zero_interval_and_p_value_one():
    c = compare_paired("exact_match", "A", "B", [1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert (c.delta, c.ci_low, c.ci_high, c.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_a_worse_b_on_a_higher_is_better_metric_is_a_regression():
    a, b = synthetic(100, -0.2)
    c = compare_paired("exact_match", "A", "B", a, b)
    assert c.outcome == "worse" and c.regression


def test_a_lower_value_on_a_lower_is_better_metric_is_better():
    a, b = synthetic(100, -0.2)
    c = compare_paired("perplexity", "A", "B", a, b, higher_is_better=False)
    assert c.outcome == "better" and not c.regression


def test_a_worse_ungated_metric_is_not_a_regression():
    a, b = synthetic(100, 0.2)
    c = compare_paired("latency_s", "A", "B", a, b, higher_is_better=False, gate=False)
    assert c.outcome == "worse" and not c.regression


def test_a_neutral_metric_reports_higher_or_lower():
    a, b = synthetic(100, 0.5)
    assert compare_paired("completion_tokens", "A", "B", a, b, higher_is_better=None).outcome == "higher"


def test_three_examples_that_all_improve_are_not_enough_for_significance():
    # every bootstrap resample has mean delta 1, but only 2 of 8 sign patterns are that extreme
    c = compare_paired("exact_match", "A", "B", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert c.p_value == pytest.approx(0.25, abs=0.03)
    assert c.outcome == "same"


def test_examples_missing_on_either_side_are_left_out_of_the_pairs():
    c = compare_paired("judge", "A", "B", [0.5, None, 0.25], [0.75, 1.0, None])
    assert c.n == 1 and c.delta == pytest.approx(0.25)


def test_the_bootstrap_is_reproducible_for_a_seed():
    a, b = synthetic(50, 0.1)
    deltas = [y - x for x, y in zip(a, b, strict=True)]
    assert paired_bootstrap(deltas, seed=7) == paired_bootstrap(deltas, seed=7)
    assert sign_flip_p_value(deltas, seed=7) == sign_flip_p_value(deltas, seed=7)


def test_a_noise_level_delta_is_no_difference_however_consistent():
    a = [0.5 + i / 100 for i in range(30)]
    c = compare_paired("exact_match", "A", "B", a, [x + 1e-9 for x in a])
    assert c.outcome == "same" and not c.regression
    assert c.verdict.startswith("no significant difference between B and A on exact_match: ")
    assert c.verdict.endswith(f", below min_delta {c.min_delta:.2g}")


def test_min_delta_zero_lets_any_consistent_delta_be_significant():
    a = [0.5 + i / 100 for i in range(30)]
    assert compare_paired("exact_match", "A", "B", a, [x + 1e-9 for x in a], min_delta=0).outcome == "better"


def test_a_significant_delta_below_min_delta_is_a_tie():
    a, b = synthetic(200, 0.3)
    assert compare_paired("rouge_l", "A", "B", a, b, min_delta=0.5).outcome == "same"
    assert compare_paired("rouge_l", "A", "B", a, b, min_delta=0.1).outcome == "better"


def test_a_negative_min_delta_is_rejected():
    from llmops_magics.errors import ValidationError
    from llmops_magics.ops.evaluate import EvalSpec

    with pytest.raises(ValidationError, match=r"min_delta must be a number >= 0, found -0\.1"):
        EvalSpec(target=("a",), data="qa", min_delta=-0.1)
