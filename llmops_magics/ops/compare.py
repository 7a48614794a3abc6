"""Choosing a model: ``%model compare A B C --data REF``, ``compare_models([...], data=...)``, ``llmops compare``.

Every candidate answers the same rows through one eval (one batched, cached pass), and the
leaderboard puts beside each quality metric what a chooser weighs against it: latency,
throughput, size, context length, license and cost. ``select`` moves an alias to the
winner and records the choice as a ``selection`` artifact linked to every candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .catalog import Operation
from .evaluate import _metrics, _positive
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..models.leaderboard import Leaderboard

__all__ = ["CompareSpec", "compare_models", "COMPARE"]


def _two_or_more(value: tuple[str, ...]) -> tuple[str, ...]:
    from ..errors import ValidationError

    if len(value) < 2:
        raise ValidationError(f"compare needs at least two candidates, found {len(value)}")
    if len(set(value)) != len(value):
        raise ValidationError("each candidate may be named once")
    return value


@dataclass(frozen=True, kw_only=True)
class CompareSpec(Spec):
    """Candidates, the rows they answer, how they are scored, and whether to select the winner."""

    op = "compare"

    candidates: tuple[str, ...] = option(
        positional=True,
        nargs="+",
        check=_two_or_more,
        help="Models to compare: references, folders, names in [tool.llmops.models] or endpoint models.",
    )
    data: str = option(short="-d", help="Dataset reference every candidate answers.")
    prompt: str | None = option(None, short="-p", help="Prompt reference to render every row with.")
    metrics: tuple[str, ...] = option(
        ("exact_match", "rouge_l"),
        short="-m",
        kind="any",
        repeat=True,
        parse=",".join,
        check=_metrics,
        help="Quality metrics, comma-separated; the first one ranks the candidates.",
    )
    limit: int | None = option(None, check=_positive("limit"), help="Use only the first N rows.")
    max_new_tokens: int = option(32, check=_positive("max_new_tokens"), help="Tokens generated per answer.")
    select: str | None = option(
        None,
        flag="--select",
        const="selected",
        metavar="ALIAS",
        help="Point this alias (default: selected) at the winner and record the selection.",
    )
    n_resamples: int = option(2000, check=_positive("n_resamples"), help="Bootstrap resamples per interval.")
    seed: int = option(0, help="Bootstrap seed.")


def compare_models(
    candidates: Sequence[str],
    *,
    data: str,
    prompt: str | None = None,
    metrics: str | Sequence[str] = ("exact_match", "rouge_l"),
    limit: int | None = None,
    max_new_tokens: int = 32,
    select: str | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    workspace: Workspace | None = None,
) -> Leaderboard:
    """A model-selection leaderboard (see the module docstring)."""
    return COMPARE.call(locals())


COMPARE = Operation(
    "compare",
    CompareSpec,
    "llmops_magics.models.leaderboard:run_compare",
    "compare_models",
    "compare candidate models on the same data and (optionally) select the winner",
)
