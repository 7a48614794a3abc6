"""``finetune()``: resolve the spec, run it as a background job, record and register the result.

Each run has an id and a folder under the registry home (``runs/<id>/``: the plan,
checkpoints, rank 0's progress, each rank's record, the launcher's log) and a
small record in the registry's state (``finetune`` namespace) saying where it
stands. A cancelled or crashed run keeps its last checkpoint; ``resume=True``
finds the latest such run of the same spec, ``resume="<run id>"`` names one, and
training continues from the checkpoint (optimizer, scheduler and RNG included).

Everything runs in the job's thread: the notebook gets the handle at once.
W&B is written only from this process, through the workspace's recorder: config,
``train/loss`` and ``eval/loss`` as they come, the final metrics in the summary,
and the adapter as an artifact with its lineage.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..context.processes import process_started, still_running
from ..context.provenance import collect
from ..context.workspaces import Workspace, current
from ..display.result_charts import downsample
from ..errors import JobCancelledError, NotFoundError, ValidationError
from ..ops.catalog import Call
from ..ops.finetune import FinetuneSpec
from ..ops.jobs import Job, JobContext
from ..store.records import thaw
from .launch import run_launcher
from .outputs import FinetuneResult, register_outputs
from .spec import ResolvedRun, resolve_spec, spec_key, with_registered_base
from .train import last_checkpoint

__all__ = ["run", "FinetuneJob", "finetune_runs", "STATE_NAMESPACE"]

STATE_NAMESPACE = "finetune"
_active: set[str] = set()


class FinetuneJob(Job):
    """A running fine-tune: a ``Job`` whose result is a ``FinetuneResult``."""

    def __init__(self, target, *, name: str, run_id: str, run_dir: Path, spec: Mapping[str, Any]) -> None:
        super().__init__(target, name=name, kind="finetune")
        self.run_id = run_id
        self.run_dir = run_dir
        self.spec = dict(spec)

    def resume(self, **kwargs: Any) -> FinetuneJob:
        """Continue this run from its last checkpoint, as a new job."""
        from ..ops.finetune import finetune

        return finetune(resume=self.run_id, **kwargs)

    def overview(self) -> dict[str, Any]:
        out = super().overview()
        return out if self.status == "succeeded" else {**out, "run": self.run_id}


def _new_run_id() -> str:
    return time.strftime("ft-%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _settled(ws: Workspace) -> dict[str, dict[str, Any]]:
    """Every run's record, with runs whose process died mid-run marked ``interrupted``.

    A kernel restarted (or killed) during training cannot write "failed"; its record would
    say "running" forever. Whoever reads the records next notices that the recorded process
    is gone and says so, keeping the last checkpoint so ``resume`` continues from it.
    """
    reg = ws.registry
    runs = reg.list_state(STATE_NAMESPACE)
    for run_id, record in runs.items():
        if record.get("status") not in ("pending", "running") or run_id in _active:
            continue
        if still_running(record.get("pid"), record.get("pid_started")):
            continue
        checkpoint = last_checkpoint(Path(record["run_dir"]) / "checkpoints")
        record.update(
            status="interrupted",
            error=f"the process running it (pid {record.get('pid')}) ended mid-run (a kernel restart or kill)",
            checkpoint=str(checkpoint) if checkpoint else None,
            updated_at=time.time(),
        )
        reg.put_state(STATE_NAMESPACE, run_id, record)
    return runs


def _find_resumable(ws: Workspace, resume: bool | str, key: str | None) -> tuple[str, dict[str, Any]]:
    runs = _settled(ws)
    if isinstance(resume, str):
        if resume not in runs:
            raise NotFoundError(f"no fine-tune run {resume!r}; known runs: {', '.join(sorted(runs)) or 'none'}")
        candidates = [(resume, runs[resume])]
    else:
        candidates = sorted(
            ((rid, r) for rid, r in runs.items() if r.get("spec_key") == key and r.get("status") != "succeeded"),
            key=lambda item: item[1].get("updated_at", 0),
            reverse=True,
        )
    for run_id, record in candidates:
        if run_id in _active:
            raise ValidationError(f"run {run_id} is still running in this kernel; cancel it before resuming")
        if record.get("status") == "succeeded":
            raise ValidationError(f"run {run_id} already finished ({record.get('result')}); nothing to resume")
        if last_checkpoint(Path(record["run_dir"]) / "checkpoints") is not None:
            return run_id, record
        if isinstance(resume, str):
            raise ValidationError(f"run {run_id} has no checkpoint to resume from (it stopped before the first save)")
    raise ValidationError("no cancelled or crashed run of this spec has a checkpoint to resume from")


def _plan(resolved: ResolvedRun, run_dir: Path, resume_from: Path | None) -> dict[str, Any]:
    return {
        "spec": thaw(resolved.spec),
        "base_path": str(resolved.base_path),
        "train_file": str(resolved.train_file),
        "train_ref": resolved.train.ref,
        "eval_file": str(resolved.eval_file) if resolved.eval_file else None,
        "eval_ref": resolved.eval.ref if resolved.eval is not None else None,
        "template": resolved.template,
        "prompt_params": resolved.prompt_params,
        "target_column": resolved.target_column,
        "run_dir": str(run_dir),
        "checkpoint_dir": str(run_dir / "checkpoints"),
        "output_dir": str(run_dir / "output"),
        "merged_dir": str(run_dir / "merged"),
        "resume_from": str(resume_from) if resume_from else None,
    }


def _rank_records(run_dir: Path) -> list[dict[str, Any]]:
    import json

    folder = run_dir / "ranks"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("rank-*.json"))] if folder.is_dir() else []


def _execute(ctx: JobContext, call: Call, resolved: ResolvedRun, run_id: str, plan: dict[str, Any]) -> FinetuneResult:
    from .train import run_training

    ws = call.ws
    reg = ws.registry
    run_dir = Path(plan["run_dir"])
    record = dict(reg.get_state(STATE_NAMESPACE, run_id) or {})

    def update(**changes: Any) -> None:
        record.update(changes, updated_at=time.time())
        reg.put_state(STATE_NAMESPACE, run_id, record)

    config = {**thaw(resolved.spec), "llmops_run_id": run_id, "resumed_from": plan["resume_from"]}
    run = ws.recorder.start_run(job_type="finetune", name=f"{resolved.title}-{run_id}", config=config)
    wandb_run_id = (run.id or None) if run is not None else None
    update(status="running", wandb_run_id=wandb_run_id)

    curve: dict[str, list[list[float]]] = {"train": [], "eval": []}  # the loss curves the result draws

    def sink(event: Mapping[str, Any]) -> None:
        ctx.emit(event)
        if event.get("type") == "log":
            for label in curve:
                if isinstance(event.get(f"{label}/loss"), (int, float)):
                    curve[label].append([float(event.get("step", 0)), float(event[f"{label}/loss"])])
        metrics = {k: v for k, v in event.items() if "/" in k and isinstance(v, (int, float))}
        if run is not None and metrics and event.get("type") == "log":
            run.log(metrics, step=int(event.get("step", 0)))
        if event.get("type") == "progress" and event.get("step") is not None:
            record.update(step=event["step"], max_steps=event.get("max_steps"))

    try:
        if resolved.spec["launcher"] == "none":
            outcome = run_training(plan, sink, lambda: ctx.cancelled)
        else:
            outcome = run_launcher(plan, sink, lambda: ctx.cancelled)
    except BaseException as exc:
        checkpoint = last_checkpoint(run_dir / "checkpoints")
        status = "cancelled" if ctx.cancelled else "failed"
        update(status=status, error=f"{type(exc).__name__}: {exc}", checkpoint=str(checkpoint) if checkpoint else None)
        if run is not None:
            run.finish(exit_code=1)
        if ctx.cancelled:
            raise JobCancelledError(f"fine-tune {run_id} cancelled; {_resume_hint(run_id, checkpoint)}") from exc
        raise
    if outcome.get("cancelled"):
        checkpoint = outcome.get("checkpoint")
        update(status="cancelled", step=outcome.get("step"), checkpoint=checkpoint)
        if run is not None:
            run.summary({"status": "cancelled", "step": outcome.get("step")})
            run.finish(exit_code=1)
        raise JobCancelledError(
            f"fine-tune {run_id} cancelled at step {outcome.get('step')}/{outcome.get('max_steps')}; "
            f"{_resume_hint(run_id, checkpoint)}"
        )
    ranks = _rank_records(run_dir)
    metrics = dict(outcome.get("metrics", {}))
    metrics["world_size"] = max([r["world_size"] for r in ranks] or [1])
    metrics["train_tokens"] = sum(r["tokens"] for r in ranks)
    if metrics.get("train_runtime"):
        metrics["train_tokens_per_second"] = round(metrics["train_tokens"] / metrics["train_runtime"], 1)
    outcome = {**outcome, "metrics": metrics, "loss_curve": {k: downsample(v) for k, v in curve.items() if v}}
    art, merged, created = register_outputs(
        ws, resolved, outcome, run_id=run_id, wandb_run_id=wandb_run_id, call=call, run=run
    )
    if run is not None:
        run.summary({f"final/{k}": v for k, v in metrics.items()} | {"artifact": art.ref})
        run.finish()
    update(status="succeeded", result=art.ref, merged=merged.ref if merged else None, checkpoint=None)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    for sub in ("output", "merged"):
        shutil.rmtree(run_dir / sub, ignore_errors=True)
    return FinetuneResult(art, merged, metrics, run_id, wandb_run_id, created, tuple(ranks))


def _resume_hint(run_id: str, checkpoint: Any) -> str:
    if not checkpoint:
        return "no checkpoint was saved"
    return f"checkpoint {Path(str(checkpoint)).name} kept: resume with finetune(resume={run_id!r})"


def run(spec: FinetuneSpec, call: Call) -> FinetuneJob:
    """Run a ``FinetuneSpec`` (see ``llmops_magics.finetune``): checked now, trained in a job."""
    ws = call.ws
    request = spec
    resume = spec.resume
    if isinstance(resume, str) and resume and spec.data is None:
        stored = ws.registry.get_state(STATE_NAMESPACE, resume)
        if stored is None:
            raise NotFoundError(f"no fine-tune run {resume!r}")
        request = FinetuneSpec.from_dict(stored["request"]).replace(resume=resume)
    resolved = resolve_spec(request, ws, register=False)
    resume_from = None
    if resume:  # checked before the base model is registered: a failed resume writes nothing
        key = spec_key(resolved.spec)
        run_id, record = _find_resumable(ws, resume, key)
        if record.get("spec_key") != key:
            raise ValidationError(f"run {run_id} was started with a different spec; resume it without changing options")
        resume_from = last_checkpoint(Path(record["run_dir"]) / "checkpoints")
    else:
        run_id = _new_run_id()
    resolved = with_registered_base(resolved, ws)
    key = spec_key(resolved.spec)
    run_dir = ws.registry.home / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    ws.registry.put_state(
        STATE_NAMESPACE,
        run_id,
        {
            **(ws.registry.get_state(STATE_NAMESPACE, run_id) or {"created_at": time.time()}),
            "run_id": run_id,
            "name": resolved.title,
            "status": "pending",
            "pid": os.getpid(),  # the kernel that owns the job; see _settled
            "pid_started": process_started(os.getpid()),
            "request": request.to_dict(),
            "spec": resolved.spec,
            "spec_key": key,
            "run_dir": str(run_dir),
            "resumed_from": str(resume_from) if resume_from else None,
            "updated_at": time.time(),
            "command": call.command,
        },
    )
    plan = _plan(resolved, run_dir, resume_from)
    call = replace(call, workspace=ws, source=collect({"finetune_run": run_id}))

    def target(ctx: JobContext) -> FinetuneResult:
        _active.add(run_id)
        try:
            return _execute(ctx, call, resolved, run_id, plan)
        finally:
            _active.discard(run_id)

    return FinetuneJob(target, name=resolved.title, run_id=run_id, run_dir=run_dir, spec=resolved.spec).start()


def finetune_runs(*, workspace: Workspace | None = None):
    """Every fine-tune run recorded in the registry (newest first), for ``%finetune list``."""
    from .views import RunList

    ws = workspace or current()
    runs = _settled(ws)
    return RunList(sorted(runs.values(), key=lambda r: r.get("updated_at", 0), reverse=True))
