"""Retraining a deployment: ``%retrain NAME --data REF``, ``retrain(name, data=…)``, ``llmops retrain NAME …``.

One call runs the loop's second half as a recorded ``pipeline``: new rows (a dataset, or the
corrected answers in the log of a deployment whose monitor failed) are combined with the
deployed adapter's training set by a stated rule; the adapter is fine-tuned again from its
own stored spec; the candidate must pass an eval gate against the production version on
held-out rows; it then serves a canary share of the traffic until the online A/B analysis
stops, and is promoted or rolled back with the reason. Every step is an artifact, and the
``pipeline`` version links them all (``llmops run pipeline://NAME/3`` replays it).

The rules, decided here once:

* **combining** (``combine``): ``append`` keeps the old training rows and adds the new ones;
  a new row whose question (the prompt's variables) an old row also has replaces it: the new
  data is the newer judgement. ``replace`` trains on the new rows only. The held-out rows the
  gate uses are the old validation rows plus the new data's own validation split, or a
  ``holdout`` share of the new rows (seeded), never trained on.
* **the gate**: the candidate (B) is compared with the production version (A) on the held-out
  rows with the paired bootstrap; it fails on a significant regression on any quality
  metric, and unless the *lower bound* of the target metric's 95% interval reaches
  ``min_gain``: a gain must be shown, not just observed (with the default 0 the target may
  not plausibly have got worse).
* **the A/B step**: ``ab`` is read every ``ab_interval`` seconds; its stop rule decides
  (``promote`` promotes; ``roll back``, ``investigate`` and ``decide`` roll back, since a
  canary that is not shown safe must not stay). When ``ab_timeout`` passes first the canary
  is rolled back too, with the last analysis as the reason: an unattended pipeline never
  leaves a canary running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from .jobs import Job

__all__ = ["RetrainSpec", "retrain", "RETRAIN", "COMBINE_RULES", "GATE_METRICS"]

COMBINE_RULES = ("append", "replace")
GATE_METRICS = ("exact_match", "contains", "rouge_l")
# what --train may not change: the pipeline decides the data; the rest is how the run is launched
_FIXED_TRAIN = ("data", "eval_data", "eval_split", "train_split", "resume", "aliases")
_FIXED_GATE = ("target", "compare", "data", "split", "metrics", "name", "fail_on_regression")
_FIXED_AB = ("name", "window")


def _name(value: str) -> str:
    from ..store.refs import validate_name

    return validate_name(value, "deployment name")


def _fraction(value: float) -> float:
    if not 0 <= value < 1:
        raise ValidationError(f"holdout must be a fraction from 0 up to (not including) 1, found {value!r}")
    return value


def _share(value: float) -> float:
    if not 0 < value < 100:
        raise ValidationError(f"canary must be a percentage between 0 and 100 (exclusive), found {value!r}")
    return value


def _non_negative(value: float) -> float:
    if not value >= 0:
        raise ValidationError(f"min_gain must be a number >= 0, found {value!r}")
    return value


def _seconds(name: str):
    def check(value: Any) -> float:
        from .monitor import seconds

        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValidationError(f"{name} must be seconds or a duration such as 30s, 5m or 1h, found {value!r}")
        try:
            return seconds(value)
        except ValidationError:
            raise ValidationError(
                f"{name} must be seconds or a duration such as 30s, 5m or 1h, found {value!r}"
            ) from None

    return check


def _metrics(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Sequence):
        raise ValidationError(f"metrics must be metric names (a list or 'a,b'), found {value!r}")
    names = tuple(dict.fromkeys(str(m).strip() for m in items if str(m).strip()))
    if not names:
        raise ValidationError("metrics must name at least one eval metric, found none")
    return names


def _options(what: str, spec: str, fixed: tuple[str, ...], sample: Mapping[str, Any]):
    """A ``KEY=VALUE`` mapping of another operation's options, checked against that operation's spec."""

    def check(value: Mapping[str, Any]) -> dict[str, Any]:
        import importlib

        module, _, cls = spec.partition(":")
        target = getattr(importlib.import_module(module), cls)
        taken = sorted(set(value) & set(fixed))
        if taken:
            raise ValidationError(f"{what} cannot set {', '.join(taken)}: the pipeline decides it")
        target.from_dict({**sample, **value}, origin=what)  # unknown names and bad values refused now
        return dict(value)

    return check


@dataclass(frozen=True, kw_only=True)
class RetrainSpec(Spec):
    """Which deployment, which new rows, how they combine, and the gate, canary and A/B settings."""

    op = "retrain"

    name: str | None = option(
        None,
        positional=True,
        check=_name,
        help="Deployment to retrain (default: the deployment --on-failure's monitor checked).",
    )
    data: str | None = option(
        None,
        short="-d",
        help="New rows: a dataset reference (its train split; its validation split, if any, is held out).",
    )
    on_failure: str | None = option(
        None,
        metavar="MONITOR_REF",
        help="Start from this failing monitor run: the new rows are the answers reviewers corrected in its "
        "deployment's request log since the monitor's window began (%dataset from-log --since START "
        "--where feedback=corrected --with-corrections).",
    )
    combine: str = option(
        "append",
        choices=COMBINE_RULES,
        help="append: old training rows plus the new ones, a new row replacing an old one with the same "
        "question; replace: the new rows only.",
    )
    holdout: float = option(
        0.2,
        check=_fraction,
        help="Share of the new rows held out for the gate when the new data has no validation split (seeded).",
    )
    seed: int = option(0, help="Seed of the held-out split.")
    gate_data: str | None = option(
        None, help="Dataset the gate evaluates on (default: the held-out rows of the combined dataset)."
    )
    metrics: tuple[str, ...] = option(
        GATE_METRICS,
        short="-m",
        kind="any",
        repeat=True,
        parse=",".join,
        check=_metrics,
        help="Gate metrics, comma-separated: none may regress significantly.",
    )
    target_metric: str = option(
        "rouge_l", help="The metric that must gain: the lower bound of its 95% interval must reach --min-gain."
    )
    min_gain: float = option(0.0, check=_non_negative, help="Smallest gain on --target-metric the gate accepts.")
    canary: float = option(10.0, check=_share, metavar="PERCENT", help="Share of traffic the candidate serves.")
    train: Mapping[str, Any] | None = option(
        None,
        check=_options("train", "llmops_magics.ops.finetune:FinetuneSpec", _FIXED_TRAIN, {}),
        help="Change an option of the deployed adapter's fine-tune spec, KEY=VALUE (repeatable): max_steps=40.",
    )
    gate: Mapping[str, Any] | None = option(
        None,
        check=_options("gate", "llmops_magics.ops.evaluate:EvalSpec", _FIXED_GATE, {"data": "x"}),
        help="Change an option of the gate's eval, KEY=VALUE (repeatable): max_new_tokens=16, limit=200.",
    )
    ab: Mapping[str, Any] | None = option(
        None,
        check=_options("ab", "llmops_magics.ops.ab:AbSpec", _FIXED_AB, {"name": "x"}),
        help="Change a setting of the A/B analysis, KEY=VALUE (repeatable): metrics=feedback,error_rate, "
        "min_users=50, max_users=5000, tuning=2000, alpha=0.05.",
    )
    ab_interval: float = option(
        30.0, kind="any", check=_seconds("ab_interval"), metavar="DURATION", help="Seconds between A/B analyses."
    )
    ab_timeout: float = option(
        3600.0,
        kind="any",
        check=_seconds("ab_timeout"),
        metavar="DURATION",
        help="Roll the canary back when the A/B test has not stopped after this long (1h, 30m, seconds).",
    )


def retrain(
    name: str | None = None,
    *,
    data: str | None = None,
    on_failure: str | None = None,
    combine: str = "append",
    holdout: float = 0.2,
    seed: int = 0,
    gate_data: str | None = None,
    metrics: str | Sequence[str] = GATE_METRICS,
    target_metric: str = "rouge_l",
    min_gain: float = 0.0,
    canary: float = 10.0,
    train: Mapping[str, Any] | None = None,
    gate: Mapping[str, Any] | None = None,
    ab: Mapping[str, Any] | None = None,
    ab_interval: float | str = 30.0,
    ab_timeout: float | str = 3600.0,
    workspace: Workspace | None = None,
) -> Job:
    """Retrain deployment ``name`` on new rows, gate, canary, judge and promote or roll back.

    Everything that can be wrong with the input is checked before this returns; the steps
    then run as a job (``job.wait()`` gives the ``Pipeline``: ``.decision`` is ``promoted``,
    ``rolled back``, ``stopped at the gate`` or ``failed``, ``.reason`` says why, ``.steps``
    lists each step with its artifact). See the module docstring for the rules.
    """
    return RETRAIN.call(locals())


RETRAIN = Operation(
    "retrain",
    RetrainSpec,
    "llmops_magics.retraining.run:run",
    "retrain",
    "fine-tune a deployment's adapter on new rows, gate it, canary it, promote or roll back (exit 1 unless promoted)",
    long=True,
    failed=lambda pipeline: pipeline.decision != "promoted",
)
