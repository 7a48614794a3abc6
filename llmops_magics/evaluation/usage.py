"""Tokens and cost of an eval's model calls: the targets' answers and the judges' verdicts.

Every eval counts them, whatever metrics it was asked for (the ``tokens`` and ``cost``
metrics are per-answer columns; these are totals). Each target's summary gets
``prompt_tokens_total``, ``completion_tokens_total`` and ``cost_usd_total`` for its answers,
and, when a judge scored them, ``judge_prompt_tokens``, ``judge_completion_tokens`` and
``judge_cost_usd`` for the judge's calls, priced by the judge model's own name. So they
are stored in the eval's summary, shown by the result and logged to its W&B run summary
(``A/cost_usd_total``) with no code of their own there.

Prices are ``[tool.llmops.prices]`` (dollars per million input and output tokens), looked
up by ``models.leaderboard.price_of``: an unpriced model (a local one, usually) costs 0.
A cached answer keeps the token counts of the call that made it, so a cached re-run
reports what its answers cost when they were generated, and stays the same eval version.

A module of its own because the runner, the judge and the result all read these keys;
the runner and the judge module are near the size limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..display.html import money

__all__ = ["TARGET_KEYS", "JUDGE_KEYS", "cost_usd", "answer_totals", "count_judge", "usage_line"]

TARGET_KEYS = ("prompt_tokens_total", "completion_tokens_total", "cost_usd_total")
JUDGE_KEYS = ("judge_prompt_tokens", "judge_completion_tokens", "judge_cost_usd")


def cost_usd(prompt_tokens: float, completion_tokens: float, price: Mapping[str, float]) -> float:
    """Dollars for these tokens at ``price`` (``{"input": $/M, "output": $/M}``)."""
    return (prompt_tokens * price["input"] + completion_tokens * price["output"]) / 1e6


def _sums(calls: Iterable[Any]) -> tuple[int, int]:
    prompt = completion = 0
    for c in calls:
        prompt += int(c.prompt_tokens or 0)
        completion += int(c.completion_tokens or 0)
    return prompt, completion


def answer_totals(examples: Iterable[Any], model: str | None) -> dict[str, float]:
    """A target's totals over its answers (``Example``s or ``GenRecord``s), priced by its model's reference."""
    from ..models.leaderboard import price_of

    prompt, completion = _sums(examples)
    return dict(zip(TARGET_KEYS, (prompt, completion, cost_usd(prompt, completion, price_of(model))), strict=True))


def count_judge(ctx: Any, replies: Iterable[Any], model: str | None) -> None:
    """Add the judge's replies' tokens and cost to ``ctx``'s notes (the judged target's summary)."""
    from ..models.leaderboard import price_of

    prompt, completion = _sums(replies)
    values = (prompt, completion, cost_usd(prompt, completion, price_of(model)))
    for key, value in zip(JUDGE_KEYS, values, strict=True):
        ctx.count(key, value)


def usage_line(summary: Mapping[str, Any]) -> str | None:
    """``"120 in + 24 out tokens, $0.000312; judge 300 in + 8 out, $0"`` for one target; None when not counted."""
    if summary.get("prompt_tokens_total") is None:
        return None  # an eval recorded before tokens were counted
    text = (
        f"{_count(summary['prompt_tokens_total'])} in + {_count(summary.get('completion_tokens_total'))} out tokens, "
        f"{money(summary.get('cost_usd_total'))}"
    )
    if summary.get("judge_prompt_tokens") is not None:
        text += (
            f"; judge {_count(summary['judge_prompt_tokens'])} in + "
            f"{_count(summary.get('judge_completion_tokens'))} out, {money(summary.get('judge_cost_usd'))}"
        )
    return text


def _count(value: Any) -> str:
    return f"{int(value or 0):,}"
