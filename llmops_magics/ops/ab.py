"""Judging a canary: ``%deploy ab NAME``, ``ab("NAME")``, ``llmops ab NAME``.

Reads the deployment's request log since its current split started (or over ``window``),
compares the canary with the primary with the user as the unit, and records the analysis
as an ``abtest`` artifact linked to the deployment. The statistics (sample-ratio check,
always-valid intervals, verdict, stop rule) are in ``monitoring/abstats.py``; ``retrain``
judges its canary through the same function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..monitoring.ab import AbTest

__all__ = ["AbSpec", "ab", "AB"]

DEFAULT_METRICS = ("latency", "error_rate", "feedback", "quality")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _name(value: str) -> str:
    from ..store.refs import validate_name

    return validate_name(value, "deployment name")


def _metrics(value: Any) -> tuple[str, ...]:
    from ..monitoring.abstats import METRICS

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Sequence):
        raise ValidationError(f"metrics must be names (a list or 'a,b'), found {value!r}")
    names = tuple(dict.fromkeys(str(m).strip() for m in items if str(m).strip()))
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValidationError(f"metrics must be among {', '.join(METRICS)}, found {', '.join(unknown) or 'none'}")
    return names


def _alpha(value: float) -> float:
    if not 0 < value < 0.5:
        raise ValidationError(f"alpha must be a number between 0 and 0.5, found {value!r}")
    return value


def _positive(name: str):
    def check(value: float) -> float:
        if not value > 0:
            raise ValidationError(f"{name} must be a positive number, found {value!r}")
        return value

    return check


def _share(value: float) -> float:
    if not 0 < value <= 1:
        raise ValidationError(f"judge_share must be a fraction above 0 and at most 1, found {value!r}")
    return value


def _duration(value: Any) -> float:
    """``3600``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"`` → seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
        if not m:
            raise ValidationError(f"window must be seconds or a duration such as 30m, 2h or 1d, found {value!r}")
        seconds = float(m[1]) * _UNITS.get(m[2] or "s", 1.0)
    return _positive("window")(seconds)


def _margins(value: Mapping[str, Any]) -> dict[str, float]:
    from ..monitoring.abstats import METRICS

    out = {}
    for key, margin in value.items():
        if key not in METRICS:
            raise ValidationError(f"margin names a metric among {', '.join(METRICS)}, found {key!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
            raise ValidationError(f"margin {key} must be a number >= 0, found {margin!r}")
        out[key] = float(margin)
    return out


@dataclass(frozen=True, kw_only=True)
class AbSpec(Spec):
    """Which deployment, which metrics, and the statistics' settings."""

    op = "ab"

    name: str = option(positional=True, check=_name, help="Deployment with a canary (%deploy NAME --canary REF:10%).")
    metrics: tuple[str, ...] = option(
        DEFAULT_METRICS,
        short="-m",
        kind="any",
        repeat=True,
        parse=",".join,
        check=_metrics,
        help="Metrics, comma-separated, among latency, ttft, error_rate, feedback, quality.",
    )
    alpha: float = option(0.05, check=_alpha, help="Error rate of each always-valid interval.")
    tuning: float = option(
        5000.0,
        check=_positive("tuning"),
        help="Users (both arms) at which you expect to decide: the interval is tightest there. Keep it fixed.",
    )
    window: float | None = option(
        None,
        kind="any",
        check=_duration,
        metavar="DURATION",
        help="Only requests from the last DURATION (seconds, or 30m, 2h, 1d); default: since the split started.",
    )
    min_users: int = option(30, check=_positive("min_users"), help="Users per arm before a metric may decide.")
    max_users: int | None = option(
        None, check=_positive("max_users"), help="Stop the test at this many users whatever the intervals say."
    )
    margins: Mapping[str, float] | None = option(
        None,
        flag="--margin",
        check=_margins,
        help="Harm tolerated per metric, METRIC=VALUE: latency and ttft as a fraction of the primary's mean "
        "(default 0.1), error_rate, feedback and quality in their units (0.01, 0.05, 0.05).",
    )
    judge_share: float = option(
        0.2,
        check=_share,
        help="quality: share of each arm's users whose answer is judged (a seeded sample, one answer each, that "
        "grows with traffic; verdicts are cached per request).",
    )
    judge_max_new: int = option(
        200,
        check=_positive("judge_max_new"),
        help="quality: most answers judged by one analysis; sampled users beyond it are judged at the next ones.",
    )
    judge_seed: int = option(0, help="quality: seed of the judged sample.")
    judge_model: str | None = option(
        None, help="quality: model or endpoint that judges the logged answers; default: LLMOps.judge_model."
    )
    judge_prompt: str | None = option(
        None,
        help="quality: judge prompt reading question and answer, not a reference (default prompt://judge-answer).",
    )


def ab(
    name: str,
    *,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    alpha: float = 0.05,
    tuning: float = 5000.0,
    window: float | str | None = None,
    min_users: int = 30,
    max_users: int | None = None,
    margins: Mapping[str, float] | None = None,
    judge_share: float = 0.2,
    judge_max_new: int = 200,
    judge_seed: int = 0,
    judge_model: str | None = None,
    judge_prompt: str | None = None,
    workspace: Workspace | None = None,
) -> AbTest:
    """Judge deployment ``name``'s canary against its primary (see the module docstring)."""
    return AB.call(locals())


AB = Operation(
    "ab",
    AbSpec,
    "llmops_magics.monitoring.ab:run",
    "ab",
    "judge a deployment's canary against its primary (always-valid intervals, user as the unit)",
    # `llmops ab NAME` exits 1 when the canary should be rolled back or the split investigated, so cron can act
    failed=lambda result: result.analysis.stop.action in ("roll back", "investigate"),
)
