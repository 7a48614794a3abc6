"""Summaries of request records: the numbers the monitor, ``%deploy status`` and W&B show.

One function for all three, so a p95 in the notebook panel, in the status table
and in the W&B run is computed the same way from the same kind of record (a
mapping with ``ts``, ``arm``, ``status``, ``latency_ms``, ``ttft_ms``,
``prompt_tokens``, ``completion_tokens``, ``batch_size``, ``version``).

Cost: each answered request priced by the version that answered it (``served_version``:
a row of a log written before versions were logged by the deployment's target, the
``fallback``) at ``[tool.llmops.prices]`` (``models.leaderboard.price_entry``), exactly as
the monitor's ``cost_per_1k_requests`` check prices it; ``cost_usd`` is None while nothing
served is priced, and when the table is malformed (``evaluation.usage.price_table`` names
the problem once).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["percentile", "summarize", "flatten", "served_version"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0-100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def served_version(row: Mapping[str, Any], fallback: str | None = None) -> str | None:
    """The version a logged request is counted and priced under: its own ``version``, else ``fallback``.

    Logs written before versions were logged have no ``version``; every reader (this
    summary, the monitor's ``window_usage``) gives such rows to the deployment's target.
    """
    return row.get("version") or fallback or None


def _pricer() -> Callable[[Any], Mapping[str, float] | None]:
    """``price(version)``: its ``{"input", "output"}`` dollars per million tokens, or None; never raises."""
    try:
        from ..evaluation.usage import price_table
        from ..models.leaderboard import price_entry

        table = price_table()  # None when malformed, the problem warned about once
    except Exception:  # an unreadable project table costs the cost column, never the summary
        return lambda version: None
    if not table:
        return lambda version: None
    found: dict[Any, Mapping[str, float] | None] = {}

    def price(version: Any) -> Mapping[str, float] | None:
        if version not in found:
            found[version] = price_entry(str(version), table) if version else None
        return found[version]

    return price


def _cost(
    rows: list[Mapping[str, Any]], price: Callable[[Any], Mapping[str, float] | None], fallback: str | None
) -> float | None:
    from ..evaluation.usage import cost_usd

    total = None
    for r in rows:
        p = price(served_version(r, fallback))
        if p is not None:
            total = (total or 0.0) + cost_usd(int(r.get("prompt_tokens") or 0), int(r.get("completion_tokens") or 0), p)
    return total


def _one(
    rows: list[Mapping[str, Any]], window_s: float | None, price: Callable[[Any], Any], fallback: str | None = None
) -> dict[str, Any]:
    ok = [r for r in rows if (r.get("status") or 0) < 400]
    latencies = [float(r["latency_ms"]) for r in ok if r.get("latency_ms") is not None]
    ttfts = [float(r["ttft_ms"]) for r in ok if r.get("ttft_ms") is not None]
    batches = [int(r["batch_size"]) for r in ok if r.get("batch_size")]
    if window_s:
        span = window_s
    elif len(rows) > 1:
        span = max(r["ts"] for r in rows) - min(r["ts"] for r in rows)
    else:
        span = 0.0
    errors = len(rows) - len(ok)
    return {
        "requests": len(rows),
        "errors": errors,
        "error_rate": errors / len(rows) if rows else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "ttft_p50_ms": percentile(ttfts, 50),
        "throughput_rps": len(ok) / span if span > 0 else None,
        "tokens_in": sum(int(r.get("prompt_tokens") or 0) for r in ok),
        "tokens_out": sum(int(r.get("completion_tokens") or 0) for r in ok),
        "cost_usd": _cost(ok, price, fallback),
        "mean_batch": sum(batches) / len(batches) if batches else None,
    }


def summarize(
    rows: Iterable[Mapping[str, Any]], window_s: float | None = None, fallback: str | None = None
) -> dict[str, Any]:
    """``{"all": {...}, "arms": {"primary": {...}, "canary": {...}}}`` over ``rows``.

    ``window_s`` is the period the rows cover (for throughput); without it the span
    between the first and last record is used. ``fallback`` (the deployment's target)
    prices the rows logged without a version (``served_version``).
    """
    rows = list(rows)
    arms: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("arm"):
            arms.setdefault(str(r["arm"]), []).append(r)
    price = _pricer()
    return {
        "all": _one(rows, window_s, price, fallback),
        "arms": {k: _one(v, window_s, price, fallback) for k, v in sorted(arms.items())},
    }


def flatten(summary: Mapping[str, Any]) -> dict[str, float]:
    """``{"latency_p50_ms": …, "canary/latency_p50_ms": …}``: numeric values only, for W&B charts."""
    names = {"p50_ms": "latency_p50_ms", "p95_ms": "latency_p95_ms"}
    out: dict[str, float] = {}
    for prefix, values in [("", summary["all"]), *((f"{k}/", v) for k, v in summary["arms"].items())]:
        for key, value in values.items():
            if value is not None:
                out[prefix + names.get(key, key)] = float(value)
    return out
