"""Tokens and cost of an eval's model calls: the targets' answers and the judges' verdicts.

Every eval counts them, whatever metrics it was asked for (the ``tokens`` and ``cost``
metrics are per-answer columns; these are totals). Each target's summary gets
``prompt_tokens_total``, ``completion_tokens_total`` and ``cost_usd_total`` for every call
made to it: its answers and, for the ``selfcheck_*`` metrics, the extra answers sampled
per prompt, which are also shown apart as ``consistency_prompt_tokens``,
``consistency_completion_tokens`` and ``consistency_cost_usd`` (a part of the total, not
an addition to it). When a judge scored the answers, ``judge_prompt_tokens``,
``judge_completion_tokens`` and ``judge_cost_usd`` count the judge's calls, priced by the
judge model's own name. So they are stored in the eval's summary, shown by the result and
logged to its W&B run summary (``A/cost_usd_total``) with no code of their own there.

Prices are ``[tool.llmops.prices]`` (dollars per million input and output tokens), looked
up by ``models.leaderboard.price_of``: an unpriced model (a local one, usually) costs 0.
A malformed table costs only the dollars: every cost here is None, tokens are still
counted, and a ``PriceWarning`` names the problem once (``price_table``); the monitor and
``%deploy status`` read the table the same way. A cached answer keeps the token counts of
the call that made it, so a cached re-run reports what its answers cost when they were
generated, and stays the same eval version.

A module of its own because the runner, the judge, the consistency checks and the result
all read these keys; the runner and the judge module are near the size limit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..display.html import money

__all__ = [
    "TARGET_KEYS",
    "JUDGE_KEYS",
    "SAMPLE_KEYS",
    "PriceWarning",
    "load_prices",
    "price_table",
    "warn_prices",
    "cost_usd",
    "answer_totals",
    "count_judge",
    "count_samples",
    "usage_line",
]

TARGET_KEYS = ("prompt_tokens_total", "completion_tokens_total", "cost_usd_total")
JUDGE_KEYS = ("judge_prompt_tokens", "judge_completion_tokens", "judge_cost_usd")
SAMPLE_KEYS = ("consistency_prompt_tokens", "consistency_completion_tokens", "consistency_cost_usd")

_WARNED: set[str] = set()  # problems already named in this process (cleared once the table reads again)


class PriceWarning(UserWarning):
    """``[tool.llmops.prices]`` cannot be read: costs are left out, tokens are still counted."""


def load_prices() -> tuple[dict[str, dict[str, float]] | None, str | None]:
    """``([tool.llmops.prices], None)``, or ``(None, the problem)`` when the table is malformed; never raises for it."""
    from ..models.leaderboard import prices

    try:
        return prices(), None
    except ValueError as e:  # ValidationError: an entry that is not { input = N, output = N }
        return None, str(e)
    except (AttributeError, TypeError):  # the table itself is not a table
        return None, "[tool.llmops.prices] must be a table of name = { input = N, output = N }"


def warn_prices(problem: str) -> None:
    """Name a malformed price table once per process (again only after it was fixed and broken anew)."""
    if problem not in _WARNED:
        _WARNED.add(problem)
        warnings.warn(f"{problem}; costs are left out (tokens are still counted)", PriceWarning, stacklevel=3)


def price_table() -> dict[str, dict[str, float]] | None:
    """The price table, or None (and a ``PriceWarning``, once) when it is malformed."""
    table, problem = load_prices()
    if problem is not None:
        warn_prices(problem)
    else:
        _WARNED.clear()
    return table


def cost_usd(prompt_tokens: float, completion_tokens: float, price: Mapping[str, float]) -> float:
    """Dollars for these tokens at ``price`` (``{"input": $/M, "output": $/M}``)."""
    return (prompt_tokens * price["input"] + completion_tokens * price["output"]) / 1e6


def _sums(calls: Iterable[Any]) -> tuple[int, int]:
    prompt = completion = 0
    for c in calls:
        prompt += int(c.prompt_tokens or 0)
        completion += int(c.completion_tokens or 0)
    return prompt, completion


def _priced(prompt: int, completion: int, model: str | None) -> float | None:
    """Dollars at ``model``'s price (0 when unpriced); None when the price table is malformed."""
    from ..models.leaderboard import price_of

    table = price_table()
    return None if table is None else cost_usd(prompt, completion, price_of(model, table))


def _add(notes: dict[str, Any], key: str, value: float | None) -> None:
    """``notes[key] += value``, where a None (a cost that could not be priced) stays None."""
    notes[key] = None if value is None or notes.get(key, 0) is None else notes.get(key, 0) + value


def answer_totals(examples: Iterable[Any], model: str | None) -> dict[str, float | None]:
    """A target's totals over its answers (``Example``s or ``GenRecord``s), priced by its model's reference."""
    prompt, completion = _sums(examples)
    return dict(zip(TARGET_KEYS, (prompt, completion, _priced(prompt, completion, model)), strict=True))


def count_judge(ctx: Any, replies: Iterable[Any], model: str | None) -> None:
    """Add the judge's replies' tokens and cost to ``ctx``'s notes (the judged target's summary)."""
    prompt, completion = _sums(replies)
    values = (prompt, completion, _priced(prompt, completion, model))
    for key, value in zip(JUDGE_KEYS, values, strict=True):
        _add(ctx.notes, key, value)


def count_samples(ctx: Any, examples: Sequence[Any], runs: Iterable[Iterable[Any]], model: str | None) -> None:
    """Add extra answers sampled from the target (``runs`` of ``GenRecord``s) to ``ctx``'s notes.

    They are counted apart (``SAMPLE_KEYS``) and in the target's own totals, which are
    written here as the answers' totals plus every sample counted so far: the runner
    stores a target's notes over its answer totals, so these are the totals it keeps.
    """
    prompt, completion = _sums(r for run in runs for r in run)
    for key, value in zip(SAMPLE_KEYS, (prompt, completion, _priced(prompt, completion, model)), strict=True):
        _add(ctx.notes, key, value)
    answers = answer_totals(examples, model)
    for total, part in zip(TARGET_KEYS, SAMPLE_KEYS, strict=True):
        answered, sampled = answers[total], ctx.notes[part]
        ctx.notes[total] = None if answered is None or sampled is None else answered + sampled


def usage_line(summary: Mapping[str, Any]) -> str | None:
    """``"120 in + 24 out tokens, $0.000312; judge 300 in + 8 out, $0"`` for one target; None when not counted."""
    if summary.get("prompt_tokens_total") is None:
        return None  # an eval recorded before tokens were counted
    text = (
        f"{_count(summary['prompt_tokens_total'])} in + {_count(summary.get('completion_tokens_total'))} out tokens, "
        f"{money(summary.get('cost_usd_total'))}"
    )
    if summary.get("consistency_prompt_tokens") is not None:
        text += (
            f" (of which consistency samples {_count(summary['consistency_prompt_tokens'])} in + "
            f"{_count(summary.get('consistency_completion_tokens'))} out, {money(summary.get('consistency_cost_usd'))})"
        )
    if summary.get("judge_prompt_tokens") is not None:
        text += (
            f"; judge {_count(summary['judge_prompt_tokens'])} in + "
            f"{_count(summary.get('judge_completion_tokens'))} out, {money(summary.get('judge_cost_usd'))}"
        )
    return text


def _count(value: Any) -> str:
    return f"{int(value or 0):,}"
