"""The drift tests, validated by simulation with known truth (seeded, a few seconds).

Each detector is run on same-distribution splits (no drift: a flag is a false alarm) and
on samples with a shift of known size (a miss is a failure of power), over at least 40
seeds. "Flagged" means the check's status is ``fail`` under the default thresholds.
"""

from __future__ import annotations

import numpy as np
import pytest

from llmops_magics.monitoring.checks import DEFAULTS, classifier_check, embedding_check, length_check
from llmops_magics.monitoring.drift import domain_classifier, mmd, psi

SEEDS = range(40)
VOCAB = [f"w{i}" for i in range(400)]
ZIPF = 1 / np.arange(1, len(VOCAB) + 1)
ZIPF /= ZIPF.sum()
TOPIC = [f"topic{i}" for i in range(60)]  # words the reference never uses


def texts(rng, n: int, share: float = 0.0) -> list[str]:
    """``n`` texts of 6-15 Zipf-distributed words; a ``share`` of them start with 3 off-topic words."""
    out = []
    for _ in range(n):
        words = list(rng.choice(VOCAB, size=int(rng.integers(6, 16)), p=ZIPF))
        if rng.random() < share:
            words[:3] = rng.choice(TOPIC, size=3)
        out.append(" ".join(words))
    return out


def flag_rate(statuses: list[str]) -> float:
    return statuses.count("fail") / len(statuses)


# ---------------------------------------------------------------------- domain classifier


def test_the_domain_classifier_stays_quiet_on_same_distribution_splits():
    statuses = []
    for seed in SEEDS:
        pool = texts(np.random.default_rng(seed), 400)
        statuses.append(classifier_check(pool[:200], pool[200:], DEFAULTS, seed=seed).status)
    assert flag_rate(statuses) <= 0.05, statuses


def test_the_domain_classifier_flags_half_the_inputs_turning_to_a_new_topic():
    statuses = []
    for seed in SEEDS:
        rng = np.random.default_rng(1000 + seed)
        statuses.append(classifier_check(texts(rng, 200), texts(rng, 200, share=0.5), DEFAULTS, seed=seed).status)
    assert flag_rate(statuses) >= 0.9, statuses


def test_the_domain_classifier_names_the_new_words_and_shows_shifted_inputs():
    rng = np.random.default_rng(7)
    result = domain_classifier(texts(rng, 300), texts(rng, 300, share=0.5), seed=7)
    assert result.auc > 0.7 and result.p_value < 0.01
    assert all(word.startswith("topic") for word, _ in result.live_words[:5])
    assert sum(example.startswith("topic") for example in result.examples) >= 4


def test_the_domain_classifier_reads_the_same_verdict_from_the_same_seed():
    rng = np.random.default_rng(3)
    ref, live = texts(rng, 100), texts(rng, 100, share=0.3)
    assert domain_classifier(ref, live, seed=5) == domain_classifier(ref, live, seed=5)


# ---------------------------------------------------------------------- MMD on embeddings


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # MiniLM embeddings are L2-normalised


def test_mmd_stays_quiet_on_same_distribution_splits():
    statuses = []
    for seed in SEEDS:
        pool = _unit(np.random.default_rng(seed).normal(size=(300, 32)))
        statuses.append(embedding_check(pool[:150], pool[150:], DEFAULTS, seed=seed).status)
    assert flag_rate(statuses) <= 0.05, statuses


def test_mmd_flags_a_known_shift_of_the_embedding_mean():
    statuses = []
    for seed in SEEDS:
        rng = np.random.default_rng(1000 + seed)
        shifted = rng.normal(size=(150, 32))
        shifted[:, 0] += 1.0  # one standard deviation along one direction
        statuses.append(embedding_check(_unit(rng.normal(size=(150, 32))), _unit(shifted), DEFAULTS, seed=seed).status)
    assert flag_rate(statuses) >= 0.9, statuses


def test_mmd_p_values_are_calibrated_under_no_drift():
    p = [mmd(*np.split(np.random.default_rng(s).normal(size=(120, 8)), 2), seed=s).p_value for s in range(100)]
    assert np.mean(np.array(p) < 0.05) <= 0.1 and np.mean(np.array(p) < 0.5) == pytest.approx(0.5, abs=0.15)


# ---------------------------------------------------------------------- lengths: PSI and KS


def test_length_checks_stay_quiet_on_same_distribution_splits():
    statuses = []
    for seed in range(100):
        lengths = np.round(np.random.default_rng(seed).lognormal(4.0, 0.5, 400))
        statuses.append(length_check("input_length", lengths[:200], lengths[200:], DEFAULTS).status)
    assert flag_rate(statuses) <= 0.05, statuses


def test_length_checks_flag_inputs_grown_by_half():
    statuses = []
    for seed in SEEDS:
        rng = np.random.default_rng(1000 + seed)
        before, after = rng.lognormal(4.0, 0.5, 200), rng.lognormal(4.0 + np.log(1.5), 0.5, 200)
        statuses.append(length_check("input_length", np.round(before), np.round(after), DEFAULTS).status)
    assert flag_rate(statuses) >= 0.9, statuses


def test_a_large_psi_on_a_handful_of_requests_does_not_fail_without_a_significant_ks_test():
    check = length_check("input_length", [10] * 6 + [20] * 6, [10] * 3 + [20] * 9, DEFAULTS)
    assert check.value >= DEFAULTS["psi_warn"] and check.status == "pass"


def test_psi_matches_the_formula_on_two_bins():
    # reference quantile bins split at 15: shares 0.5/0.5 against 0.25/0.75
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi([10, 10, 20, 20], [10, 20, 20, 20], bins=2) == pytest.approx(expected)


def test_psi_separates_values_above_a_constant_reference():
    assert psi([4] * 50, [16] * 50) > 5 and psi([4] * 50, [4] * 50) == 0.0
