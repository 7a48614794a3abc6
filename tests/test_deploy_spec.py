"""Deployment specs, canary parsing and routing, summaries, and the vLLM command: no server needed."""

from __future__ import annotations

import json

import pytest

from llmops_magics.errors import ValidationError
from llmops_magics.modelserver.routing import CanaryRouter
from llmops_magics.ops.argv import redact_command
from llmops_magics.ops.deploy import Canary, DeploySpec, parse_canary
from llmops_magics.serving.stats import flatten, percentile, summarize

# ---------------------------------------------------------------------- canary syntax


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("adapter://qa-lora/2:10%", ("adapter://qa-lora/2", 10.0)),
        ("qa-lora@staging:2.5%", ("qa-lora@staging", 2.5)),
        ("adapter://qa-lora/2:50", ("adapter://qa-lora/2", 50.0)),
    ],
)
def test_a_canary_is_a_reference_and_a_percentage(text, expected):
    assert parse_canary(text) == Canary(*expected)


@pytest.mark.parametrize("text", ["adapter://qa-lora/2", "adapter://qa-lora/2:0%", "qa:100%", "qa:ten%", ":10%", ""])
def test_a_canary_without_a_share_strictly_between_0_and_100_is_rejected(text):
    with pytest.raises(ValidationError, match="canary"):
        parse_canary(text)


# ---------------------------------------------------------------------- spec


def test_a_spec_round_trips_through_its_dict():
    spec = DeploySpec(name="qa", target="adapter://qa/1", canary="adapter://qa/2:10%")
    assert DeploySpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.canary_arm == Canary("adapter://qa/2", 10.0)


def test_how_to_start_a_deployment_does_not_change_its_identity():
    a = DeploySpec(name="qa", target="adapter://qa/1")
    assert a.digest() == a.replace(timeout=5.0, export=None).digest()
    assert a.digest() != a.replace(max_batch_size=4).digest()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("engine", "triton", "engine must be one of builtin, ray, vllm"),
        ("port", 70000, "port must be an integer from 0 to 65535"),
        ("max_batch_size", 0, "max_batch_size must be an integer from 1 to 256"),
        ("max_wait_ms", -1, "max_wait_ms must be a number"),
        ("name", "bad name", "deployment name may hold only"),
        ("host", "", "host must be an interface address"),
    ],
)
def test_a_spec_rejects_bad_values_naming_the_field(field, value, message):
    with pytest.raises(ValidationError, match=message):
        DeploySpec(**{"name": "qa", "target": "model://m/1", field: value})


def test_vllm_deployments_take_no_canary():
    with pytest.raises(ValidationError, match="vllm engine serves one version"):
        DeploySpec(name="qa", target="model://m/1", engine="vllm", canary="model://m/2:5%")


@pytest.mark.parametrize(
    "line",
    ["qa --api-key sekrit --name x", "qa --api-key=sekrit", "qa --api-key 'sekrit' --port 9"],
)
def test_the_stored_magic_line_hides_the_api_key(line):
    redacted = redact_command(f"%deploy {line}", DeploySpec)
    assert "sekrit" not in redacted and "--api-key" in redacted and "***" in redacted


# ---------------------------------------------------------------------- routing


def test_the_router_sends_a_user_to_the_same_arm_every_time():
    router = CanaryRouter("svc", [("primary", 80.0), ("canary", 20.0)])
    assert {u: router.choose(u) for u in map(str, range(50))} == {u: router.choose(u) for u in map(str, range(50))}


def test_the_router_splits_users_in_proportion():
    router = CanaryRouter("svc", [("primary", 90.0), ("canary", 10.0)])
    share = sum(router.choose(f"user{i}") == "canary" for i in range(5000)) / 5000
    assert 0.08 < share < 0.12


def test_raising_the_canary_share_keeps_its_users_in_the_canary():
    small = CanaryRouter("svc", [("primary", 90.0), ("canary", 10.0)])
    large = CanaryRouter("svc", [("primary", 70.0), ("canary", 30.0)])
    users = [f"user{i}" for i in range(2000)]
    assert all(large.choose(u) == "canary" for u in users if small.choose(u) == "canary")


def test_a_single_arm_takes_every_request():
    assert {CanaryRouter("svc", [("primary", 100.0)]).choose(u) for u in (None, "a", "b")} == {"primary"}


# ---------------------------------------------------------------------- summaries


def test_percentiles_use_the_nearest_rank():
    assert (percentile([5, 1, 3, 2, 4], 50), percentile(list(range(1, 101)), 95), percentile([], 50)) == (3, 95, None)


def test_a_summary_separates_arms_and_counts_errors_apart_from_latency():
    rows = [
        {"ts": 0, "arm": "primary", "status": 200, "latency_ms": 10, "prompt_tokens": 3, "completion_tokens": 2},
        {"ts": 1, "arm": "canary", "status": 200, "latency_ms": 30, "prompt_tokens": 4, "completion_tokens": 1},
        {"ts": 2, "arm": "canary", "status": 400, "latency_ms": 1, "prompt_tokens": 0, "completion_tokens": 0},
    ]
    s = summarize(rows, window_s=10)
    assert (s["all"]["requests"], s["all"]["errors"], s["arms"]["canary"]["p50_ms"]) == (3, 1, 30.0)
    assert (s["all"]["throughput_rps"], s["all"]["tokens_in"], s["arms"]["canary"]["error_rate"]) == (0.2, 7, 0.5)


def test_a_summary_prices_each_answered_request_by_the_version_that_answered_it(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.llmops.prices]\nqa-lora = { input = 2.0, output = 10.0 }\n"model://base/1" = { input = 1.0, output = 1.0 }\n'
    )
    monkeypatch.chdir(tmp_path)
    rows = [
        {"ts": 0, "arm": "primary", "status": 200, "version": "adapter://qa-lora/3", "prompt_tokens": 1000, "completion_tokens": 100},
        {"ts": 1, "arm": "canary", "status": 200, "version": "model://base/1", "prompt_tokens": 500, "completion_tokens": 500},
        {"ts": 2, "arm": "canary", "status": 500, "version": "model://base/1", "prompt_tokens": 9999, "completion_tokens": 9999},
        {"ts": 3, "arm": "shadow", "status": 200, "version": "adapter://unpriced/1", "prompt_tokens": 7, "completion_tokens": 7},
    ]  # fmt: skip
    s = summarize(rows, window_s=10)
    assert s["arms"]["primary"]["cost_usd"] == pytest.approx((1000 * 2.0 + 100 * 10.0) / 1e6)
    assert s["arms"]["canary"]["cost_usd"] == pytest.approx(1000 * 1.0 / 1e6)  # the failed request is not counted
    assert s["arms"]["shadow"]["cost_usd"] is None  # nothing it served is priced
    assert s["all"]["cost_usd"] == pytest.approx(0.003 + 0.001)
    assert flatten(s)["canary/cost_usd"] == pytest.approx(0.001)
    from llmops_magics.serving.views import DeploymentStatus

    table = str(DeploymentStatus("svc", {"url": "http://x"}, "running", None, s, 10))
    assert "cost" in table and "$0.003" in table and "$0.004" in table


def test_without_prices_a_summary_has_no_cost(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = summarize([{"ts": 0, "arm": "primary", "status": 200, "version": "adapter://x/1", "prompt_tokens": 5}])
    assert s["all"]["cost_usd"] is None and "cost_usd" not in flatten(s)
