"""The pictures of each result, from its data: the same charts in a notebook and in the sidebar.

- an eval: each metric's mean per target with its 95 % bootstrap interval (the resampling
  ``compare_paired`` uses, seeded, so a result draws the same picture every time);
- an A/B comparison: the per-example deltas ``b - a`` of each compared metric;
- a fine-tune: its train and eval loss by step (``metadata["loss_curve"]``);
- a deployment: p50/p95 latency and throughput per time bucket of its request log.

``artifact_charts`` draws them for a registered version (the sidebar's ``/llmops/charts``
route); the result objects call the same functions for their ``_repr_mimebundle_``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .charts import Chart, ci_chart, delta_chart, line_chart

__all__ = ["eval_charts", "loss_charts", "deployment_charts", "request_timeline", "artifact_charts", "downsample"]

CI_RESAMPLES = 1000
TIMELINE_BUCKETS = 30
MAX_CURVE_POINTS = 200
DEPLOYMENT_WINDOW_S = 3600.0


def _numbers(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def eval_charts(result: Any) -> list[Chart]:
    """One chart per metric (each on its own scale) of the targets' means with CIs, then one delta
    chart per comparison."""
    from ..evaluation.stats import paired_bootstrap

    labels = [t["label"] for t in result.targets]
    charts = []
    for column in result.columns:
        rows = []
        for label in labels:
            values = _numbers(result.values(label, column.name))
            if not values:
                continue
            lo, hi = paired_bootstrap(values, n_resamples=CI_RESAMPLES) if len(values) > 1 else (None, None)
            name = f"{label} ({_target_name(result, label)})" if len(labels) > 1 else column.name
            rows.append((name, sum(values) / len(values), lo, hi))
        if rows:
            colour = (lambda name: labels.index(name.split(" ", 1)[0])) if len(labels) > 1 else None
            charts.append(ci_chart(f"{column.name}: mean, 95% CI", rows, colour_by=colour))
    for comparison in result.comparisons:
        if comparison.delta is None:
            continue
        a = {r["example"]: r.get(comparison.metric) for r in result.records if r["target"] == comparison.a}
        b = {r["example"]: r.get(comparison.metric) for r in result.records if r["target"] == comparison.b}
        deltas = [(ex, float(b[ex]) - float(a[ex])) for ex in a if ex in b and _numbers([a[ex]]) and _numbers([b[ex]])]
        title = f"{comparison.b} - {comparison.a} on {comparison.metric}, per example"
        charts.append(delta_chart(title, deltas, higher_is_better=comparison.higher_is_better))
    return charts


def _target_name(result: Any, label: str) -> str:
    return next((str(t.get("name") or label) for t in result.targets if t["label"] == label), label)


def downsample(points: Sequence[Sequence[float]], limit: int = MAX_CURVE_POINTS) -> list[list[float]]:
    """At most ``limit`` points, evenly spaced, the first and last kept: a curve to store, not a log."""
    points = [list(p) for p in points]
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def loss_charts(curve: Mapping[str, Sequence[Sequence[float]]] | None) -> list[Chart]:
    """``{"train": [[step, loss], …], "eval": […]}`` as one line chart (nothing when there is no curve)."""
    if not isinstance(curve, Mapping):
        return []
    series = {k: [(p[0], p[1]) for p in v if len(p) == 2] for k, v in curve.items() if v}
    if not any(series.values()):
        return []
    return [line_chart("loss", series, x_label="step")]


def request_timeline(
    rows: Sequence[Mapping[str, Any]], window_s: float, *, now: float | None = None, buckets: int = TIMELINE_BUCKETS
) -> dict[str, list[list[float]]]:
    """Requests of the last ``window_s`` seconds in ``buckets`` equal slices: ``t`` is seconds before ``now``
    (negative), with p50/p95 latency (slices with requests) and requests per second (every slice)."""
    now = time.time() if now is None else now
    width = window_s / buckets
    slices: list[list[float]] = [[] for _ in range(buckets)]
    for r in rows:
        ts = r.get("ts")
        if not isinstance(ts, (int, float)) or not now - window_s <= ts <= now:
            continue
        slices[min(int((ts - (now - window_s)) // width), buckets - 1)].append(
            float(r["latency_ms"]) if isinstance(r.get("latency_ms"), (int, float)) else math.nan
        )
    out: dict[str, list[list[float]]] = {"p50 ms": [], "p95 ms": [], "req/s": []}
    for i, lat in enumerate(slices):
        t = -window_s + (i + 0.5) * width
        out["req/s"].append([t, len(lat) / width])
        known = sorted(v for v in lat if math.isfinite(v))
        if known:
            out["p50 ms"].append([t, _quantile(known, 0.5)])
            out["p95 ms"].append([t, _quantile(known, 0.95)])
    return out


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def deployment_charts(timeline: Mapping[str, Sequence[Sequence[float]]] | None) -> list[Chart]:
    """Latency (p50, p95) and throughput over time from ``request_timeline``."""
    if not timeline or not any(v for _, v in timeline.get("req/s", ()) if v):
        return []
    latency = {k: [(p[0], p[1]) for p in timeline.get(k, ())] for k in ("p50 ms", "p95 ms")}
    return [
        line_chart("latency", latency, x_label="s ago", y_label="ms"),
        line_chart("throughput", {"req/s": [(p[0], p[1]) for p in timeline["req/s"]]}, x_label="s ago"),
    ]


def artifact_charts(art: Any, reg: Any) -> list[Chart]:
    """The pictures of one registered version, for the sidebar: by kind, nothing for kinds without one."""
    from ..store.records import thaw

    if art.kind == "eval":
        from ..evaluation.persist import eval_from_artifact

        try:
            result = eval_from_artifact(reg, art)
        except (OSError, ValueError, KeyError, TypeError):  # a version saved by hand, not by an eval: no picture
            return []
        return eval_charts(result)
    if art.kind in ("adapter", "model"):
        return loss_charts(thaw(art.metadata.get("loss_curve")))
    if art.kind == "deployment":
        record = reg.get_state("deployments", art.name)
        path = record.get("monitor_db") if isinstance(record, dict) else None
        if not path:
            return []
        from ..serving.requestlog import read_requests

        rows = read_requests(path, since=time.time() - DEPLOYMENT_WINDOW_S)  # [] while there is no log
        return deployment_charts(request_timeline(rows, DEPLOYMENT_WINDOW_S))
    return []
