"""``evaluate()``: validate everything, generate (cached, batched), score, compare, record.

Order matters for the promise that bad input writes nothing: the data set, split,
metrics, targets, templates and columns are all checked and every prompt rendered
before the first generation, and the registry is written only at the end.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..context.workspaces import Workspace, current
from ..errors import RegressionError, ValidationError
from .cache import GenerationCache
from .consistency import check_adapter
from .generations import GenParams, generate_cached
from .judge import JudgeRunner
from .metrics import Example, MetricCall, MetricContext, parse_metric_specs, run_metric, split_metric_specs
from .options import DEFAULT_METRICS, EvalOptions, as_tuple
from .results import EvalResult, MetricColumn
from .stats import compare_paired
from .targets import Target, resolve_targets

__all__ = ["evaluate", "cache_path", "REFERENCE_COLUMNS"]

REFERENCE_COLUMNS = ("answer", "reference", "expected", "target", "output")


def cache_path(ws: Workspace):
    return ws.registry.home / "cache" / "generations.sqlite"


def evaluate(
    target: str | Sequence[str],
    *,
    data: str,
    compare: str | Sequence[str] | None = None,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    split: str | None = None,
    model: str | None = None,
    prompt: str | None = None,
    limit: int | None = None,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    seed: int | None = None,
    batch_size: int = 16,
    stop: str | Sequence[str] | None = None,
    target_column: str | None = None,
    judge_model: str | None = None,
    judge_prompt: str | None = None,
    judge_k: int = 3,
    judge_temperature: float = 0.7,
    endpoint_model: str | None = None,
    api_key: str | None = None,
    name: str | None = None,
    cache: bool = True,
    fail_on_regression: bool = False,
    n_resamples: int = 2000,
    min_delta: float | None = None,
    magic: str | None = None,
    source: Mapping[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> EvalResult:
    """Evaluate one target, or compare several on the same data (the first is the baseline A).

    ``target``/``compare``: model or adapter references, local model folders, prompt
    references (run by ``model``) or OpenAI-compatible endpoint URLs. ``data``: a dataset
    reference; ``split`` defaults to ``validation``, then ``test``, then every row.
    ``metrics``: names from ``list_metrics()``, as a list or ``"a,b"``; ``regex:PATTERN``
    passes an argument (commas in it are kept, see ``split_metric_specs``). Answers are
    cached (see ``evaluation.cache``); ``cache=False`` regenerates. With
    ``fail_on_regression`` a ``RegressionError`` is raised (after the eval is saved) when
    a compared target is significantly worse than A on a quality metric. ``min_delta`` is
    the smallest mean difference a comparison may call significant (default: float noise,
    see ``evaluation.stats``). ``seed`` seeds sampling (``temperature > 0``), which is
    cached only when seeded, and the bootstrap (0 when None). ``magic`` is the ``%eval``
    line, stored in the spec for replay.
    """
    ws = workspace or current()
    started = time.perf_counter()
    targets_in = as_tuple(target) + as_tuple(compare)
    opts = EvalOptions(
        targets=targets_in,
        data=data,
        split=split,
        metrics=tuple(split_metric_specs(metrics) if isinstance(metrics, str) else (m.strip() for m in metrics)),
        model=model,
        prompt=prompt,
        limit=limit,
        max_new_tokens=max_new_tokens,
        temperature=float(temperature),
        seed=seed,
        batch_size=batch_size,
        stop=as_tuple(stop),
        target_column=target_column,
        judge_model=judge_model,
        judge_prompt=judge_prompt,
        judge_k=judge_k,
        judge_temperature=float(judge_temperature),
        endpoint_model=endpoint_model,
        api_key=api_key,
        name=name,
        cache=cache,
        fail_on_regression=fail_on_regression,
        n_resamples=n_resamples,
        min_delta=min_delta,
    )
    plan = _plan(opts, ws)
    gen_cache = GenerationCache(cache_path(ws), enabled=opts.cache)
    try:
        result = _run(plan, opts, ws, gen_cache, started, magic, source)
    finally:
        gen_cache.close()
        for t in plan["targets"]:
            if t.backend.kind == "endpoint":
                t.backend.close()
    if opts.fail_on_regression and result.regressions:
        raise RegressionError(
            f"regression in {result.ref}: " + "; ".join(c.verdict for c in result.regressions),
            result,
            result.regressions,
        )
    return result


def _select_rows(opts: EvalOptions, ws: Workspace):
    from ..datasets import get_dataset

    ds = get_dataset(opts.data, workspace=ws)
    split = opts.split
    if split is None:
        split = next((s for s in ("validation", "test") if s in ds.splits), None)
    rows = ds.records(split)
    if opts.limit is not None:
        rows = rows[: opts.limit]
    if not rows:
        where = f"split {split!r} of " if split else ""
        raise ValidationError(f"{where}{ds.ref} has no rows to evaluate")
    return ds, split, rows


def _reference_column(opts: EvalOptions, targets: Sequence[Target], columns: Sequence[str]) -> str | None:
    if opts.target_column:
        return opts.target_column
    for t in targets:
        if t.adapter is not None and t.adapter.metadata.get("target_column") in columns:
            return str(t.adapter.metadata["target_column"])
    return next((c for c in REFERENCE_COLUMNS if c in columns), None)


def _plan(opts: EvalOptions, ws: Workspace) -> dict[str, Any]:
    """Every check that can fail on bad input, with nothing loaded or written."""
    calls = parse_metric_specs(opts.metrics)
    ds, split, rows = _select_rows(opts, ws)
    columns = list(ds.columns)
    targets = resolve_targets(
        opts.targets,
        ws,
        columns,
        model=opts.model,
        prompt=opts.prompt,
        batch_size=opts.batch_size,
        endpoint_model=opts.endpoint_model,
        api_key=opts.api_key,
    )
    ref_col = _reference_column(opts, targets, columns)
    needs = {n for c in calls for n in c.spec.needs}
    if "reference" in needs:
        users = ", ".join(c.name for c in calls if "reference" in c.spec.needs)
        if ref_col is None:
            raise ValidationError(
                f"metric(s) {users} need a reference column; {ds.ref} has none of "
                f"{', '.join(REFERENCE_COLUMNS)} (name one with target_column=/--target-column)"
            )
        ds.require_columns([ref_col])
    if "context" in needs:
        users = ", ".join(c.name for c in calls if "context" in c.spec.needs)
        if "context" not in columns:
            raise ValidationError(f"metric(s) {users} need a 'context' column; {ds.ref} has {', '.join(columns)}")
    if "model" in needs:
        for t in targets:
            if t.backend.kind != "local":
                users = ", ".join(c.name for c in calls if "model" in c.spec.needs)
                raise ValidationError(f"metric(s) {users} need a local model, but target {t.label} is {t.model_ref}")
    judges = JudgeRunner(ws, opts, None)
    for c in calls:
        if "judge" in c.spec.needs:
            judges.validate(c.name, c.arg, columns)
    for t in targets:
        missing = [v for v in t.prompt.variables if v not in columns]
        if missing:
            raise ValidationError(
                f"prompt {t.prompt.label} (target {t.label}) needs column(s) {', '.join(missing)}, "
                f"which {ds.ref} lacks; its columns are {', '.join(columns)}"
            )
    payloads = {t.label: [_payload(t, row, i) for i, row in enumerate(rows)] for t in targets}
    for t in targets:
        if t.backend.kind == "endpoint":
            t.backend.check()
    return {
        "dataset": ds,
        "split": split,
        "rows": rows,
        "targets": targets,
        "calls": calls,
        "reference": ref_col,
        "payloads": payloads,
        "judges": judges,
    }


def _payload(t: Target, row: Mapping[str, Any], i: int):
    out = t.prompt.render(row, where=f"{t.prompt.label} (row {i})")
    return [dict(m) for m in out] if isinstance(out, list) else str(out)


def _examples(t: Target, rows, payloads, gens, ref_col) -> list[Example]:
    out = []
    for i, (row, payload, g) in enumerate(zip(rows, payloads, gens, strict=True)):
        chat = isinstance(payload, list)
        text = "\n".join(f"{m['role']}: {m['content']}" for m in payload) if chat else payload
        reference = row.get(ref_col) if ref_col else None
        out.append(
            Example(
                index=i,
                row=row,
                prompt=text,
                output=g.text,
                reference=None if reference is None else str(reference),
                prompt_tokens=g.prompt_tokens,
                completion_tokens=g.completion_tokens,
                latency_s=g.latency_s,
                finish_reason=g.finish_reason,
                cached=g.cached,
                messages=tuple(payload) if chat else None,
            )
        )
    return out


def _score(calls: Sequence[MetricCall], examples, ctx: MetricContext, columns: dict[str, MetricColumn]):
    values: dict[str, list] = {}
    for call in calls:
        out = run_metric(call, examples, ctx)
        for k, (col, vals) in enumerate(out.items()):
            if col in values:
                raise ValidationError(f"metric {call.name!r} returns column {col!r}, which another metric also returns")
            values[col] = vals
            primary = k == 0
            columns.setdefault(
                col,
                MetricColumn(
                    col, call.name, primary, call.spec.higher_is_better if primary else None, primary and call.spec.gate
                ),
            )
    return values


def _spec(opts: EvalOptions, plan: dict[str, Any], judges: JudgeRunner) -> dict[str, Any]:
    """The resolved arguments, every reference pinned to the version used, so a replay is the same eval."""
    targets: list[Target] = plan["targets"]
    spec = {"op": "evaluate", **opts.to_spec(), "data": plan["dataset"].ref, "split": plan["split"]}
    spec["targets"] = [t.ref for t in targets]
    spec["target_details"] = [t.to_spec() for t in targets]
    spec["metrics"] = [str(c) for c in plan["calls"]]
    if opts.prompt:
        spec["prompt"] = targets[0].prompt.label
    prompt_targets = [t for t in targets if t.is_prompt]
    if opts.model and prompt_targets:
        spec["model"] = prompt_targets[0].model_ref
    if judges.used_model is not None:
        spec["judge_model"] = judges.used_model
    if opts.judge_prompt and "judge:None" in judges.prompts_used:
        spec["judge_prompt"] = judges.prompts_used["judge:None"]
    return spec


def _run(plan, opts: EvalOptions, ws: Workspace, gen_cache: GenerationCache, started, magic, source) -> EvalResult:
    targets: list[Target] = plan["targets"]
    rows = plan["rows"]
    judges: JudgeRunner = plan["judges"]
    judges.cache = gen_cache
    mismatches = []
    for t in targets:
        mismatches += check_adapter(t)
    params = GenParams(opts.max_new_tokens, opts.temperature, opts.seed, opts.stop)
    columns: dict[str, MetricColumn] = {}
    per_target: dict[str, dict[str, Any]] = {}
    for t in targets:
        t.cache = gen_cache
        t_started = time.perf_counter()
        gens = generate_cached(t.backend, plan["payloads"][t.label], params, gen_cache, opts.batch_size)
        examples = _examples(t, rows, plan["payloads"][t.label], gens, plan["reference"])
        ctx = MetricContext(target=t, options=opts, judges=judges)
        values = _score(plan["calls"], examples, ctx, columns)
        per_target[t.label] = {
            "examples": examples,
            "values": values,
            "notes": ctx.notes,
            "cache_hits": sum(g.cached for g in gens),
            "seconds": time.perf_counter() - t_started,
        }
    comparisons = []
    base = targets[0]
    for t in targets[1:]:
        for col in (c for c in columns.values() if c.primary):
            comparisons.append(
                compare_paired(
                    col.name,
                    base.label,
                    t.label,
                    per_target[base.label]["values"][col.name],
                    per_target[t.label]["values"][col.name],
                    higher_is_better=col.higher_is_better,
                    gate=col.gate,
                    n_resamples=opts.n_resamples,
                    seed=opts.seed or 0,
                    alpha=opts.alpha,
                    min_delta=opts.min_delta,
                )
            )
    spec = _spec(opts, plan, judges)
    if magic is not None:
        spec["magic"] = magic
    result = EvalResult.build(
        targets=targets,
        dataset=plan["dataset"],
        split=plan["split"],
        rows=rows,
        reference_column=plan["reference"],
        columns=list(columns.values()),
        per_target=per_target,
        comparisons=comparisons,
        mismatches=mismatches,
        seconds=time.perf_counter() - started,
    )
    from .persist import record

    inputs = [(plan["dataset"].artifact, "data")] + [io for t in targets for io in t.inputs] + judges.inputs
    return record(result, ws, spec=spec, inputs=inputs, name=opts.name, source=source)
