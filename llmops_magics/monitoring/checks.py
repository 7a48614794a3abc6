"""Monitor checks: each turns one measurement of a request-log window into a verdict.

A check is one record, the same shape for every check so a report, the stored artifact
and a history plot read them alike::

    {"name": "p95_latency_ms", "status": "pass"|"warn"|"fail"|"skip", "value": 812.0,
     "warn": 4000.0, "fail": 5000.0, "direction": "above", "unit": "ms", "reason": "", "details": {...}}

``direction`` says which side of the thresholds is bad (``above``: a value past ``fail``
fails). A check that cannot be made says ``skip`` and why (too few requests, texts not
logged, no reference data), never pass.

Thresholds come in three layers, the later winning: ``DEFAULTS``, the
``[tool.llmops.monitor]`` table of the project's ``pyproject.toml``, the call's own
(``--threshold p95_latency_ms=800``). A service-level check warns at ``warn_ratio`` of
its limit. A drift check warns when its permutation test is significant at
``alpha_warn`` and fails at ``alpha_fail`` *and* when the effect is large enough to matter
(``drift_auc``, ``psi_fail``): with 100,000 requests a trivial difference is significant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ValidationError
from ..serving.stats import percentile

__all__ = ["Check", "DEFAULTS", "STATUSES", "thresholds", "overall", "skip", "measure", "slo_checks",
           "classifier_check", "embedding_check", "length_check"]  # fmt: skip

STATUSES = ("pass", "warn", "fail", "skip")
DEFAULTS: dict[str, float] = {
    "p95_latency_ms": 5000.0,  # fail above
    "p95_ttft_ms": 2000.0,  # fail above
    "p95_tpot_ms": 500.0,  # time per output token after the first (decode speed); fail above
    "p95_queue_ms": 2000.0,  # waiting for a batch slot before the first forward pass; fail above
    "error_rate": 0.05,  # share of requests answered with status >= 400; fail above
    "min_throughput_rps": 0.0,  # successful requests per second; fail below (0: never)
    "max_cost_per_1k": 0.0,  # dollars per 1,000 answered requests at [tool.llmops.prices]; fail above (0: no limit)
    "warn_ratio": 0.8,  # a service level warns at this fraction of its limit
    "alpha_warn": 0.05,  # drift: a permutation test significant at this level warns
    "alpha_fail": 0.01,  # ... and at this level, with a large enough effect, fails
    "drift_auc": 0.55,  # the domain classifier's AUC must also reach this to fail
    "psi_warn": 0.1,  # length PSI bands (with a significant KS test)
    "psi_fail": 0.25,
    "min_requests": 20.0,  # fewer requests in the window: the check is skipped
    "quality_drop": 0.1,  # live judge score this far below the eval baseline fails
}
_PROBABILITIES = {"error_rate", "alpha_warn", "alpha_fail", "drift_auc", "warn_ratio", "quality_drop"}
TABLE = "[tool.llmops.monitor]"
SETTINGS = {"window"}  # keys of the table that are not thresholds (read by the operation)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    value: float | None = None
    warn: float | None = None
    fail: float | None = None
    direction: str = "above"
    unit: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValidationError(f"check status must be one of {', '.join(STATUSES)}, found {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(key: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{where} {key} must be a number, found {value!r}") from None
    value = float(value)
    if value != value or value < 0 or (key in _PROBABILITIES and value > 1):
        expected = "a number from 0 to 1" if key in _PROBABILITIES else "a number of at least 0"
        raise ValidationError(f"{where} {key} must be {expected}, found {value!r}")
    return value


def _layer(values: Mapping[str, Any], where: str, allowed: set[str]) -> dict[str, float]:
    unknown = sorted(set(values) - set(DEFAULTS) - allowed)
    if unknown:
        raise ValidationError(
            f"{where}: unknown threshold(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}"
        )
    return {k: _number(k, v, where) for k, v in values.items() if k in DEFAULTS}


def thresholds(overrides: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None) -> dict[str, float]:
    """``DEFAULTS``, then ``config`` (default: ``[tool.llmops.monitor]``), then ``overrides``; every value checked."""
    if config is None:
        from ..context.home import project_config

        config = project_config().get("monitor") or {}
    if not isinstance(config, Mapping):
        raise ValidationError(f"{TABLE} must be a table of thresholds, found {config!r}")
    out = {**DEFAULTS, **_layer(config, TABLE, SETTINGS), **_layer(overrides or {}, "threshold", set())}
    if out["alpha_fail"] > out["alpha_warn"]:
        raise ValidationError(f"alpha_fail ({out['alpha_fail']:g}) must not exceed alpha_warn ({out['alpha_warn']:g})")
    if out["psi_warn"] > out["psi_fail"]:
        raise ValidationError(f"psi_warn ({out['psi_warn']:g}) must not exceed psi_fail ({out['psi_fail']:g})")
    return out


def overall(checks: Sequence[Check]) -> str:
    """The worst status: fail, else warn, else pass (skips do not count; all skipped is skip)."""
    statuses = {c.status for c in checks}
    for status in ("fail", "warn", "pass"):
        if status in statuses:
            return status
    return "skip"


def skip(name: str, reason: str, **details: Any) -> Check:
    return Check(name, "skip", reason=reason, details=details)


def measure(name: str, value: float | None, *, warn: float | None, fail: float | None, direction: str = "above",
            unit: str = "", details: Mapping[str, Any] | None = None) -> Check:  # fmt: skip
    """A value against its thresholds: past ``fail`` fails, past ``warn`` warns (``direction`` says which way)."""
    if value is None:
        return skip(name, "no value in this window", **dict(details or {}))
    past = (lambda limit: value > limit) if direction == "above" else (lambda limit: value < limit)
    status = "fail" if fail is not None and past(fail) else "warn" if warn is not None and past(warn) else "pass"
    return Check(name, status, float(value), warn, fail, direction, unit, details=dict(details or {}))


# ---------------------------------------------------------------------- service levels


def _levels(rows: Sequence[Mapping[str, Any]], span_s: float) -> dict[str, Any]:
    ok = [r for r in rows if (r.get("status") or 0) < 400]
    lat = [float(r["latency_ms"]) for r in ok if r.get("latency_ms") is not None]
    ttft = [float(r["ttft_ms"]) for r in ok if r.get("ttft_ms") is not None]
    tpot = [float(r["tpot_ms"]) for r in ok if r.get("tpot_ms") is not None]
    queue = [float(r["queue_ms"]) for r in ok if r.get("queue_ms") is not None]
    client = sum(1 for r in rows if 400 <= (r.get("status") or 0) < 500)
    return {
        "requests": len(rows),
        "errors": len(rows) - len(ok),
        "client_errors": client,
        "server_errors": len(rows) - len(ok) - client,
        "error_rate": (len(rows) - len(ok)) / len(rows) if rows else None,
        "p95_latency_ms": percentile(lat, 95),
        "p95_ttft_ms": percentile(ttft, 95),
        "p95_tpot_ms": percentile(tpot, 95),
        "p95_queue_ms": percentile(queue, 95),
        "throughput_rps": len(ok) / span_s if span_s > 0 else None,
    }


def slo_checks(rows: Sequence[Mapping[str, Any]], *, span_s: float, limits: Mapping[str, float]) -> list[Check]:
    """p95 latency, time to first token, time per output token and queue time; error rate and throughput.

    Latency alone hides where time goes: a long queue says "add capacity", a slow time
    per output token says "the batch is too large for the hardware", a slow first token
    with a short queue says "the prompt is long". Requests that do not record a timing
    (static batching records no time per output token) leave its check at no value.

    Latencies count successful requests only (an error answered fast must not flatter the
    p95). ``span_s`` is the time the window covers while the deployment was up: a
    deployment started ten minutes ago is not judged on an hour's throughput.
    """
    arms: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        arms.setdefault(str(r.get("arm") or "primary"), []).append(r)
    every = _levels(rows, span_s)
    per_arm = {arm: _levels(arm_rows, span_s) for arm, arm_rows in sorted(arms.items())} if len(arms) > 1 else {}
    ratio, enough = limits["warn_ratio"], len(rows) >= limits["min_requests"]
    out = []
    for key in ("p95_latency_ms", "p95_ttft_ms", "p95_tpot_ms", "p95_queue_ms", "error_rate"):
        details = {"requests": len(rows), **{arm: v[key] for arm, v in per_arm.items()}}
        if key == "error_rate":
            details.update(client_errors=every["client_errors"], server_errors=every["server_errors"])
        if not enough:
            out.append(
                skip(
                    key,
                    f"{len(rows)} request(s) in the window, fewer than min_requests={limits['min_requests']:g}",
                    **details,
                )
            )
            continue
        unit = "ms" if key.endswith("_ms") else ""
        out.append(measure(key, every[key], warn=limits[key] * ratio, fail=limits[key], unit=unit, details=details))
    low = limits["min_throughput_rps"]
    out.append(
        measure(
            "throughput_rps",
            every["throughput_rps"] or 0.0,
            warn=low / ratio if ratio else low,
            fail=low,
            direction="below",
            unit="req/s",
            details={
                "requests": len(rows),
                "span_s": round(span_s, 3),
                **{arm: v["throughput_rps"] for arm, v in per_arm.items()},
            },
        )
    )
    return out


# ---------------------------------------------------------------------- drift


def classifier_check(reference: Sequence[str], live: Sequence[str], limits: Mapping[str, float], *,
                     seed: int = 0, max_samples: int | None = 2000) -> Check:  # fmt: skip
    """Input drift by the domain classifier: the AUC against its permutation thresholds."""
    from .drift import domain_classifier

    aw, af = limits["alpha_warn"], limits["alpha_fail"]
    r = domain_classifier(reference, live, alphas=(aw, af), seed=seed, max_samples=max_samples)
    warn, fail = r.thresholds[f"{aw:g}"], max(r.thresholds[f"{af:g}"], limits["drift_auc"])
    details = {k: v for k, v in r.to_dict().items() if k not in ("auc",)}
    return measure("input_drift_classifier", r.auc, warn=warn, fail=fail, unit="AUC", details=details)


def embedding_check(reference: Any, live: Any, limits: Mapping[str, float], *, seed: int = 0) -> Check:
    """Input drift in MiniLM space: MMD² against its permutation thresholds."""
    from .drift import mmd

    aw, af = limits["alpha_warn"], limits["alpha_fail"]
    r = mmd(reference, live, alphas=(aw, af), seed=seed, max_samples=None)
    details = {k: v for k, v in r.to_dict().items() if k != "mmd2"}
    return measure("input_drift_embedding", r.mmd2, warn=r.thresholds[f"{aw:g}"], fail=r.thresholds[f"{af:g}"],
                   unit="MMD²", details=details)  # fmt: skip


def length_check(name: str, reference: Sequence[float], live: Sequence[float], limits: Mapping[str, float], *,
                 unit: str = "", against: str = "") -> Check:  # fmt: skip
    """A length distribution against a reference: PSI for the size of the change, KS for whether it is real.

    Warns when PSI reaches ``psi_warn`` and KS is significant at ``alpha_warn``; fails at
    ``psi_fail`` and ``alpha_fail``. The plotted value is PSI.
    """
    from .drift import length_shift

    r = length_shift(reference, live)
    details = {**{k: v for k, v in r.to_dict().items() if k != "psi"}, "unit": unit, "against": against}
    status = "pass"
    if r.psi >= limits["psi_fail"] and r.ks_p_value < limits["alpha_fail"]:
        status = "fail"
    elif r.psi >= limits["psi_warn"] and r.ks_p_value < limits["alpha_warn"]:
        status = "warn"
    return Check(name, status, r.psi, limits["psi_warn"], limits["psi_fail"], "above", "PSI", details=details)
