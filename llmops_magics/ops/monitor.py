"""Watching a deployment: ``%monitor NAME``, ``monitor(name)``, ``llmops monitor NAME``.

Runs checks over a window of the deployment's request log (service levels, input drift
against its reference data, live quality against an eval baseline) and stores the
verdicts as a ``monitor`` artifact linked to the deployment and its baselines. From cron
or an orchestrator ``llmops monitor NAME`` exits 1 when a check fails; in a notebook
``%monitor NAME --every 5m`` repeats the checks as a background job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..monitoring.checks import DEFAULTS
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..monitoring.report import MonitorReport
    from .jobs import Job

__all__ = ["MonitorSpec", "monitor", "MONITOR", "CHECK_GROUPS", "seconds"]

CHECK_GROUPS = ("slo", "drift", "quality")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def seconds(text: str | float) -> float:
    """``"5m"`` → 300.0; a bare number is seconds."""
    m = _DURATION.match(str(text))
    if not m or float(m[1]) <= 0:
        raise ValidationError(
            f"a duration must be a positive number of s, m, h or d (300, 90s, 5m, 1h), found {text!r}"
        )
    return float(m[1]) * _UNITS[m[2]]


def _duration(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValidationError(f"a duration must be text such as 5m or a number of seconds, found {value!r}")
    seconds(value)
    return value.strip() if isinstance(value, str) else f"{value:g}s"


def _checks(value: Sequence[str]) -> tuple[str, ...]:
    names = [n.strip() for item in value for n in str(item).split(",") if n.strip()]
    bad = [n for n in names if n not in CHECK_GROUPS]
    if bad or not names:
        raise ValidationError(f"checks must be some of {', '.join(CHECK_GROUPS)}, found {', '.join(bad) or 'none'}")
    return tuple(dict.fromkeys(names))


def _thresholds(value: Mapping[str, Any]) -> dict[str, Any]:
    from ..monitoring.checks import thresholds

    thresholds(value, config={})  # names and values checked now, whichever front made the spec
    return dict(value)


def _positive(name: str):
    def check(value: int) -> int:
        if value < 1:
            raise ValidationError(f"{name} must be a positive integer, found {value!r}")
        return value

    return check


@dataclass(frozen=True, kw_only=True)
class MonitorSpec(Spec):
    """Which deployment, over which window of its request log, which checks against which thresholds."""

    op = "monitor"

    name: str = option(positional=True, help="Deployment to check.")
    window: str | None = option(
        None,
        kind="any",
        check=_duration,
        fallback="1h",
        help="How far back the request log is checked: 300, 90s, 5m, 1h, 1d ([tool.llmops.monitor] window).",
    )
    checks: tuple[str, ...] = option(
        CHECK_GROUPS,
        short="-c",
        repeat=True,
        parse=",".join,
        check=_checks,
        help="Check groups, comma-separated: slo (latency, ttft, errors, throughput, cost), drift, quality.",
    )
    thresholds: Mapping[str, Any] | None = option(
        None,
        flag="--threshold",
        short="-t",
        check=_thresholds,
        help=f"Override a threshold, KEY=VALUE (repeatable): {', '.join(DEFAULTS)}.",
    )
    baseline: str | None = option(
        None, help="Eval the live quality is compared with (default: the newest eval of the served version)."
    )
    sample: int = option(30, check=_positive("sample"), help="Logged requests the quality check scores (seeded).")
    seed: int = option(0, help="Seed for sampling, cross-validation and permutations.")
    every: str | None = option(
        None,
        kind="any",
        check=_duration,
        stored=False,
        fronts=("magic", "api"),
        help="Repeat every 5m (or 30s, 1h) as a background job; returns the job.",
    )


def monitor(
    name: str,
    *,
    window: str | float | None = None,
    checks: str | Sequence[str] = CHECK_GROUPS,
    thresholds: Mapping[str, Any] | None = None,
    baseline: str | None = None,
    sample: int = 30,
    seed: int = 0,
    every: str | float | None = None,
    workspace: Workspace | None = None,
) -> MonitorReport | Job:
    """Check deployment ``name`` now and store the verdicts (see the module docstring).

    Returns a ``MonitorReport`` (``.failed``, ``.status``, ``report["p95_latency_ms"]``,
    ``.ref`` of the ``monitor`` artifact); with ``every`` a running ``Job`` whose events
    carry each round's report, stopped with ``job.cancel()``.
    """
    return MONITOR.call(locals())


MONITOR = Operation(
    "monitor",
    MonitorSpec,
    "llmops_magics.monitoring.run:run",
    "monitor",
    "check a deployment's request log: service levels, input drift, live quality (exit 1 on a failed check)",
    failed=lambda value: bool(getattr(value, "failed", False)),
)
