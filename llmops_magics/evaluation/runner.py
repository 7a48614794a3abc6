"""Running an ``EvalSpec`` (``ops/evaluate.py``): validate everything, then generate, score, compare, record.

Order matters for the promise that bad input writes nothing: the data set, split,
metrics, targets, templates and columns are all checked and every prompt rendered
before ``run`` returns the job; generation (cached, batched), scoring and the one
write at the end happen in the job's thread. A cancelled eval stops between batches
and registers nothing.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..context.provenance import collect
from ..context.workspaces import Workspace
from ..errors import JobCancelledError, RegressionError, ValidationError
from ..ops.catalog import Call
from ..ops.evaluate import EvalSpec, api_key_of
from ..ops.jobs import JobContext
from ..tracing.conventions import (
    LLMOPS_ARTIFACT_REF,
    LLMOPS_CACHED,
    LLMOPS_MODEL_REF,
    LLMOPS_PROMPT_REF,
    LLMOPS_WORKERS,
)
from ..tracing.spans import operation_span
from .cache import GenerationCache
from .cells import generate_endpoints, generate_local
from .consistency import check_adapter
from .generations import GenParams, generate_cached
from .jobs import EvalJob
from .judge import JudgeRunner
from .metrics import Example, MetricCall, MetricContext, parse_metric_specs, run_metric
from .results import EvalResult, MetricColumn
from .stats import compare_paired
from .targets import Target, register_folders, resolve_targets, split_names
from .usage import answer_totals

__all__ = ["run", "cache_path", "REFERENCE_COLUMNS", "ALPHA"]

REFERENCE_COLUMNS = ("answer", "reference", "expected", "target", "output")
ALPHA = 0.05  # every comparison's significance level (its intervals are 95%)


def cache_path(ws: Workspace):
    return ws.registry.home / "cache" / "generations.sqlite"


def run(spec: EvalSpec, call: Call) -> EvalJob:
    """Check ``spec`` against the registry now; generate, score and record it in a job."""
    ws = call.ws
    started = time.perf_counter()
    if spec.judge_model is None and ws.settings.judge_model:  # the project's judge, configured once
        spec = spec.replace(judge_model=ws.settings.judge_model)
    plan = _plan(spec, ws, api_key_of(spec))
    call = replace(
        call, workspace=ws, source=call.source or collect()
    )  # the cell that asked, not the one running later

    name = spec.name or f"eval of {', '.join(t.label for t in plan['targets'])}"

    def target(ctx: JobContext) -> EvalResult:
        gen_cache = GenerationCache(cache_path(ws), enabled=spec.cache)
        try:
            with operation_span("eval", f"eval {name}", workspace=ws) as span:
                result = _run(plan, spec, call, gen_cache, started, ctx)
                span.set({LLMOPS_ARTIFACT_REF: result.ref})
        finally:
            gen_cache.close()
            for t in plan["targets"]:
                if t.backend.kind == "endpoint":
                    t.backend.close()
        if spec.fail_on_regression and result.regressions:
            raise RegressionError(
                f"regression in {result.ref}: " + "; ".join(c.verdict for c in result.regressions),
                result,
                result.regressions,
            )
        return result

    return EvalJob(target, name=name, spec=spec, rows=len(plan["rows"]) * len(plan["targets"])).start()


def _select_rows(opts: EvalSpec, ws: Workspace):
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


def _reference_column(opts: EvalSpec, targets: Sequence[Target], columns: Sequence[str]) -> str | None:
    if opts.target_column:
        return opts.target_column
    for t in targets:
        if t.adapter is not None and t.adapter.metadata.get("target_column") in columns:
            return str(t.adapter.metadata["target_column"])
    return next((c for c in REFERENCE_COLUMNS if c in columns), None)


def _plan(opts: EvalSpec, ws: Workspace, api_key: str | None) -> dict[str, Any]:
    """Every check that can fail on bad input, with nothing loaded or written before the last has passed."""
    calls = parse_metric_specs(opts.metrics)
    ds, split, rows = _select_rows(opts, ws)
    columns = list(ds.columns)
    needs = {n for c in calls for n in c.spec.needs}
    if "context" in needs and "context" not in columns:  # before the targets: naming ``tiny`` registers it
        users = ", ".join(c.name for c in calls if "context" in c.spec.needs)
        raise ValidationError(f"metric(s) {users} need a 'context' column; {ds.ref} has {', '.join(columns)}")
    targets = resolve_targets(
        opts.targets,
        ws,
        columns,
        model=opts.model,
        prompt=opts.prompt,
        batch_size=opts.batch_size,
        endpoint_model=opts.endpoint_model,
        api_key=api_key,
    )
    ref_col = _reference_column(opts, targets, columns)
    if "reference" in needs:
        users = ", ".join(c.name for c in calls if "reference" in c.spec.needs)
        if ref_col is None:
            raise ValidationError(
                f"metric(s) {users} need a reference column; {ds.ref} has none of "
                f"{', '.join(REFERENCE_COLUMNS)} (name one with target_column=/--target-column)"
            )
        ds.require_columns([ref_col])
    if "model" in needs:
        for t in targets:
            if t.backend.kind != "local":
                users = ", ".join(c.name for c in calls if "model" in c.spec.needs)
                raise ValidationError(f"metric(s) {users} need a local model, but target {t.label} is {t.model_ref}")
    judges = JudgeRunner(ws, opts, None, api_key)
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
            t.backend.stream = any(c.spec.name == "ttft" for c in calls)  # time to first token needs a stream
    register_folders(targets, ws)  # the first write, after every check
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


def _links(t: Target) -> dict[str, str]:
    """The prompt and model versions behind a target's generations, for their spans."""
    links = {}
    art = t.prompt.artifact
    if art is not None and art.kind == "prompt":
        links[LLMOPS_PROMPT_REF] = art.ref
    if "://" in t.model_ref and not t.model_ref.startswith(("http://", "https://")):
        links[LLMOPS_MODEL_REF] = t.model_ref
    return links


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
                ttft_s=g.ttft_s,
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


def _stored(opts: EvalSpec, plan: dict[str, Any], judges: JudgeRunner) -> EvalSpec:
    """The spec with every reference pinned to the version used, so a replay is the same eval."""
    targets: list[Target] = plan["targets"]
    prompts = len(split_names(opts.prompt)) or 1
    pinned = [t.ref for t in targets][::prompts]  # one per target (or model) of the grid
    changes: dict[str, Any] = {
        "target": tuple(pinned[: len(opts.target)]),
        "compare": tuple(pinned[len(opts.target) :] if opts.targets else ()),
        "data": plan["dataset"].ref,
        "split": plan["split"],
        "metrics": tuple(str(c) for c in plan["calls"]),
    }
    if opts.prompt:
        changes["prompt"] = ",".join(dict.fromkeys(t.prompt.label for t in targets[:prompts]))
    prompt_targets = [t for t in targets if t.is_prompt]
    if opts.model and prompt_targets:
        changes["model"] = prompt_targets[0].model_ref
    elif opts.model and not opts.targets:  # a grid of models: pin each
        changes["model"] = ",".join(pinned)
    if judges.used_model is not None:
        changes["judge_model"] = judges.used_model
    if opts.judge_prompt and "judge:None" in judges.prompts_used:
        changes["judge_prompt"] = judges.prompts_used["judge:None"]
    return opts.replace(**changes)


def _generate_ahead(targets, plan, params, opts: EvalSpec, gen_cache, ctx: JobContext) -> dict[str, list]:
    """Answers made before scoring, every cell at once (``evaluation.cells``): local ones by
    forked workers while endpoints on different servers are asked side by side; {} for the
    targets left to be answered one by one."""
    local = {t.label: t.backend for t in targets if t.backend.kind == "local"}
    remote = {t.label: t.backend for t in targets if t.backend.kind == "endpoint"}
    if not local and len(remote) < 2:
        return {}
    payloads = plan["payloads"]
    done: dict[str, int] = {}
    total = sum(len(payloads[label]) for label in [*local, *remote])

    def progress_of(key: str):
        def progress(n: int, _total: int) -> None:
            done[key] = n
            ctx.emit({"type": "progress", "step": sum(done.values()), "max_steps": total, "phase": "generating"})

        return progress

    def cancelled() -> bool:
        return ctx.cancelled

    with operation_span("eval_generate", f"generate {', '.join([*local, *remote])}") as span:
        with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmops-eval-endpoints") as side:
            asked = side.submit(
                contextvars.copy_context().run,
                generate_endpoints,
                remote,
                payloads,
                params,
                gen_cache,
                opts.batch_size,
                cancelled=cancelled,
                progress_of=progress_of,
            )
            made = None
            if local:
                made = generate_local(
                    local,
                    payloads,
                    params,
                    gen_cache,
                    opts.batch_size,
                    workers=opts.workers,
                    cancelled=cancelled,
                    progress=progress_of("local"),
                )
            answered = asked.result()
        span.set({LLMOPS_WORKERS: made[1] if made else 1})
    return {**(made[0] if made else {}), **(answered or {})}


def _run(plan, opts: EvalSpec, call: Call, gen_cache: GenerationCache, started: float, ctx: JobContext) -> EvalResult:
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
    ready = _generate_ahead(targets, plan, params, opts, gen_cache, ctx)
    for n, t in enumerate(targets):
        t.cache = gen_cache
        t_started = time.perf_counter()

        def progress(done: int, total: int, n: int = n, label: str = t.label) -> None:
            ctx.emit({"type": "progress", "step": n * total + done, "max_steps": total * len(targets), "phase": label})

        with operation_span("eval_target", f"target {t.label}: {t.name}", links=_links(t)) as span:
            gens = ready.get(t.label) or generate_cached(
                t.backend,
                plan["payloads"][t.label],
                params,
                gen_cache,
                opts.batch_size,
                cancelled=lambda: ctx.cancelled,
                progress=progress,
            )
            span.set({LLMOPS_CACHED: sum(g.cached for g in gens)})
        examples = _examples(t, rows, plan["payloads"][t.label], gens, plan["reference"])
        mctx = MetricContext(target=t, options=opts, judges=judges)
        values = _score(plan["calls"], examples, mctx, columns)
        if ctx.cancelled:
            raise JobCancelledError("eval cancelled while scoring; nothing was saved")
        per_target[t.label] = {
            "examples": examples,
            "values": values,
            "notes": {**answer_totals(examples, t.model_ref), **mctx.notes},  # tokens and cost, always
            "details": mctx.details,
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
                    alpha=ALPHA,
                    min_delta=opts.min_delta,
                )
            )
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
    if ctx.cancelled:
        raise JobCancelledError("eval cancelled before it was saved; nothing was written")
    from .persist import record

    inputs = [(plan["dataset"].artifact, "data")] + [io for t in targets for io in t.inputs] + judges.inputs
    return record(result, call, spec=_stored(opts, plan, judges), inputs=inputs, name=opts.name)
