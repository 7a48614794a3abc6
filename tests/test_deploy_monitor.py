"""The monitor panel and the drift signal, fed by a real server's request log."""

from __future__ import annotations

import threading
import time

import pytest
from deploy_support import TEMPLATE, build_folders, logged_requests, module_workspace, register, stop_all

pytestmark = pytest.mark.slow

OFF_TOPIC = [
    "Summarise the quarterly revenue report for the board in three bullet points please.",
    "Write a haiku about garbage collection in the Java virtual machine.",
    "Translate 'where is the train station' into Portuguese and Finnish.",
    "List the steps to rebuild a carburettor on a 1970s motorcycle.",
    "Explain the difference between TCP congestion control algorithms.",
    "Draft a polite email declining a meeting invitation for next Tuesday.",
]


@pytest.fixture(scope="module")
def mon(tmp_path_factory):
    from llmops_magics import deploy
    from llmops_magics.models import task_examples

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    with module_workspace(tmp_path_factory.mktemp("deploy-monitor") / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            handle = deploy(refs.adapter, name="mon", log_text=True, threads=1, workspace=ws)
            for row in task_examples()[100:112]:  # questions the adapter never saw, in the same format
                handle.complete(variables={"question": row["question"]}, max_tokens=4)
            yield {"ws": ws, "refs": refs, "handle": handle}
        finally:
            stop_all(ws)


@pytest.fixture
def panel(mon):
    from llmops_magics.adapters.widgets.deploy_monitor import DeploymentMonitor

    logged_requests(mon["handle"], at_least=12)
    monitor = DeploymentMonitor("mon", live=False, window_s=300.0, workspace=mon["ws"])
    yield monitor
    monitor.close()


def test_the_panel_shows_latency_throughput_errors_and_tokens_for_the_served_version(mon, panel):
    html = panel.table.get_state()["value"]
    summary = panel.snapshot["summary"]["arms"]["primary"]
    for text in ("p50 ms", "p95 ms", "req/s", "errors", "tokens in", mon["refs"].adapter, f"{summary['p95_ms']:.1f}"):
        assert text in html
    assert summary["requests"] >= 12 and summary["tokens_in"] > 0


def test_the_panel_title_says_the_deployment_is_running(panel):
    assert "running" in panel.title.get_state()["value"]


def test_the_panel_counts_new_requests_on_refresh(mon, panel):
    before = panel.snapshot["summary"]["all"]["requests"]
    mon["handle"].complete("The capital of", max_tokens=2)
    logged_requests(mon["handle"], at_least=before + 1)
    assert panel.refresh()["summary"]["all"]["requests"] == before + 1


def test_live_polling_updates_a_few_times_per_second_at_most(mon):
    from llmops_magics.adapters.widgets.deploy_monitor import DeploymentMonitor

    monitor = DeploymentMonitor("mon", interval=0.1, workspace=mon["ws"])
    time.sleep(1.5)
    monitor.close()
    assert monitor.interval == 0.25 and 1 <= monitor.updates <= 6


def test_closing_stops_the_polling_thread_and_unhooks_observers(mon):
    from llmops_magics.adapters.widgets.deploy_monitor import DeploymentMonitor

    monitor = DeploymentMonitor("mon", interval=0.25, workspace=mon["ws"])
    monitor.close()
    snapshot = monitor.snapshot
    monitor.window.value = 3600.0
    assert monitor.snapshot is snapshot
    assert not [t for t in threading.enumerate() if t.name == "llmops-monitor-mon"]


def test_the_panel_displays_as_its_widget_box(panel):
    data = panel._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.root.model_id


def test_the_drift_check_shows_its_report_in_the_panel(panel):
    report = panel.check_drift()
    assert report is not None and "reference data" in panel.drift_box.get_state()["value"]


def test_traffic_like_the_training_data_is_not_flagged_as_drift(mon):
    from llmops_magics.serving import deployment_drift

    report = deployment_drift("mon", workspace=mon["ws"])
    assert report.reference == mon["refs"].dataset and report.live_inputs >= 12
    assert not report.drifted and abs(report.length_shift) < 0.2


def test_off_topic_inputs_shift_embedding_similarity_past_the_threshold(mon):
    from llmops_magics.models import task_examples
    from llmops_magics.serving.drift import SIMILARITY_THRESHOLD, similarity_shift

    reference = [TEMPLATE.replace("{{ question }}", r["question"]) for r in task_examples()[:96]]
    live, baseline, shift = similarity_shift(OFF_TOPIC, reference)
    assert shift > SIMILARITY_THRESHOLD and live < baseline


def test_longer_inputs_show_as_a_relative_length_shift():
    from llmops_magics.serving.drift import length_shift

    assert length_shift([30, 30], [10, 20]) == pytest.approx(1.0)
