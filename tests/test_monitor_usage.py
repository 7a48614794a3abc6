"""A monitor reports what the deployment's traffic spent: tokens, dollars, dollars per 1,000 requests.

The request log is written by the server's own writer (``RequestLog``) with known token counts
and versions, under a deployment record of this registry, so ``monitor`` runs for real without
a server process; every expected number is computed here from the rows written and the prices
in ``[tool.llmops.prices]``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import read_wandb_run

from llmops_magics import monitor
from llmops_magics.monitoring.checks import DEFAULTS, thresholds
from llmops_magics.monitoring.usage import cost_check, window_usage

PRIMARY, CANARY = "adapter://qa-lora/1", "adapter://qa-lora-v2/1"
PRICES = {"qa-lora": (2.0, 8.0), "qa-lora-v2": (1.0, 3.0)}


def traffic(now: float) -> list[dict]:
    """24 answered requests (16 primary, 8 canary), 2 errors, and one row of an old log without a version."""
    rows = [
        {"ts": now - 60 + i, "status": 200, "arm": "primary", "version": PRIMARY, "latency_ms": 10.0,
         "prompt_tokens": 10 + i, "completion_tokens": 4 + i % 3}
        for i in range(15)
    ]  # fmt: skip
    rows += [
        {"ts": now - 40 + i, "status": 200, "arm": "canary", "version": CANARY, "latency_ms": 10.0,
         "prompt_tokens": 30, "completion_tokens": 2 * i}
        for i in range(8)
    ]  # fmt: skip
    rows.append({"ts": now - 30, "status": 200, "arm": "primary", "latency_ms": 10.0, "prompt_tokens": 7,
                 "completion_tokens": 1})  # fmt: skip
    rows += [{"ts": now - 20, "status": 500, "arm": "primary", "version": PRIMARY, "prompt_tokens": 99} for _ in "ab"]
    return rows


def expected(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per version, by hand: the rows without a version belong to the deployment's target (PRIMARY)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["status"] >= 400:
            continue
        v = out.setdefault(r.get("version") or PRIMARY, {"requests": 0, "in": 0, "out": 0})
        v["requests"] += 1
        v["in"] += r["prompt_tokens"]
        v["out"] += r["completion_tokens"]
    for version, v in out.items():
        i, o = PRICES[version.split("://")[1].split("/")[0]]
        v["cost"] = (v["in"] * i + v["out"] * o) / 1e6
    return out


def write_prices(folder: Path, monitor_table: str = "") -> None:
    lines = "".join(f'"{n}" = {{ input = {i}, output = {o} }}\n' for n, (i, o) in PRICES.items())
    (folder / "pyproject.toml").write_text("[tool.llmops.prices]\n" + lines + monitor_table)


def fake_deployment(ws, rows: list[dict], name: str = "svc") -> None:
    """A deployment record, its stored spec and its request log, as ``%deploy`` leaves them."""
    from llmops_magics.ops.deploy import DeploySpec
    from llmops_magics.serving.requestlog import RequestLog, monitor_path

    folder = ws.registry.home / "deployments" / name
    folder.mkdir(parents=True)
    config = folder / "config-v1.json"
    config.write_text(json.dumps({"spec": DeploySpec(target=PRIMARY, name=name).to_dict()}))
    db = monitor_path(ws.registry.home, name)
    log = RequestLog(db)
    for r in rows:
        log.record(r)
    log.close()
    state = {"name": name, "ref": None, "target": PRIMARY, "monitor_db": str(db), "config_path": str(config),
             "started_at": min(r["ts"] for r in rows) - 1, "request_log": True}  # fmt: skip
    ws.registry.put_state("deployments", name, state)


def test_tokens_and_dollars_are_summed_per_served_version_over_answered_requests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_prices(tmp_path)
    rows = traffic(1000.0)
    usage = window_usage(rows, PRIMARY)
    want = expected(rows)
    assert set(usage["versions"]) == {PRIMARY, CANARY} and usage["priced"] == sorted([PRIMARY, CANARY])
    for version, v in want.items():
        got = usage["versions"][version]
        assert (got["requests"], got["prompt_tokens"], got["completion_tokens"]) == (v["requests"], v["in"], v["out"])
        assert got["cost_usd"] == pytest.approx(v["cost"])
        assert got["cost_per_1k_requests"] == pytest.approx(1000 * v["cost"] / v["requests"])
    assert usage["requests"] == 24 and usage["prompt_tokens"] == sum(v["in"] for v in want.values())
    total = sum(v["cost"] for v in want.values())
    assert usage["cost_usd"] == pytest.approx(total)
    assert usage["cost_per_1k_requests"] == pytest.approx(1000 * total / 24)


def test_the_cost_check_fails_past_its_limit_warns_near_it_and_passes_under_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_prices(tmp_path)
    usage = window_usage(traffic(1000.0), PRIMARY)
    per_1k = usage["cost_per_1k_requests"]
    status = lambda limit: cost_check(usage, {**DEFAULTS, "max_cost_per_1k": limit}).status
    assert (status(per_1k * 0.99), status(per_1k * 1.1), status(per_1k * 2)) == ("fail", "warn", "pass")
    check = cost_check(usage, {**DEFAULTS, "max_cost_per_1k": per_1k * 2})
    assert (check.value, check.fail, check.unit) == (pytest.approx(per_1k), per_1k * 2, "$")


def test_the_cost_check_skips_without_a_price_without_a_limit_and_with_too_few_requests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = traffic(1000.0)
    unpriced = cost_check(window_usage(rows, PRIMARY), {**DEFAULTS, "max_cost_per_1k": 1.0})
    assert unpriced.status == "skip" and "no price for adapter://qa-lora-v2/1, adapter://qa-lora/1" in unpriced.reason
    write_prices(tmp_path)
    usage = window_usage(rows, PRIMARY)
    unlimited = cost_check(usage, DEFAULTS)  # max_cost_per_1k defaults to 0: no limit, the value still shown
    assert unlimited.status == "skip" and unlimited.value == pytest.approx(usage["cost_per_1k_requests"])
    assert "max_cost_per_1k" in unlimited.reason
    few = cost_check(usage, {**DEFAULTS, "max_cost_per_1k": 1.0, "min_requests": 25.0})
    assert few.status == "skip" and "24 answered request(s)" in few.reason


def test_max_cost_per_1k_is_a_threshold_of_the_project_table_and_of_the_call(tmp_path):
    assert thresholds(config={"max_cost_per_1k": 0.5})["max_cost_per_1k"] == 0.5
    assert thresholds({"max_cost_per_1k": 2}, config={"max_cost_per_1k": 0.5})["max_cost_per_1k"] == 2.0
    with pytest.raises(Exception, match="max_cost_per_1k must be a number of at least 0"):
        thresholds({"max_cost_per_1k": -1}, config={})


def test_a_monitor_run_stores_shows_and_logs_what_the_window_spent(workspace, tmp_path):
    from llmops_magics.monitoring.report import get_monitor

    now = time.time()
    rows = traffic(now)
    fake_deployment(workspace, rows)
    want = expected(rows)
    total = sum(v["cost"] for v in want.values())
    per_1k = 1000 * total / 24
    write_prices(tmp_path, f"[tool.llmops.monitor]\nmax_cost_per_1k = {per_1k * 0.5}\nerror_rate = 0.5\n")
    report = monitor("svc", window="1h", checks="slo", workspace=workspace)
    check = report["cost_per_1k_requests"]
    assert check.status == "fail" and check.value == pytest.approx(per_1k) and check.fail == pytest.approx(per_1k / 2)
    assert report.failed and report.failures == ["cost_per_1k_requests"]
    stored = get_monitor(report.ref, workspace=workspace)
    assert stored.usage["cost_usd"] == pytest.approx(total) and stored.usage["requests"] == 24
    assert workspace.registry.resolve(report.ref).metadata["usage"]["prompt_tokens"] == sum(
        v["in"] for v in want.values()
    )
    assert f"usage: 24 answered requests: {sum(v['in'] for v in want.values()):,} in + " in str(report)
    assert "monitor-usage" in report._repr_mimebundle_()[0]["text/html"]
    assert workspace.recorder.flush(60)  # the run summary is written by the recorder's worker (a race otherwise)
    (run,) = [r for r in workspace.memory.runs if r.job_type == "monitor"]
    assert run.summary_values["usage/cost_usd"] == pytest.approx(total)
    assert run.summary_values["usage/adapter:qa-lora-v2/1/prompt_tokens"] == want[CANARY]["in"]
    assert run.summary_values["cost_per_1k_requests/status"] == "fail" and run.finished == 1
    passed = monitor("svc", window="1h", checks="slo", thresholds={"max_cost_per_1k": per_1k * 2}, workspace=workspace)
    assert passed["cost_per_1k_requests"].status == "pass" and not passed.failed


@pytest.mark.wandb
def test_the_monitors_offline_wandb_run_holds_the_windows_tokens_and_dollars(wandb_workspace, tmp_path):
    rows = traffic(time.time())
    fake_deployment(wandb_workspace, rows)
    write_prices(tmp_path)
    want = expected(rows)
    report = monitor("svc", window="1h", checks="slo", workspace=wandb_workspace)
    assert wandb_workspace.recorder.flush(120)
    records = read_wandb_run(Path(report.wandb["run_dir"]))
    run = next(r["run"] for r in records if r["type"] == "run")
    assert run["job_type"] == "monitor"
    summary: dict = {}
    for r in records:
        if r["type"] == "summary":
            summary.update(r["summary"].get("update", {}))
    assert summary["usage/prompt_tokens"] == sum(v["in"] for v in want.values())
    assert summary["usage/completion_tokens"] == sum(v["out"] for v in want.values())
    assert summary["usage/cost_usd"] == pytest.approx(sum(v["cost"] for v in want.values()))
    assert summary["cost_per_1k_requests/status"] == "skip"  # priced, but no limit set


def test_an_unpriced_version_is_left_out_of_the_cost_per_1k_and_counted_in_the_checks_detail(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.llmops.prices]\nqa-lora = { input = 2.0, output = 8.0 }\n")
    rows = traffic(1000.0)
    usage = window_usage(rows, PRIMARY)
    primary = expected(rows)[PRIMARY]  # the canary (8 answered requests) has no price
    assert usage["priced"] == [PRIMARY] and (usage["priced_requests"], usage["unpriced_requests"]) == (16, 8)
    assert usage["cost_usd"] == pytest.approx(primary["cost"]) and usage["versions"][CANARY]["cost_usd"] is None
    per_1k = 1000 * primary["cost"] / primary["requests"]
    assert usage["cost_per_1k_requests"] == pytest.approx(per_1k)  # not diluted by the canary's 8 requests
    check = cost_check(usage, {**DEFAULTS, "max_cost_per_1k": per_1k * 0.99, "min_requests": 16.0})
    assert check.status == "fail" and check.value == pytest.approx(per_1k)
    assert check.details["unpriced_requests"] == 8 and "8 of 24 answered request(s) unpriced" in check.reason
    assert CANARY in check.reason
    few = cost_check(usage, {**DEFAULTS, "max_cost_per_1k": 1.0, "min_requests": 20.0})  # 16 priced: too few
    assert few.status == "skip" and "16 answered request(s) priced" in few.reason


def test_a_malformed_price_table_costs_the_monitor_its_dollars_only_unless_a_limit_needs_them(
    workspace, tmp_path, monkeypatch
):
    from llmops_magics.errors import ValidationError
    from llmops_magics.evaluation import usage as eval_usage

    monkeypatch.setattr(eval_usage, "_WARNED", set())
    rows = traffic(time.time())
    fake_deployment(workspace, rows)
    (tmp_path / "pyproject.toml").write_text('[tool.llmops.prices]\nqa-lora = { input = "two", output = 8 }\n')
    with pytest.warns(eval_usage.PriceWarning) as caught:
        report = monitor("svc", window="1h", checks="slo", workspace=workspace)
        monitor("svc", window="1h", checks="slo", workspace=workspace)
    (named,) = [w for w in caught if issubclass(w.category, eval_usage.PriceWarning)]
    assert "[tool.llmops.prices] qa-lora must be" in str(named.message)
    check = report["cost_per_1k_requests"]
    assert check.status == "skip" and "[tool.llmops.prices] qa-lora must be" in check.reason
    assert report.usage["prompt_tokens"] == sum(v["in"] for v in expected(rows).values())
    assert report.usage["cost_usd"] is None and report.usage["cost_per_1k_requests"] is None
    assert report["error_rate"].status in {"pass", "warn", "fail"}  # the other checks were made
    with pytest.raises(ValidationError, match=r"qa-lora must be .*max_cost_per_1k=0.5 cannot be checked") as info:
        monitor("svc", window="1h", checks="slo", thresholds={"max_cost_per_1k": 0.5}, workspace=workspace)
    assert "\n" not in str(info.value)


def test_deploy_status_prices_rows_without_a_version_by_the_target_as_the_monitor_does(workspace, tmp_path):
    from llmops_magics.serving.status import deployment_status

    now = time.time()
    rows = traffic(now)
    fake_deployment(workspace, rows)
    write_prices(tmp_path)
    want = expected(rows)  # the versionless row is the target's (PRIMARY)
    status = deployment_status("svc", window_s=3600, workspace=workspace)
    assert status.summary["all"]["cost_usd"] == pytest.approx(sum(v["cost"] for v in want.values()), rel=1e-12)
    assert status.summary["arms"]["primary"]["cost_usd"] == pytest.approx(want[PRIMARY]["cost"], rel=1e-12)
    assert status.summary["all"]["cost_usd"] == pytest.approx(window_usage(rows, PRIMARY)["cost_usd"], rel=1e-12)


def test_deploy_status_leaves_out_the_cost_of_a_malformed_price_table_and_names_it_once(tmp_path, monkeypatch):
    from llmops_magics.evaluation import usage as eval_usage
    from llmops_magics.serving.stats import summarize

    monkeypatch.setattr(eval_usage, "_WARNED", set())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.llmops]\nprices = "cheap"\n')
    with pytest.warns(eval_usage.PriceWarning) as caught:
        first, second = summarize(traffic(1000.0), 60, PRIMARY), summarize(traffic(1000.0), 60, PRIMARY)
    assert len([w for w in caught if issubclass(w.category, eval_usage.PriceWarning)]) == 1
    assert first["all"]["cost_usd"] is None and second["all"]["tokens_in"] == sum(
        v["in"] for v in expected(traffic(1000.0)).values()
    )
