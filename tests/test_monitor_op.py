"""``monitor`` against a real deployment: its server, its request log, its reference data and an eval baseline.

One tiny-model deployment logs three phases of traffic: questions drawn from its reference
data (phase A, then B: no drift by construction; questions about countries it never saw
would be new vocabulary, which the domain classifier rightly notices), then off-topic
requests with longer answers (phase C). The monitor
runs over B alone (nothing changed) and over C alone (everything changed); the quality
check's judge is a real HTTP endpoint that scores an answer 5 when the question is about
the tiny world and 1 otherwise.
"""

from __future__ import annotations

import random
import time

import pytest
from deploy_support import build_folders, logged_requests, module_workspace, register, stop_all
from eval_support import ScoringJudge

pytestmark = pytest.mark.slow

VERBS = ["Summarise", "Translate", "Draft", "Explain", "Critique", "Outline"]
OBJECTS = [
    "the quarterly revenue report for the board",
    "a polite email declining next Tuesday's meeting",
    "TCP congestion control algorithms for a networking class",
    "garbage collection in the Java virtual machine",
    "how to rebuild a carburettor on a vintage motorcycle",
]
OFF_TOPIC = [f"{v} {o}, in {n} bullet points please." for n in (3, 5) for v in VERBS for o in OBJECTS][:30]
TIGHT = {"p95_ttft_ms": 1e6, "error_rate": 0.5}  # written to [tool.llmops.monitor]: the config layer


def _score(prompt: str) -> str:
    """ "1" for an off-topic question, "5" for one about the tiny world."""
    return "1" if any(v in prompt for v in VERBS) else "5"


def _send(handle, questions, *, max_tokens: int, total: int) -> None:
    for q in questions:
        handle.complete(variables={"question": q}, max_tokens=max_tokens, ignore_eos=True)
    assert len(logged_requests(handle, at_least=total)) >= total


GAP_S = 2.0  # quiet time between phases: a window's start may land anywhere in it


def _since(start: float) -> float:
    """A window that reaches back to the middle of the gap before ``start``.

    ``monitor`` takes its own clock reading a moment after this one (first imports, a
    loaded CI machine: 0.1 s was seen), so the margin is half the gap, not a hair.
    """
    return time.time() - start + GAP_S / 2


@pytest.fixture(scope="module")
def mon(tmp_path_factory):
    from llmops_magics import deploy, evaluate, monitor, save_prompt
    from llmops_magics.models import task_examples

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    root = tmp_path_factory.mktemp("monitor-op")
    (root / "pyproject.toml").write_text(
        "[tool.llmops.monitor]\n" + "".join(f"{k} = {v!r}\n" for k, v in TIGHT.items())
    )
    judge = ScoringJudge(_score)
    with pytest.MonkeyPatch.context() as mp, module_workspace(root / ".llmops") as ws:
        mp.chdir(root)
        refs = register(ws, folders)
        rubric = save_prompt(
            "judge-helpful",
            "Question: {{ question }}\nAnswer: {{ answer }}\nRate the answer from 1 to 5.\nScore:",
            workspace=ws,
        )
        baseline = evaluate(refs.adapter, data=refs.dataset, limit=12, max_new_tokens=4, workspace=ws,
                            metrics=f"judge:{rubric.ref}", judge_model=judge.url, judge_k=1).wait()  # fmt: skip
        try:
            handle = deploy(refs.adapter, name="mon", log_text=True, threads=1, workspace=ws)
            trained = [r["question"] for r in task_examples()[:96]]  # the reference data's questions
            _send(handle, random.Random(1).sample(trained, 30), max_tokens=4, total=30)  # A: the past
            time.sleep(GAP_S)
            start_b = time.time()
            _send(handle, random.Random(2).sample(trained, 30), max_tokens=4, total=60)  # B: more of the same
            quiet = monitor("mon", window=_since(start_b), workspace=ws)
            time.sleep(GAP_S)
            start_c = time.time()
            _send(handle, OFF_TOPIC, max_tokens=16, total=90)  # C: another topic, longer answers
            shifted = monitor("mon", window=_since(start_c), workspace=ws)
            yield {"ws": ws, "refs": refs, "handle": handle, "quiet": quiet, "shifted": shifted,
                   "baseline": baseline, "judge": judge, "root": root}  # fmt: skip
        finally:
            stop_all(ws)
            judge.close()


# ---------------------------------------------------------------------- service levels


def test_service_levels_come_from_the_window_of_the_real_log(mon):
    from llmops_magics.serving.requestlog import read_requests
    from llmops_magics.serving.stats import percentile

    report = mon["quiet"]
    rows = read_requests(mon["handle"].state["monitor_db"], since=report.window["start"], until=report.window["end"])
    assert len(rows) == 30 and report["p95_latency_ms"].details["requests"] == 30
    assert report["p95_latency_ms"].value == percentile([r["latency_ms"] for r in rows], 95)
    assert report["p95_ttft_ms"].value == percentile([r["ttft_ms"] for r in rows], 95)
    assert report["error_rate"].value == 0.0
    assert report["throughput_rps"].value == pytest.approx(30 / report.window["seconds"], rel=1e-6)
    assert all(report[n].status == "pass" for n in ("p95_latency_ms", "p95_ttft_ms", "error_rate", "throughput_rps"))


def test_thresholds_come_from_defaults_then_the_project_table_then_the_call(mon):
    from llmops_magics import monitor
    from llmops_magics.monitoring.checks import DEFAULTS

    report = monitor("mon", window="1h", checks="slo", thresholds={"p95_latency_ms": 1e5}, workspace=mon["ws"])
    assert report.thresholds == {**DEFAULTS, **TIGHT, "p95_latency_ms": 1e5}
    assert report["p95_ttft_ms"].fail == TIGHT["p95_ttft_ms"] and report["p95_latency_ms"].fail == 1e5
    assert report["p95_latency_ms"].warn == 1e5 * DEFAULTS["warn_ratio"]


def test_an_impossible_latency_threshold_fails_the_run_and_names_the_check(mon):
    from llmops_magics import monitor

    report = monitor("mon", window="1h", checks="slo", thresholds={"p95_latency_ms": 0.001}, workspace=mon["ws"])
    assert report.failed and report.status == "fail" and report.failures == ["p95_latency_ms"]
    assert "FAIL" in str(report) and "p95_latency_ms" in report._repr_mimebundle_()[0]["text/html"]


def test_a_window_with_too_few_requests_skips_the_percentiles_and_says_why(mon):
    from llmops_magics import monitor

    report = monitor("mon", window="1h", checks="slo", thresholds={"min_requests": 1000}, workspace=mon["ws"])
    assert (
        report["p95_latency_ms"].status == "skip" and "fewer than min_requests=1000" in report["p95_latency_ms"].reason
    )
    assert report.status == "pass"  # throughput is still judged


def test_the_windows_tokens_are_the_served_versions_logged_counts_and_unpriced_costs_nothing(mon):
    from llmops_magics.serving.requestlog import read_requests

    report = mon["quiet"]
    rows = read_requests(mon["handle"].state["monitor_db"], since=report.window["start"], until=report.window["end"])
    (version,) = {r["version"] for r in rows}
    assert version.startswith("adapter://") and list(report.usage["versions"]) == [version]
    assert report.usage["prompt_tokens"] == sum(r["prompt_tokens"] for r in rows) > 0
    assert report.usage["completion_tokens"] == sum(r["completion_tokens"] for r in rows) == 4 * 30
    assert report.usage["cost_usd"] == 0.0 and report["cost_per_1k_requests"].status == "skip"
    assert "no price for " + version in report["cost_per_1k_requests"].reason


# ---------------------------------------------------------------------- drift


def test_traffic_like_the_training_data_fails_no_drift_check(mon):
    report = mon["quiet"]
    assert report.reference == mon["refs"].dataset
    for name in ("input_length", "input_drift_classifier", "input_drift_embedding", "output_length"):
        assert report[name].status in ("pass", "warn"), (name, report[name])
    assert report["input_drift_classifier"].details["n_current"] == 30


def test_off_topic_inputs_fail_the_classifier_and_the_embedding_test_with_the_words_that_changed(mon):
    report = mon["shifted"]
    clf, emb = report["input_drift_classifier"], report["input_drift_embedding"]
    assert clf.status == "fail" and clf.value > clf.fail and clf.details["p_value"] < 0.01
    assert emb.status == "fail" and emb.details["p_value"] < 0.01
    words = {w for w, _ in clf.details["live_words"]}
    assert words & {"summarise", "translate", "bullet", "points", "please"}
    assert all(any(v in e for v in VERBS) for e in clf.details["examples"])
    html = report._repr_mimebundle_()[0]["text/html"]
    assert "bullet" in html and "least like the reference" in html


def test_longer_inputs_and_answers_fail_the_length_checks(mon):
    report = mon["shifted"]
    assert report["input_length"].status == "fail" and report["input_length"].details["against"] == mon["refs"].dataset
    out = report["output_length"]
    assert out.status == "fail" and out.details["mean_current"] == 16 and out.details["mean_reference"] <= 4


def test_a_deployment_without_logged_texts_skips_the_text_checks_and_says_why(mon):
    from llmops_magics import deploy, monitor

    ws = mon["ws"]
    handle = deploy(mon["refs"].adapter, name="no-text", threads=1, workspace=ws)
    try:
        _send(handle, ["What is the capital of Nerasor?"] * 25, max_tokens=2, total=25)
        report = monitor("no-text", window="1h", checks="drift,quality", workspace=ws)
    finally:
        handle.stop()
    assert report["input_length"].status in ("pass", "warn", "fail")  # lengths are always logged
    for name in ("input_drift_classifier", "input_drift_embedding", "quality"):
        assert report[name].status == "skip" and "log_text=True" in report[name].reason


# ---------------------------------------------------------------------- quality


def test_live_answers_judged_like_the_baseline_pass_the_quality_check(mon):
    check = mon["quiet"]["quality"]
    assert check.status == "pass" and check.details["baseline"] == mon["baseline"].ref
    assert check.value == pytest.approx(1.0) and check.details["baseline_score"] == pytest.approx(1.0)
    assert check.details["n"] == 30 and check.details["judge_model"]


def test_off_topic_answers_fail_the_quality_check_with_an_interval_below_zero(mon):
    check = mon["shifted"]["quality"]
    assert check.status == "fail" and check.value == pytest.approx(0.0)
    lo, hi = check.details["ci"]
    assert lo <= hi < 0 and check.details["delta"] == pytest.approx(-1.0)


# ---------------------------------------------------------------------- the artifact, the CLI, the magic


def test_each_run_is_a_monitor_version_linked_to_the_deployment_its_data_and_its_baseline(mon):
    from llmops_magics.monitoring.report import get_monitor

    ws, report = mon["ws"], mon["shifted"]
    art = ws.registry.resolve(report.ref)
    assert art.kind == "monitor" and art.name == "mon" and art.metadata["status"] == "fail"
    assert art.metadata["values"]["input_drift_classifier"]["status"] == "fail"
    edges = {(e.source, e.relation) for e in ws.registry.upstream(art, depth=1)}
    assert edges == {
        (report.deployment, "monitors"),
        (mon["refs"].dataset, "reference"),
        (mon["baseline"].ref, "baseline"),
    }
    assert art.spec["op"] == "monitor" and art.spec["args"]["thresholds"] == report.thresholds
    again = get_monitor(report.ref, workspace=ws)
    assert again.status == "fail" and again["quality"].details == report["quality"].details


def test_the_cli_exits_1_when_a_check_fails_and_0_when_none_does(mon, capsys, monkeypatch):
    from llmops_magics.adapters.cli import main

    monkeypatch.setenv("LLMOPS_WANDB_MODE", "disabled")
    home = str(mon["ws"].registry.home)
    assert main(["--home", home, "monitor", "mon", "--checks", "slo", "--threshold", "p95_latency_ms=0.001"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("monitor://mon/") and any("FAIL" in line for line in out)
    assert main(["--home", home, "monitor", "mon", "--checks", "slo", "--window", "1h"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("monitor://mon/")


def test_a_bad_threshold_is_refused_before_anything_runs(mon, capsys, monkeypatch):
    from llmops_magics.adapters.cli import main

    monkeypatch.setenv("LLMOPS_WANDB_MODE", "disabled")
    before = len(mon["ws"].registry.versions("monitor", "mon"))
    assert main(["--home", str(mon["ws"].registry.home), "monitor", "mon", "--threshold", "p95_latncy=3"]) == 2
    assert "unknown threshold(s) p95_latncy" in capsys.readouterr().err
    assert len(mon["ws"].registry.versions("monitor", "mon")) == before


def test_every_repeats_the_checks_as_a_background_job_until_cancelled(mon):
    from llmops_magics import monitor

    job = monitor("mon", window="1h", checks="slo", every="0.5s", workspace=mon["ws"])
    deadline = time.monotonic() + 60
    while len([e for e in job.events if e.get("type") == "progress"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    job.cancel(wait=10)
    rounds = [e for e in job.events if e.get("type") == "progress"]
    assert job.status == "cancelled" and len(rounds) >= 2
    assert all(e["status"] == "pass" and e["ref"].startswith("monitor://mon/") for e in rounds)
