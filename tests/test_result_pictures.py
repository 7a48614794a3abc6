"""Each result carries a picture of its data in its mimebundle: static SVG, read back here mark by mark.

The numbers drawn are checked against data with a known answer: the bars' values are the
means, the CI whiskers hold the mean, one delta bar per paired example with the right sign,
one loss point per logged step, and requests land in the time slice they were made in.
"""

from __future__ import annotations

import base64
import random
import re
import xml.etree.ElementTree as ET

import pytest

from llmops_magics.display.charts import ci_chart, delta_chart, line_chart, stack
from llmops_magics.display.result_charts import (
    artifact_charts,
    deployment_charts,
    downsample,
    eval_charts,
    request_timeline,
)
from llmops_magics.evaluation.results import EvalResult, MetricColumn
from llmops_magics.evaluation.stats import compare_paired

SVG = "{http://www.w3.org/2000/svg}"


def marks(svg: str, cls: str) -> list[ET.Element]:
    """Every element of class ``cls`` in an SVG (nested charts included); the SVG must parse as XML."""
    root = ET.fromstring(svg)
    return [e for e in root.iter() if e.get("class") == cls]


def _eval(n: int = 40, seed: int = 1) -> EvalResult:
    """Targets A and B on ``n`` examples: B scores 1 where A scores 0 on a known set of examples."""
    rng = random.Random(seed)
    a = [float(rng.random() < 0.4) for _ in range(n)]
    b = [1.0 if i % 3 == 0 else x for i, x in enumerate(a)]  # B fixes every third example
    records = [
        {"example": i, "target": t, "exact_match": v[i], "length": 10.0 + i}
        for t, v in (("A", a), ("B", b))
        for i in range(n)
    ]
    columns = [
        MetricColumn("exact_match", "exact_match", True, True, True),
        MetricColumn("length", "length", False, None, False),
    ]
    comparison = compare_paired("exact_match", "A", "B", a, b, n_resamples=500)
    return EvalResult(
        targets=[{"label": "A", "name": "v1"}, {"label": "B", "name": "v2"}],
        data="dataset://d/1",
        split=None,
        reference_column="answer",
        columns=columns,
        records=records,
        summary={t: {"exact_match": sum(v) / n, "length": 10 + (n - 1) / 2, "n": n} for t, v in (("A", a), ("B", b))},
        comparisons=[comparison],
    )


def test_an_eval_result_shows_its_means_with_cis_and_its_per_example_deltas():
    result = _eval()
    data, _meta = result._repr_mimebundle_()

    svg = data["image/svg+xml"]
    charts = result.charts()
    assert [c.title for c in charts] == [
        "exact_match: mean, 95% CI",
        "length: mean, 95% CI",
        "B - A on exact_match, per example",
    ]
    assert len(marks(svg, "bar")) == 4 and len(marks(svg, "delta")) == 40  # the bundle's image holds them all
    bars = {b.get("data-label"): float(b.get("data-value")) for b in marks(charts[0].svg, "bar")}
    assert set(bars) == {"A (v1)", "B (v2)"}
    for label, name in (("A", "A (v1)"), ("B", "B (v2)")):
        values = result.values(label, "exact_match")
        assert bars[name] == pytest.approx(sum(values) / len(values), abs=1e-5)
    cis = {
        c.get("data-label"): (float(c.get("data-low")), float(c.get("data-high"))) for c in marks(charts[0].svg, "ci")
    }
    for label, mean in bars.items():
        low, high = cis[label]
        assert low <= mean <= high
    assert cis["A (v1)"][1] - cis["A (v1)"][0] > 0.1  # 40 coin flips: a wide interval
    lengths = {b.get("data-label"): float(b.get("data-value")) for b in marks(charts[1].svg, "bar")}
    assert lengths == {"A (v1)": pytest.approx(29.5), "B (v2)": pytest.approx(29.5)}

    deltas = [float(d.get("data-value")) for d in marks(svg, "delta")]
    a, b = result.values("A", "exact_match"), result.values("B", "exact_match")
    assert len(deltas) == len(a)
    assert sorted(deltas) == sorted(y - x for x, y in zip(a, b, strict=True))
    assert sum(d > 0 for d in deltas) == sum(1 for i, x in enumerate(a) if i % 3 == 0 and x == 0)
    assert not any(d < 0 for d in deltas)

    # the notebook's HTML shows the same pictures as images (no script, nothing to run)
    html = data["text/html"]
    assert "<script" not in html
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(images) == 3
    assert len(marks(base64.b64decode(images[2]).decode(), "delta")) == len(a)


def test_a_single_target_eval_draws_no_delta_chart():
    result = _eval()
    result.targets, result.comparisons = result.targets[:1], []
    result.records = [r for r in result.records if r["target"] == "A"]
    charts = eval_charts(result)
    assert [c.title for c in charts] == ["exact_match: mean, 95% CI", "length: mean, 95% CI"]
    assert [b.get("data-label") for b in marks(charts[0].svg, "bar")] == ["exact_match"]


def test_a_finetune_result_shows_its_loss_curves(tmp_path):
    from llmops_magics.finetuning.outputs import FinetuneResult
    from llmops_magics.store import Registry

    train = [[float(s), 2.0 / (1 + s)] for s in range(1, 501)]
    curve = {"train": downsample(train), "eval": [[100.0, 1.5], [200.0, 1.2], [300.0, 1.1]]}
    reg = Registry(tmp_path / ".llmops")
    try:
        art = reg.save("adapter", "a", data=b"w", metadata={"loss_curve": curve}).artifact
        data, _ = FinetuneResult(art, None, {"train_loss": 0.5}, "run1")._repr_mimebundle_()
        lines = {p.get("data-name"): p for p in marks(data["image/svg+xml"], "series")}
        assert set(lines) == {"train", "eval"}
        assert len(curve["train"]) == 200 and curve["train"][0] == train[0] and curve["train"][-1] == train[-1]
        assert lines["train"].get("data-n") == "200" and len(lines["train"].get("points").split()) == 200
        assert len(lines["eval"].get("points").split()) == 3
        ys = [float(p.split(",")[1]) for p in lines["train"].get("points").split()]
        assert ys == sorted(ys)  # a falling loss: SVG y grows downwards
        assert [c.title for c in artifact_charts(art, reg)] == ["loss"]  # the sidebar's route draws the same
        bare = reg.save("adapter", "b", data=b"v").artifact
        assert "image/svg+xml" not in FinetuneResult(bare, None, {}, "run2")._repr_mimebundle_()[0]
    finally:
        reg.close()


def test_a_deployment_status_shows_latency_and_throughput_over_time():
    from llmops_magics.serving.stats import summarize
    from llmops_magics.serving.views import DeploymentStatus

    now, window = 10_000.0, 300.0
    # 3 requests a second in the first half of the window at 50 ms, 1 a second in the second half at 200 ms
    rows = [{"ts": now - window + i / 3, "latency_ms": 50.0} for i in range(450)]
    rows += [{"ts": now - window / 2 + i, "latency_ms": 200.0} for i in range(150)]
    rows += [{"ts": now - window - 5, "latency_ms": 9999.0}]  # before the window: left out
    timeline = request_timeline(rows, window, now=now, buckets=10)
    rates = [r for _, r in timeline["req/s"]]
    assert rates[:5] == pytest.approx([3.0] * 5) and rates[5:] == pytest.approx([1.0] * 5)
    assert [v for _, v in timeline["p50 ms"]] == [50.0] * 5 + [200.0] * 5

    status = DeploymentStatus("svc", {"url": "http://x"}, "running", None, summarize(rows, window), window, timeline)
    svg = status._repr_mimebundle_()["image/svg+xml"]
    series = {s.get("data-name"): s for s in marks(svg, "series")}
    assert set(series) == {"p50 ms", "p95 ms", "req/s"}
    assert all(len(s.get("points").split()) == 10 for s in series.values())
    heights = [float(p.split(",")[1]) for p in series["req/s"].get("points").split()]
    assert max(heights[:5]) < min(heights[5:])  # higher throughput is drawn higher (smaller y)
    assert deployment_charts(request_timeline([], window, now=now)) == []


def test_chart_text_is_escaped_and_every_chart_parses_as_xml():
    hostile = "<script>alert(1)</script>&"
    charts = [
        ci_chart(hostile, [(hostile, 0.5, 0.4, 0.6)]),
        delta_chart(hostile, [(hostile, -0.2), (1, 0.3)]),
        line_chart(hostile, {hostile: [(0, 1), (1, 2)]}),
    ]
    for chart in charts:
        assert "<script" not in chart.svg
        ET.fromstring(chart.svg)
    assert len(marks(stack(charts), "delta")) == 2


def test_deployment_status_and_the_sidebar_draw_the_request_log(workspace):
    """``deployment_status`` and ``artifact_charts`` read the real request log: requests in the last minute
    of a five-minute window show as throughput in the last slices only."""
    import time

    from llmops_magics import deployment_status
    from llmops_magics.serving.requestlog import RequestLog, monitor_path

    dep = workspace.registry.save("deployment", "svc", data=b"{}").artifact
    state = {"name": "svc", "ref": dep.ref, "target": "adapter://a/1", "pid": None, "url": None,
             "status": "stopped", "monitor_db": str(monitor_path(workspace.registry.home, "svc"))}  # fmt: skip
    workspace.registry.put_state("deployments", "svc", state)
    now = time.time()
    log = RequestLog(state["monitor_db"], salt="s")
    for i in range(30):
        log.record({"ts": now - 50 + i, "endpoint": "completions", "status": 200, "latency_ms": 100.0 + i})
    log.close()

    status = deployment_status("svc", window_s=300)
    rates = [r for _, r in status.timeline["req/s"]]
    assert sum(r * 10 for r in rates) == pytest.approx(30)  # 30 slices of 10 s
    assert all(r == 0 for r in rates[:-6]) and sum(rates[-6:]) > 0
    series = {s.get("data-name") for s in marks(status._repr_mimebundle_()["image/svg+xml"], "series")}
    assert series == {"p50 ms", "p95 ms", "req/s"}
    assert [c.title for c in artifact_charts(dep, workspace.registry)] == ["latency", "throughput"]
