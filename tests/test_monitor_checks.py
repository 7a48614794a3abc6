"""Monitor checks on rows with known answers: thresholds' layers, service-level arithmetic, statuses."""

from __future__ import annotations

import pytest

from llmops_magics.errors import ValidationError
from llmops_magics.monitoring.checks import DEFAULTS, Check, measure, overall, slo_checks, thresholds
from llmops_magics.ops.monitor import MonitorSpec, seconds


def rows(n: int, *, latency=lambda i: 10.0 * (i + 1), status=lambda i: 200, arm=lambda i: "primary"):
    return [
        {"ts": float(i), "status": status(i), "latency_ms": latency(i), "ttft_ms": latency(i) / 2, "arm": arm(i)}
        for i in range(n)
    ]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_p95_latency_is_the_nearest_rank_percentile_of_successful_requests():
    checks = by_name(slo_checks(rows(100), span_s=50.0, limits=DEFAULTS))
    assert checks["p95_latency_ms"].value == 950.0 and checks["p95_ttft_ms"].value == 475.0
    assert checks["throughput_rps"].value == 2.0 and checks["error_rate"].value == 0.0


def test_time_per_output_token_and_queue_time_have_their_own_checks_and_skip_when_not_recorded():
    data = [{**r, "tpot_ms": 5.0 * (i + 1), "queue_ms": 1000.0 if i >= 18 else 1.0} for i, r in enumerate(rows(20))]
    limits = {**DEFAULTS, "p95_tpot_ms": 50.0, "p95_queue_ms": 500.0}
    checks = by_name(slo_checks(data, span_s=10.0, limits=limits))
    assert (checks["p95_tpot_ms"].value, checks["p95_tpot_ms"].status) == (95.0, "fail")
    assert (checks["p95_queue_ms"].value, checks["p95_queue_ms"].status) == (
        1000.0,
        "fail",
    )  # 2 of 20 queued long: past the p95
    static = by_name(slo_checks(rows(20), span_s=10.0, limits=DEFAULTS))  # rows without the two timings
    assert static["p95_tpot_ms"].status == "skip" and static["p95_queue_ms"].status == "skip"


def test_errors_count_against_the_rate_but_not_against_latency():
    data = rows(40, status=lambda i: 500 if i % 4 == 0 else 429 if i % 4 == 1 else 200, latency=lambda i: 1.0)
    check = by_name(slo_checks(data, span_s=10.0, limits=DEFAULTS))["error_rate"]
    assert check.value == 0.5 and check.status == "fail"
    assert (check.details["server_errors"], check.details["client_errors"]) == (10, 10)


def test_a_service_level_warns_at_the_warn_ratio_of_its_limit_and_fails_past_it():
    limits = {**DEFAULTS, "p95_latency_ms": 100.0}
    assert measure("x", 79.0, warn=80.0, fail=100.0).status == "pass"
    statuses = [by_name(slo_checks(rows(20, latency=lambda i, v=v: v), span_s=1, limits=limits))["p95_latency_ms"].status
                for v in (79.0, 81.0, 101.0)]  # fmt: skip
    assert statuses == ["pass", "warn", "fail"]


def test_throughput_fails_below_its_minimum():
    limits = {**DEFAULTS, "min_throughput_rps": 5.0}
    check = by_name(slo_checks(rows(20), span_s=10.0, limits=limits))["throughput_rps"]
    assert check.value == 2.0 and check.status == "fail" and check.direction == "below"


def test_a_canary_gets_its_own_numbers_beside_the_total():
    data = rows(40, arm=lambda i: "canary" if i % 2 else "primary", latency=lambda i: 100.0 if i % 2 else 10.0)
    check = by_name(slo_checks(data, span_s=10.0, limits=DEFAULTS))["p95_latency_ms"]
    assert (check.details["primary"], check.details["canary"], check.value) == (10.0, 100.0, 100.0)


def test_overall_is_the_worst_status_and_skips_do_not_count():
    assert overall([Check("a", "pass"), Check("b", "skip")]) == "pass"
    assert overall([Check("a", "warn"), Check("b", "fail")]) == "fail"
    assert overall([Check("a", "skip")]) == "skip"


def test_thresholds_layer_defaults_then_the_project_table_then_the_call():
    out = thresholds({"error_rate": "0.2"}, config={"error_rate": 0.1, "p95_ttft_ms": 300, "window": "5m"})
    assert out == {**DEFAULTS, "error_rate": 0.2, "p95_ttft_ms": 300.0}


def test_the_project_table_is_read_from_pyproject(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.llmops.monitor]\np95_latency_ms = 750\n")
    monkeypatch.chdir(tmp_path)
    assert thresholds()["p95_latency_ms"] == 750.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"p95_latncy_ms": 1}, "unknown threshold(s) p95_latncy_ms"),
        ({"error_rate": 2}, "error_rate must be a number from 0 to 1"),
        ({"p95_latency_ms": "fast"}, "p95_latency_ms must be a number"),
        ({"alpha_fail": 0.2}, "alpha_fail (0.2) must not exceed alpha_warn"),
    ],
)
def test_a_bad_threshold_is_refused_with_its_name(overrides, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        thresholds(overrides, config={})


def test_the_spec_checks_window_checks_and_thresholds_whichever_front_made_it():
    spec = MonitorSpec(name="svc", window=300, checks=("slo,drift",), thresholds=["p95_latency_ms=800"])
    assert (spec.window, spec.checks, spec.thresholds) == ("300s", ("slo", "drift"), {"p95_latency_ms": 800})
    assert seconds("5m") == 300.0 and seconds("1.5h") == 5400.0
    for bad in ({"window": "soon"}, {"checks": ("latency",)}, {"thresholds": {"nope": 1}}, {"every": "0s"}):
        with pytest.raises(ValidationError):
            MonitorSpec(name="svc", **bad)


def test_the_report_escapes_what_traffic_wrote():
    from llmops_magics.monitoring.report import MonitorReport

    drift = Check("input_drift_classifier", "fail", 0.9, 0.6, 0.7, unit="AUC",
                  details={"live_words": [("<b>", 1.0)], "examples": ["<script>alert(1)</script>"]})  # fmt: skip
    report = MonitorReport("svc", None, {"start": 0.0, "end": 60.0, "seconds": 60.0}, [drift], dict(DEFAULTS))
    html = report._repr_mimebundle_()["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert report.failed and report.failures == ["input_drift_classifier"]


def test_the_magic_names_an_unknown_deployment_in_one_line(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no deployment is named 'nope'"):
        ip.run_line_magic("monitor", "nope --checks slo")


def test_reference_embeddings_are_kept_on_disk_for_the_next_process_and_never_reused_for_other_texts(
    tmp_path, monkeypatch
):
    import numpy as np

    from llmops_magics.models import embeddings
    from llmops_magics.monitoring import reference

    monkeypatch.setattr(reference, "_cache", {})
    texts = ["What is the national animal of Aldora?", "Which animal stands for Brelia?"]
    first = reference.embed_cached(texts, key=("k",), folder=tmp_path)
    other = reference.embed_cached(texts[:1], key=("k1",), folder=tmp_path)  # other texts: their own file
    files = sorted(tmp_path.glob("*.npy"))
    assert first.shape == (2, 384) and len(files) == 2
    np.testing.assert_allclose(other[0], first[0], atol=1e-5)

    def refuse(*_a, **_k):
        raise AssertionError("embedded again")

    reference._cache.clear()  # a new process: only the disk remembers
    with monkeypatch.context() as m:
        m.setattr(embeddings, "embed", refuse)
        np.testing.assert_array_equal(reference.embed_cached(texts, key=("k",), folder=tmp_path), first)
    for f in files:
        f.write_bytes(b"torn")  # a torn file is embedded again, not read
    reference._cache.clear()
    np.testing.assert_allclose(reference.embed_cached(texts, key=("k",), folder=tmp_path), first, atol=1e-5)
