"""A deployment's monitor runs over time (``%monitor history``) and the sidebar's mark of a failing one.

Monitor versions are written the way ``monitoring/run.py`` publishes them (metadata ``status``,
``failed`` and per-check ``values``), so no server or model is needed here; the checks that fill
them are covered by ``test_monitor_op.py``.
"""

from __future__ import annotations

import pytest

from llmops_magics.adapters.jupyter.browse import Browser
from llmops_magics.errors import NotFoundError
from llmops_magics.monitoring.history import latest_monitor, monitor_history


def _run(reg, name: str, latency: float, status: str):
    values = {
        "p95_latency_ms": {"status": status, "value": latency, "warn": 800.0, "fail": 1000.0},
        "input_drift_classifier": {"status": "pass", "value": 0.52, "warn": None, "fail": 0.55},
    }
    meta = {"deployment": name, "status": status, "failed": ["p95_latency_ms"] if status == "fail" else [],
            "values": values}  # fmt: skip
    return reg.save("monitor", name, data=f"{latency}".encode(), metadata=meta).artifact


def test_the_history_plots_each_check_in_run_order_against_its_thresholds(workspace):
    reg = workspace.registry
    for latency, status in ((400.0, "pass"), (850.0, "warn"), (1200.0, "fail")):
        _run(reg, "svc", latency, status)
    history = monitor_history("svc", workspace=workspace)
    assert set(history.checks) == {"p95_latency_ms", "input_drift_classifier"}
    assert history.series("p95_latency_ms") == [400.0, 850.0, 1200.0]
    html = history._repr_mimebundle_()["text/html"]
    assert html.count("<svg") == 2 and html.count("stroke-dasharray") == 3  # warn + fail, and a fail-only check
    assert "#c62828" in html and "monitor://svc/3: 1200 (fail)" in html
    assert "1200" in str(history) and "monitor://svc/3 fail" in str(history)
    assert monitor_history("svc", limit=2, workspace=workspace).series("p95_latency_ms") == [850.0, 1200.0]


def test_a_deployment_never_monitored_has_no_history(workspace):
    with pytest.raises(NotFoundError, match="no monitor runs yet; run %monitor nope"):
        monitor_history("nope", workspace=workspace)
    assert latest_monitor(workspace.registry, "nope") is None


def test_check_names_from_traffic_are_escaped(workspace):
    reg = workspace.registry
    meta = {"status": "pass", "values": {"<b>x</b>": {"status": "pass", "value": 1.0}}}
    reg.save("monitor", "svc", data=b"x", metadata=meta)
    html = monitor_history("svc", workspace=workspace)._repr_mimebundle_()["text/html"]
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_the_sidebar_lists_a_deployments_newest_monitor_status(workspace):
    reg = workspace.registry
    reg.put_state("deployments", "svc", {"name": "svc", "pid": None, "url": None})
    reg.put_state("deployments", "quiet", {"name": "quiet", "pid": None, "url": None})
    _run(reg, "svc", 400.0, "pass")
    _run(reg, "svc", 1200.0, "fail")
    items = {i["name"]: i for i in Browser(workspace.home).deployments()["items"]}
    assert items["svc"]["monitor"] == {"ref": "monitor://svc/2", "status": "fail", "failed": ["p95_latency_ms"]}
    assert items["quiet"]["monitor"] is None


def test_the_magic_plots_the_history_and_names_an_unmonitored_deployment_in_one_line(ip, workspace):
    from IPython.core.error import UsageError

    _run(workspace.registry, "svc", 400.0, "pass")
    assert ip.run_line_magic("monitor", "history svc").series("p95_latency_ms") == [400.0]
    with pytest.raises(UsageError, match="no monitor runs yet"):
        ip.run_line_magic("monitor", "history nope")
