"""Quality on live traffic: a seeded sample of logged answers, judged like the eval baseline's answers.

Live requests have no reference answer, so the score must be reference-free: the
baseline eval's own judge (its judge model, and a ``judge:PROMPT`` metric whose prompt
reads the question and the answer but not the reference). Both samples are judged here
under one protocol: the judge sees the rendered input (what the request log holds) and
the answer, for ``sample`` live requests and ``sample`` of the baseline eval's answers.
Judging the baseline again, rather than reading its stored scores, keeps like with like
(the stored scores saw the raw question); the generation cache makes it free after the
first run.

The verdict is on the difference of means, live minus baseline, with a two-sample
bootstrap 95% interval: it warns when the interval lies below 0 (live answers judged
worse, beyond sampling noise) and fails when, in addition, the drop is at least
``quality_drop`` (on the judge's 0-1 scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .checks import Check, skip

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..store import Artifact

__all__ = ["find_baseline", "quality_check", "two_sample_ci"]

NAME = "quality"


def find_baseline(ws: Workspace, explicit: str | None, state: Mapping[str, Any]) -> Artifact | None:
    """The eval given, else the newest eval made directly from the served version; None when there is none."""
    reg = ws.registry
    if explicit:
        return reg.resolve(explicit, "eval")
    evals = [reg.resolve(e.target) for e in reg.downstream(state["target"], depth=1) if e.target.startswith("eval://")]
    return max(evals, key=lambda a: a.created_at, default=None)


def two_sample_ci(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile interval of ``mean(a) - mean(b)``, each sample resampled with replacement on its own."""
    import numpy as np

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    diffs = x[rng.integers(0, x.size, (n_resamples, x.size))].mean(1) - y[
        rng.integers(0, y.size, (n_resamples, y.size))
    ].mean(1)
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _judge(ws: Workspace, baseline: Artifact) -> tuple[Any, str, str | None] | str:
    """``(runner, metric, arg)`` for the baseline's first reference-free judge metric, or why there is none."""
    from ..evaluation.cache import GenerationCache
    from ..evaluation.judge import JudgeRunner
    from ..evaluation.runner import cache_path
    from ..ops.evaluate import EvalSpec

    opts = EvalSpec.from_dict(baseline.spec.get("args") or {}, origin=baseline.ref)
    if not opts.judge_model:
        return f"the baseline {baseline.ref} has no judge model; evaluate with judge_model= and a judge:PROMPT metric"
    runner = JudgeRunner(ws, opts, GenerationCache(cache_path(ws)))
    for spec in opts.metrics:
        name, _, arg = spec.partition(":")
        if name != "judge":
            continue
        parsed, params = runner.template(name, arg or None)
        if "reference" not in parsed.required(params):
            return runner, name, arg or None
    return (
        f"the baseline {baseline.ref} has no reference-free judge metric (judge:PROMPT whose prompt reads the "
        "question and answer, not the reference)"
    )


def _scores(runner: Any, metric: str, arg: str | None, pairs: Sequence[tuple[str, str]], spent: dict) -> list[float]:
    """The judge's scores of ``pairs``; its tokens and dollars are added to ``spent``."""
    from ..evaluation.metrics import Example, MetricContext
    from ..evaluation.usage import JUDGE_KEYS

    examples = [Example(i, {}, str(p), str(o), None, 0, 0, 0.0, "stop", False) for i, (p, o) in enumerate(pairs)]
    ctx = MetricContext(target=None, options=runner.options, arg=arg, judges=runner)
    scores = [s for s in runner.judge(metric, arg, examples, ctx)[metric] if s is not None]
    for key in JUDGE_KEYS:
        spent[key] = spent.get(key, 0) + ctx.notes.get(key, 0)
    return scores


def quality_check(
    ws: Workspace,
    state: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    baseline: Artifact | None,
    limits: Mapping[str, float],
    *,
    sample: int = 30,
    seed: int = 0,
) -> Check:
    """Live answers against the baseline's (see the module docstring)."""
    from ..evaluation import get_eval
    from .drift import subsample

    if baseline is None:
        return skip(
            NAME, f"no eval baseline: evaluate {state.get('target')} with a reference-free judge, or pass baseline=EVAL"
        )
    live = [(r["input_text"], r["output_text"]) for r in rows
            if (r.get("status") or 0) < 400 and r.get("input_text") and r.get("output_text") is not None]  # fmt: skip
    need = max(2, min(sample, int(limits["min_requests"])))
    if len(live) < need:
        why = (
            "texts are not logged: deploy with log_text=True"
            if not live
            else f"{len(live)} logged answer(s), fewer than {need}"
        )
        return skip(NAME, why, baseline=baseline.ref)
    try:
        found = _judge(ws, baseline)
    except ValidationError as exc:  # a baseline recorded by an older version, a judge prompt since removed
        found = f"the baseline {baseline.ref} cannot be judged again: {exc}"
    if isinstance(found, str):
        return skip(NAME, found, baseline=baseline.ref)
    runner, metric, arg = found
    result = get_eval(baseline.ref, workspace=ws)
    first = result.targets[0]["label"]
    past = [
        (r["prompt"], r.get("output") or "") for r in result.records if r.get("target") == first and r.get("prompt")
    ]
    spent: dict[str, float] = {}  # the judge's tokens and dollars (evaluation/usage.py)
    try:
        live_scores = _scores(runner, metric, arg, subsample(live, sample, seed), spent)
        base_scores = _scores(runner, metric, arg, subsample(past, sample, seed), spent)
    except ValidationError as exc:
        return skip(NAME, str(exc), baseline=baseline.ref)
    finally:
        runner.cache.close()
        if hasattr(runner._backend, "close"):
            runner._backend.close()
    if len(live_scores) < 2 or len(base_scores) < 2:
        return skip(NAME, f"the judge scored {len(live_scores)} live and {len(base_scores)} baseline answers on its scale; "
                    "at least 2 of each are needed", baseline=baseline.ref)  # fmt: skip
    live_mean = sum(live_scores) / len(live_scores)
    base_mean = sum(base_scores) / len(base_scores)
    lo, hi = two_sample_ci(live_scores, base_scores, seed=seed)
    drop = limits["quality_drop"]
    status = "fail" if hi < 0 and live_mean - base_mean <= -drop else "warn" if hi < 0 else "pass"
    details = {"baseline": baseline.ref, "baseline_score": base_mean, "delta": live_mean - base_mean, "ci": [lo, hi],
               "n": len(live_scores), "n_baseline": len(base_scores), "judge": f"{metric}:{arg}" if arg else metric,
               "judge_model": runner.used_model, **spent}  # fmt: skip
    return Check(NAME, status, live_mean, base_mean, base_mean - drop, "below", "judge 0-1", details=details)
