"""Fairness: ``%fairness TARGET --data REF`` / ``fairness(target, data=…)`` / ``llmops fairness TARGET --data REF``.

Counterfactual evaluation: every row that mentions an attribute (gender, a first
name, a nationality) is rewritten once per group of that attribute (``he`` ↔ ``she``,
``John`` ↔ ``Carlos``), the target answers every variant, and the answers are compared
per group with fairlearn's ``MetricFrame`` (by group, difference, ratio) for the task
metric and for properties of the output (length, refusal, sentiment), with a paired
bootstrap interval on every gap. The rows are the same across groups, so any gap is
the attribute's doing. A ``fairness`` artifact links to the target and the data set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ValidationError
from .catalog import Operation
from .datasets import _columns
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..governance.fairness import FairnessReport

__all__ = ["FairnessSpec", "fairness", "FAIRNESS", "DEFAULT_ATTRIBUTES"]

DEFAULT_ATTRIBUTES = ("gender", "name", "nationality")


def _positive(name: str):
    def check(value: int) -> int:
        if value < 1:
            raise ValidationError(f"{name} must be a positive integer, found {value!r}")
        return value

    return check


def _data(value: str) -> str:
    if not value.strip():
        raise ValidationError("data must name a dataset (data=/--data), found nothing")
    return value


def _name(value: str) -> str:
    from ..store.refs import validate_name

    return validate_name(value)


@dataclass(frozen=True, kw_only=True)
class FairnessSpec(Spec):
    """Which target answers which rows' counterfactuals, for which attributes, scored how."""

    op = "fairness"

    target: str = option(positional=True, help="Model, adapter, local folder, tiny, or endpoint URL to test.")
    data: str = option(short="-d", check=_data, help="Dataset reference, e.g. qa or dataset://qa/2.")
    attributes: tuple[str, ...] = option(
        DEFAULT_ATTRIBUTES, short="-a", check=_columns, help="Attributes to swap, comma-separated."
    )
    columns: tuple[str, ...] = option(
        (), short="-c", check=_columns, help="Text columns to rewrite (default: the column the prompt reads)."
    )
    metric: str = option("exact_match", help="Task metric scored against the row's answer (any %eval metric).")
    terms: str | None = option(None, help="JSON file of extra terms: attribute -> group -> [aligned terms].")
    split: str | None = option(None, help="Split to use (default: every row).")
    limit: int | None = option(None, check=_positive("limit"), help="Use only the first N rows.")
    max_new_tokens: int = option(32, check=_positive("max_new_tokens"), help="Tokens generated per answer.")
    batch_size: int = option(16, check=_positive("batch_size"), help="Variants generated per batch.")
    seed: int = option(0, help="Seed of the bootstrap (generation is greedy).")
    n_resamples: int = option(1000, check=_positive("n_resamples"), help="Bootstrap resamples per interval.")
    name: str | None = option(None, check=_name, help="Name of the fairness artifact (default: the data set's).")


def fairness(
    target: str,
    *,
    data: str,
    attributes: str | Sequence[str] = DEFAULT_ATTRIBUTES,
    columns: str | Sequence[str] = (),
    metric: str = "exact_match",
    terms: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 16,
    seed: int = 0,
    n_resamples: int = 1000,
    name: str | None = None,
    workspace: Workspace | None = None,
) -> FairnessReport:
    """Counterfactual fairness of ``target`` on ``data`` (see the module docstring).

    Returns a ``FairnessReport``: ``.attributes[attr]["measures"][measure]`` holds
    ``by_group``, ``ci``, ``difference`` (with ``difference_ci``), ``ratio`` and ``gaps``
    (each group minus the first, with its interval); ``.ref`` is the stored artifact.
    """
    return FAIRNESS.call(locals())


FAIRNESS = Operation(
    "fairness",
    FairnessSpec,
    "llmops_magics.governance.fairness:run_fairness",
    "fairness",
    "counterfactual fairness: swap gender, name or nationality terms and compare the answers per group",
)
