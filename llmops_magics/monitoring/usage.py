"""What a deployment's traffic spent in a monitor's window: tokens, dollars, and the ``cost_per_1k_requests`` check.

Each logged request carries its token counts (the server's tokenizer) and the version
that answered it (``version``: ``adapter://qa-lora/3``, or the deployment's target in a
log written before versions were logged: ``serving.stats.served_version``, which
``%deploy status`` prices by too). A version is priced by its reference, then its
registry name, at ``[tool.llmops.prices]`` (dollars per million input and output tokens;
``models.leaderboard.price_entry``), so a canary and the adapters loaded by name each cost
what their own price says. Only answered requests (status below 400) count, as in the
deployment's status summary: a refused request generated nothing.

The check compares dollars per 1,000 priced answered requests with ``max_cost_per_1k`` (a
threshold like the others: ``[tool.llmops.monitor]`` or ``--threshold``; 0, the default,
sets no limit). Requests of an unpriced version are left out of that average, not counted
as free, and the check's reason and details say how many there were. It is skipped, saying
why, when no served version has a price, when no limit is set (the value is still shown)
and when the window has fewer than ``min_requests`` priced requests. A malformed
``[tool.llmops.prices]`` costs only the dollars (None, the problem warned about once and
in the check's reason), unless a limit is set: a limit that cannot be checked refuses the
run with one ``ValidationError`` line rather than pass unseen.

A module of its own because the report, the stored artifact and the monitor's W&B run all
read the same totals, and ``checks.py`` holds the timing and drift measurements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import ValidationError
from .checks import Check, measure, skip

__all__ = ["window_usage", "cost_check", "usage_summary", "usage_line", "NAME"]

NAME = "cost_per_1k_requests"


def window_usage(
    rows: Sequence[Mapping[str, Any]], fallback: str | None, table: Mapping[str, Mapping[str, float]] | None = None
) -> dict[str, Any]:
    """Totals over the answered requests of ``rows`` and per version; ``fallback`` names rows without a version.

    ``{"requests", "prompt_tokens", "completion_tokens", "cost_usd", "cost_per_1k_requests",
    "priced": [versions with a price], "priced_requests", "unpriced_requests",
    "prices_error": the problem of a malformed table or None, "versions": {version: {the same, "price"}}}``.
    An unpriced version's dollars are None; the total's dollars per 1,000 requests are over
    the priced requests only, so an unpriced version does not dilute them.
    """
    from ..evaluation.usage import cost_usd, load_prices, warn_prices
    from ..models.leaderboard import price_entry
    from ..serving.stats import served_version

    problem = None
    if table is None:
        table, problem = load_prices()
        if problem is not None:
            warn_prices(problem)
    versions: dict[str, dict[str, Any]] = {}
    for r in rows:
        if (r.get("status") or 0) >= 400:
            continue
        v = versions.setdefault(served_version(r, fallback) or "unknown", _zero())
        v["requests"] += 1
        v["prompt_tokens"] += int(r.get("prompt_tokens") or 0)
        v["completion_tokens"] += int(r.get("completion_tokens") or 0)
    priced = []
    for version, v in versions.items():
        entry = price_entry(version, dict(table)) if table is not None else None
        if entry is not None:
            priced.append(version)
        v["price"] = dict(entry) if entry is not None else None
        v["cost_usd"] = cost_usd(v["prompt_tokens"], v["completion_tokens"], entry) if entry is not None else None
        v["cost_per_1k_requests"] = _per_1k(v["cost_usd"], v["requests"])
    total = _zero()
    for key in ("requests", "prompt_tokens", "completion_tokens"):
        total[key] = sum(v[key] for v in versions.values())
    paid = [versions[p] for p in priced]
    total["priced_requests"] = sum(v["requests"] for v in paid)
    total["unpriced_requests"] = total["requests"] - total["priced_requests"]
    total["cost_usd"] = None if problem is not None else sum((v["cost_usd"] for v in paid), 0.0)
    total["cost_per_1k_requests"] = _per_1k(total["cost_usd"], total["priced_requests"])
    usage = {**total, "priced": sorted(priced), "versions": dict(sorted(versions.items()))}
    return {**usage, "prices_error": problem} if problem is not None else usage


def _zero() -> dict[str, Any]:
    return {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}


def _per_1k(cost: float | None, requests: int) -> float | None:
    return 1000 * cost / requests if requests and cost is not None else None


def cost_check(usage: Mapping[str, Any], limits: Mapping[str, float]) -> Check:
    """Dollars per 1,000 priced answered requests against ``max_cost_per_1k`` (see the module docstring).

    A limit that cannot be checked because ``[tool.llmops.prices]`` is malformed is refused
    (``ValidationError``), never passed; without a limit the check is skipped, saying why.
    """
    details = {k: usage[k] for k in ("requests", "prompt_tokens", "completion_tokens", "cost_usd")}
    details.update({v: u["cost_per_1k_requests"] for v, u in usage["versions"].items() if len(usage["versions"]) > 1})
    value, limit = usage["cost_per_1k_requests"], limits["max_cost_per_1k"]
    if usage.get("prices_error"):
        if limit:
            raise ValidationError(
                f"{usage['prices_error']}; max_cost_per_1k={limit:g} cannot be checked without prices "
                "(fix the table, or set max_cost_per_1k = 0)"
            )
        return skip(NAME, f"{usage['prices_error']}: no cost", **details)
    if not usage["priced"]:
        served = ", ".join(usage["versions"]) or "the deployment"
        return skip(NAME, f"no price for {served} in [tool.llmops.prices]", **details)
    unpriced = usage.get("unpriced_requests") or 0
    note = ""
    if unpriced:
        names = ", ".join(v for v in usage["versions"] if v not in usage["priced"])
        details["unpriced_requests"] = unpriced
        note = (
            f"{unpriced} of {usage['requests']} answered request(s) unpriced ({names}: no price in "
            "[tool.llmops.prices]), left out of the cost per 1,000 requests"
        )
    if usage["priced_requests"] < limits["min_requests"]:
        few = f"{usage['priced_requests']} answered request(s) priced in the window, fewer than min_requests"
        return skip(NAME, f"{few}={limits['min_requests']:g}" + (f"; {note}" if note else ""), **details)
    if not limit:
        why = "no limit: set max_cost_per_1k in [tool.llmops.monitor] or --threshold max_cost_per_1k=N"
        why += f"; {note}" if note else ""
        return Check(NAME, "skip", value, direction="above", unit="$", reason=why, details=details)
    check = measure(NAME, value, warn=limit * limits["warn_ratio"], fail=limit, unit="$", details=details)
    return replace(check, reason=note) if note else check


def usage_summary(usage: Mapping[str, Any] | None) -> dict[str, float]:
    """The totals as flat numbers for a W&B run summary (``usage/cost_usd``, ``usage/adapter:qa-lora/1/cost_usd``)."""
    if not usage:
        return {}
    keys = ("requests", "prompt_tokens", "completion_tokens", "cost_usd", "cost_per_1k_requests")
    out = {f"usage/{k}": usage[k] for k in keys if usage.get(k) is not None}
    for version, v in (usage.get("versions") or {}).items():
        name = version.replace("://", ":")
        out.update({f"usage/{name}/{k}": v[k] for k in keys if v.get(k) is not None})
    return out


def usage_line(usage: Mapping[str, Any] | None) -> str | None:
    """``"30 requests: 420 in + 120 out tokens, $0.0021 ($0.07 per 1k requests)"``; None when not counted."""
    from ..display.html import money

    if not usage:
        return None
    per = usage.get("cost_per_1k_requests")
    text = (
        f"{usage['requests']:,} answered requests: {usage['prompt_tokens']:,} in + "
        f"{usage['completion_tokens']:,} out tokens, {money(usage['cost_usd'])}"
    )
    if per is not None:
        unpriced = usage.get("unpriced_requests") or 0
        text += (
            f" ({money(per)} per 1k priced requests; {unpriced:,} unpriced)"
            if unpriced
            else f" ({money(per)} per 1k requests)"
        )
    if usage.get("prices_error"):
        return text + f"; {usage['prices_error']}"
    return text if usage.get("priced") else text + "; no price in [tool.llmops.prices]"
