"""``%deploy ab NAME``: a canary judged from its deployment's real request log, recorded as an ``abtest``.

The first tests write a request log with the server's own ``RequestLog`` and a deployment
record by hand (fast: no model, no server); the slow ones deploy the tiny model with a 50%
canary, send requests from simulated users and judge what the server logged.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from llmops_magics import NotFoundError, ValidationError, ab
from llmops_magics.serving.requestlog import RequestLog, monitor_path

PRIMARY, CANARY = "adapter://qa-lora/1", "adapter://qa-lora/2"


def _state(ws, name: str, *, canary: dict | None, started_at: float) -> dict:
    """A deployment record as ``serving/control`` writes it (the fields ``ab`` reads), with its artifact."""
    for ref in (PRIMARY, CANARY):
        ws.registry.save("adapter", "qa-lora", data=ref.encode())
    dep = ws.registry.save("deployment", name, data=b"{}").artifact
    state = {"name": name, "ref": dep.ref, "target": PRIMARY, "canary": canary, "started_at": started_at,
             "monitor_db": str(monitor_path(ws.registry.home, name))}  # fmt: skip
    ws.registry.put_state("deployments", name, state)
    return state


def _log(state: dict, rows: list[dict]) -> None:
    log = RequestLog(state["monitor_db"], salt="s")
    for row in rows:
        log.record({"endpoint": "completions", "status": 200, "latency_ms": 100.0, "ttft_ms": 50.0, **row})
    log.close()


def test_ab_names_a_missing_deployment_and_refuses_one_without_a_canary(workspace):
    with pytest.raises(NotFoundError, match="no deployment is named 'nope'"):
        ab("nope")
    _state(workspace, "solo", canary=None, started_at=time.time())
    with pytest.raises(ValidationError, match="has no canary to judge; add one with %deploy solo --canary"):
        ab("solo")


def test_ab_reads_only_the_current_split_and_the_versions_its_arms_serve(workspace):
    now = time.time()
    state = _state(workspace, "svc", canary={"target": CANARY, "weight": 50.0}, started_at=now - 60)
    users = [f"u{i}" for i in range(40)]
    _log(state, [{"ts": now - 3600, "user": "old", "arm": "primary", "version": PRIMARY}])  # before the split
    _log(state, [{"ts": now - 30, "user": "pinned", "arm": "canary", "version": "adapter://qa-lora/9"}])
    _log(state, [{"ts": now - 10, "user": u, "arm": ("primary", "canary")[i % 2],
                  "version": (PRIMARY, CANARY)[i % 2]} for i, u in enumerate(users)])  # fmt: skip
    result = ab("svc", min_users=5)
    summary = result.to_dict()
    assert summary["users"] == {"primary": 20, "canary": 20} and summary["other_requests"] == 1
    assert ab("svc", window="2h", min_users=5).to_dict()["users"] == {"primary": 21, "canary": 20}


def test_ab_records_an_abtest_linked_to_the_deployment_and_both_versions_once_per_log(workspace):
    now = time.time()
    state = _state(workspace, "svc", canary={"target": CANARY, "weight": 50.0}, started_at=now - 60)
    _log(state, [{"ts": now - 5, "user": f"u{i}", "arm": ("primary", "canary")[i % 2],
                  "version": (PRIMARY, CANARY)[i % 2]} for i in range(10)])  # fmt: skip
    first, again = ab("svc"), ab("svc")
    assert first.ref == again.ref == "abtest://svc/1"
    edges = {(e.source, e.relation) for e in workspace.registry.upstream(first.ref, depth=1)}
    assert edges == {(state["ref"], "deployment"), (PRIMARY, "primary"), (CANARY, "canary")}
    stored = workspace.registry.resolve(first.ref)
    assert stored.spec["op"] == "ab" and stored.metadata["verdict"] == "inconclusive"


def test_the_result_shows_the_verdict_and_every_metric_with_its_text_escaped(workspace):
    now = time.time()
    state = _state(workspace, "svc", canary={"target": CANARY, "weight": 50.0}, started_at=now - 60)
    _log(state, [{"ts": now - 5, "user": f"u{i}", "arm": ("primary", "canary")[i % 2],
                  "version": (PRIMARY, CANARY)[i % 2]} for i in range(10)])  # fmt: skip
    bundle = ab("svc", metrics="latency,error_rate")._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "no detectable difference yet" in data["text/plain"] and "always-valid interval" in data["text/plain"]
    assert "latency" in data["text/html"] and "error rate" in data["text/html"] and "<script" not in data["text/html"]


def test_llmops_ab_prints_the_verdict_and_the_abtest_reference_last(workspace, capsys):
    from llmops_magics.adapters.cli import main as cli

    now = time.time()
    state = _state(workspace, "svc", canary={"target": CANARY, "weight": 10.0}, started_at=now - 60)
    _log(state, [{"ts": now - 5, "user": f"u{i}", "arm": "primary", "version": PRIMARY} for i in range(50)])
    assert cli(["--home", str(workspace.home), "ab", "svc", "-m", "latency", "--window", "5m"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "abtest://svc/1" and any(line.startswith("verdict: no detectable difference yet") for line in out)


# ---------------------------------------------------------------------- a real canary deployment

KEY = "ab-key"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """``abt`` serving qa-lora/1 with qa-lora/2 as a 50% canary; 40 users send two requests each, 3 send none."""
    from deploy_support import build_folders, logged_requests, module_workspace, register, stop_all

    from llmops_magics import deploy

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    home = tmp_path_factory.mktemp("deploy-ab") / ".llmops"
    with module_workspace(home) as ws:
        refs = register(ws, folders)
        try:
            handle = deploy(refs.adapter, name="abt", canary=f"{refs.adapter_v2}:50%", threads=1, api_key=KEY)
            users = [f"user-{i}" for i in range(40)] * 2 + [None] * 3
            with ThreadPoolExecutor(8) as pool:
                arms = list(pool.map(lambda u: _complete(handle.url, u), users))
            logged_requests(handle, at_least=len(users))
            yield {"ws": ws, "home": home, "refs": refs, "handle": handle, "arms": dict(zip(users, arms, strict=True))}
        finally:
            stop_all(ws)


def _complete(url: str, user: str | None) -> str:
    body = {"model": "abt", "prompt": "The flag of", "max_tokens": 1, **({"user": user} if user else {})}
    r = requests.post(url + "/v1/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.headers["X-LLMOps-Arm"]


@pytest.mark.slow
def test_ab_on_a_live_canary_counts_each_user_once_in_the_arm_that_served_them(live):
    result = ab("abt", min_users=5, workspace=live["ws"])
    served = {u: arm for u, arm in live["arms"].items() if u}
    summary = result.to_dict()
    assert summary["users"] == {arm: list(served.values()).count(arm) for arm in ("primary", "canary")}
    assert (summary["requests"], summary["anonymous_requests"], summary["crossed_users"]) == (80, 3, 0)
    assert not result.analysis.srm.blocked and result.analysis.verdict.code in ("inconclusive", "better", "worse")
    assert (result.primary, result.canary) == (live["refs"].adapter, live["refs"].adapter_v2)
    latency = result.analysis.metrics[0]
    assert latency.metric.name == "latency" and latency.interval[0] < latency.diff < latency.interval[1]


@pytest.mark.slow
def test_percent_deploy_ab_judges_the_canary_in_a_notebook(live):
    from conftest import ipython_shell

    shell = ipython_shell()
    shell.run_line_magic("load_ext", "llmops_magics")
    shell.run_line_magic("config", f"LLMOps.home = {str(live['home'])!r}")
    try:
        result = shell.run_line_magic("deploy", "ab abt --metrics latency,error_rate --min-users 5")
    finally:
        shell.run_line_magic("unload_ext", "llmops_magics")
        shell.config.pop("LLMOps", None)
    assert [m.metric.name for m in result.analysis.metrics] == ["latency", "error_rate"]
    stored = live["ws"].registry.resolve(result.ref)
    assert (
        stored.kind == "abtest"
        and stored.spec["command"] == "%deploy ab abt --metrics latency,error_rate --min-users 5"
    )


def test_the_cli_exits_1_when_the_canary_should_roll_back_and_0_while_it_should_continue(workspace, capsys):
    from llmops_magics.adapters.cli import main

    now = time.time()
    state = _state(workspace, "svc", canary={"target": CANARY, "weight": 50.0}, started_at=now - 60)
    _log(state, [{"ts": now - 5, "user": f"u{i}", "arm": ("primary", "canary")[i % 2],
                  "version": (PRIMARY, CANARY)[i % 2]} for i in range(10)])  # fmt: skip
    assert main(["ab", "svc"]) == 0  # too few users to decide anything: continue
    errors = [{"ts": now - 4, "user": f"c{i}", "arm": "canary", "version": CANARY, "status": 500} for i in range(200)]
    fine = [{"ts": now - 4, "user": f"p{i}", "arm": "primary", "version": PRIMARY} for i in range(200)]
    _log(state, errors + fine)
    assert main(["ab", "svc", "--metrics", "error_rate"]) == 1  # every canary user sees errors: roll back
    assert "abtest://svc/" in capsys.readouterr().out
