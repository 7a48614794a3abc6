"""Running a ``RetrainSpec`` (``ops/retrain.py`` is the front and states the rules).

``run`` checks everything a person could have got wrong (the deployment, its adapter and
that adapter's stored fine-tune spec, the monitor, the data, the options of the steps)
before the job starts, so bad input is one line at once. The job then makes each step
through the operation that owns it (``from-log``, ``finetune``, ``eval``, ``ab``, and
``serving.control`` for the canary, promotion and rollback), so every step leaves the
artifact that operation always leaves; the ``pipeline`` version is saved last, whatever the
outcome. A canary the pipeline started is never left behind: a failure or a cancel after it
was set rolls it back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import DeploymentError, JobCancelledError, JobTimeoutError, LLMOpsError, ValidationError
from ..store.records import thaw
from .pipeline import Pipeline, Step, save_pipeline

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..datasets import DatasetVersion
    from ..ops.ab import AbSpec
    from ..ops.catalog import Call
    from ..ops.finetune import FinetuneSpec
    from ..ops.jobs import Job, JobContext
    from ..ops.retrain import RetrainSpec
    from ..store import Artifact
    from .combine import Combined

__all__ = ["run", "Plan", "make_plan"]


@dataclass(frozen=True)
class Plan:
    """Everything the steps need, resolved and checked before anything is written."""

    name: str
    deployment: Artifact  # the version serving now
    adapter: Artifact  # its primary, the production version
    finetune: FinetuneSpec  # the adapter's own spec, with --train applied
    old: DatasetVersion  # the data it was trained on
    old_validation_split: str | None
    new: DatasetVersion | None  # --data; None: from the monitor's deployment's log
    monitor: Artifact | None
    gate_data: str | None
    ab: AbSpec
    template: str
    params: dict[str, Any]
    target_column: str


def make_plan(ws: Workspace, spec: RetrainSpec) -> Plan:
    from ..datasets import get_dataset
    from ..evaluation.metrics import parse_metric_specs
    from ..monitoring.report import get_monitor
    from ..ops.ab import AbSpec
    from ..ops.finetune import FinetuneSpec
    from ..serving.feedback import traffic_source
    from ..serving.liveness import liveness
    from ..serving.records import require_state
    from ..serving.requestlog import no_log_message

    reg = ws.registry
    monitor, name = None, spec.name
    if spec.on_failure is not None:
        monitor = reg.resolve(spec.on_failure, "monitor")
        report = get_monitor(monitor.ref, workspace=ws)
        if not report.failed:
            raise ValidationError(
                f"{monitor.ref} did not fail (its status is {report.status}); --on-failure starts from a failing monitor"
            )
        if name is not None and name != report.name:
            raise ValidationError(f"{monitor.ref} checked deployment {report.name!r}, not {name!r}")
        name = report.name
    if name is None:
        raise ValidationError("retrain needs a deployment name, or --on-failure MONITOR_REF to take it from")
    state = require_state(reg, name)
    if state.get("request_log") is False:  # refused now, not at its A/B step
        raise ValidationError(no_log_message(name, "a retrain's canary would have no logged traffic to be judged on"))
    if state.get("canary"):
        arm = state["canary"]
        raise ValidationError(
            f"deployment {name!r} already has a canary ({arm.get('target')} at {arm.get('weight'):g}%); "
            f"promote or roll it back first (%deploy promote|rollback {name})"
        )
    adapter = reg.resolve(state["target"])
    if adapter.kind != "adapter":
        raise ValidationError(
            f"deployment {name!r} serves {adapter.ref} (a {adapter.kind}); retrain fine-tunes again from "
            "the deployed adapter's spec, so the deployment must serve an adapter"
        )
    stored = thaw(adapter.spec or {})
    if stored.get("op") != "finetune":
        raise ValidationError(
            f"{adapter.ref} was not made by %finetune (it has no stored fine-tune spec to retrain from)"
        )
    finetune = FinetuneSpec.from_dict(stored["args"], origin=adapter.ref).replace(**dict(spec.train or {}))
    old = get_dataset(finetune.data, workspace=ws)
    old_eval = finetune.eval_data in (None, finetune.data)
    old_validation = (finetune.eval_split or "validation") if old_eval else None
    new = get_dataset(spec.data, workspace=ws) if spec.data is not None else None
    if new is None and monitor is None:
        raise ValidationError("retrain needs new rows: data=/--data DATASET, or on_failure=/--on-failure MONITOR_REF")
    gate_data = reg.resolve(spec.gate_data, "dataset").ref if spec.gate_data is not None else None
    if spec.target_metric not in spec.metrics:
        raise ValidationError(
            f"target_metric {spec.target_metric!r} must be one of the gate metrics ({', '.join(spec.metrics)})"
        )
    parse_metric_specs(spec.metrics)
    held_out = spec.holdout > 0 or (new is not None and "validation" in new.splits) or old_validation in old.splits
    if gate_data is None and not held_out:
        raise ValidationError("nothing is held out for the gate: give --gate-data DATASET or a --holdout above 0")
    live = liveness(state).state
    if live != "running":
        raise DeploymentError(f"deployment {name!r} is {live}; a retrain's canary needs it running")
    if new is None:
        traffic_source(ws, name).require_text("its corrected answers cannot become training rows")
    meta = adapter.metadata
    if not meta.get("prompt_template"):
        raise ValidationError(
            f"{adapter.ref} records no prompt template, so new rows cannot be matched to its questions"
        )
    return Plan(
        name, reg.resolve(state["ref"]), adapter, finetune, old, old_validation, new, monitor, gate_data,
        AbSpec(name=name, **dict(spec.ab or {})), meta["prompt_template"], dict(meta.get("prompt_params") or {}),
        meta.get("target_column") or finetune.target_column or "answer",
    )  # fmt: skip


def run(spec: RetrainSpec, call: Call) -> Job:
    """Check, then run the pipeline as a job whose result is the ``Pipeline``."""
    from ..context.provenance import collect
    from ..ops.jobs import Job

    ws = call.ws
    plan = make_plan(ws, spec)
    resolved = spec.replace(
        name=plan.name,
        data=plan.new.ref if plan.new is not None else None,
        on_failure=plan.monitor.ref if plan.monitor is not None else None,
        gate_data=plan.gate_data,
    )
    call = replace(call, workspace=ws, source=collect(call.source))  # the cell that started it
    return Job(
        lambda ctx: _Runner(plan, resolved, call, ctx).run(), name=f"retrain {plan.name}", kind="retrain"
    ).start()


def _since(began: float) -> float:
    return round(time.monotonic() - began, 3)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, LLMOpsError) else f"{type(exc).__name__}: {text}"


class _Runner:
    """One pipeline run: the steps in order, each recorded as it ends."""

    def __init__(self, plan: Plan, spec: RetrainSpec, call: Call, ctx: JobContext) -> None:
        from ..ops.catalog import Call

        self.plan, self.spec, self.call, self.ctx = plan, spec, call, ctx
        self.ws = call.ws
        self.sub = Call(workspace=self.ws, source=call.source)  # what each step's operation is called with
        self.steps: list[Step] = []
        self.canary_open = False  # a canary this run set is serving and not yet promoted or rolled back

    # ------------------------------------------------------------------ the pipeline

    def run(self) -> Pipeline:
        try:
            decision, reason = self._pipeline()
        except BaseException as exc:
            cancelled = isinstance(exc, JobCancelledError)
            self._close_canary("the retrain was cancelled" if cancelled else f"the retrain failed: {_one_line(exc)}")
            with contextlib.suppress(Exception):  # the error that stopped the pipeline is the one to raise
                self._save("cancelled" if cancelled else "failed", _one_line(exc))
            raise
        return self._save(decision, reason)

    def _pipeline(self) -> tuple[str, str]:
        new = self._do("new data", self._new_data)
        combined = self._do("combine", lambda: self._combine(new))
        candidate = self._do("finetune", lambda: self._finetune(combined))
        verdict, gate_ref = self._do("gate", lambda: self._gate(combined, candidate))
        if not verdict.passed:
            return "stopped at the gate", verdict.reason
        self._do("canary", lambda: self._canary(candidate, gate_ref))
        action, reason, test = self._do("ab", self._ab)
        if action == "promote":
            self._do("promote", lambda: self._settle(True, gate_ref, test.ref, reason))
            return "promoted", reason
        self._do("rollback", lambda: self._settle(False, gate_ref, test.ref, reason))
        return "rolled back", reason

    def _save(self, decision: str, reason: str) -> Pipeline:
        p = self.plan
        pipeline = Pipeline(p.name, p.deployment.ref, decision, reason, list(self.steps),
                            p.monitor.ref if p.monitor is not None else None)  # fmt: skip
        self.ctx.emit({"type": "log", "decision": decision, "reason": reason})
        return save_pipeline(self.ws, self.spec, self.call, pipeline)

    def _do(self, name: str, work: Callable[[], tuple[Any, str | None, str, str]]) -> Any:
        """Run one step; ``work`` returns ``(value, artifact ref, status, reason)``. A step that raises is recorded."""
        if self.ctx.cancelled:
            raise JobCancelledError(f"retrain {self.plan.name} cancelled before {name}")
        self.ctx.emit({"type": "progress", "stage": name})
        began = time.monotonic()
        try:
            value, ref, status, reason = work()
        except JobCancelledError:
            self.steps.append(Step(name, "cancelled", None, _since(began)))
            raise
        except BaseException as exc:
            self.steps.append(Step(name, "failed", None, _since(began), _one_line(exc)))
            raise
        self.steps.append(Step(name, status, ref, _since(began), reason))
        self.ctx.emit({"type": "log", "step": name, "status": status, "ref": ref or ""})
        return value

    def _wait(self, job: Job, stage: str) -> Any:
        """A step's own job, its progress shown as this one's, cancelled with it."""
        forward = lambda _job, event: (
            self.ctx.emit({**event, "stage": stage}) if event.get("type") == "progress" else None
        )
        remove = job.add_listener(forward, replay=False)
        try:
            while True:
                if self.ctx.cancelled:
                    job.cancel(wait=120)
                    raise JobCancelledError(f"retrain {self.plan.name} cancelled during {stage}")
                try:
                    return job.wait(0.25)
                except JobTimeoutError:
                    continue
        finally:
            remove()

    # ------------------------------------------------------------------ the steps

    def _new_data(self):
        p = self.plan
        if p.new is not None:
            return p.new, p.new.ref, "given", f"{p.new.num_rows} rows"
        from ..ops.fromlog import FROM_LOG, FromLogSpec

        window = p.monitor.metadata.get("window") or {}
        since = window.get("start")  # the traffic the failing monitor saw, and after: not older runs' corrections
        made = FROM_LOG.run(
            FromLogSpec(deployment=p.name, name=f"{p.name}-corrections", where={"feedback": "corrected"},
                        with_corrections=True, since=float(since) if isinstance(since, int | float) else None,
                        description=f"corrected answers after {p.monitor.ref} failed"),
            self.sub,
        )  # fmt: skip
        return made, made.ref, "done", f"{made.num_rows} corrected answers from the request log of {p.name}"

    def _combine(self, new: DatasetVersion):
        from .combine import combine

        p, s = self.plan, self.spec
        parents: list[tuple[Any, str]] = [(p.deployment, "retrains")]
        if p.monitor is not None:
            parents.append((p.monitor, "monitor"))
        combined = combine(
            self.sub, name=f"{p.name}-retrain", rule=s.combine, old=p.old, old_train_split=p.finetune.train_split or "train",
            old_validation_split=p.old_validation_split, new=new, holdout=s.holdout, seed=s.seed, template=p.template,
            params=p.params, target_column=p.target_column, parents=parents,
        )  # fmt: skip
        if p.gate_data is None and not combined.has_validation:
            raise ValidationError(f"{combined.ref} holds no rows out for the gate; give --gate-data or more new rows")
        return combined, combined.ref, "done", combined.describe()

    def _finetune(self, combined: Combined):
        from ..ops.finetune import FINETUNE

        ft = self.plan.finetune
        # an adapter evaluated on its own data's validation split is now evaluated on the held-out rows
        if self.plan.old_validation_split is not None:
            ft = ft.replace(eval_data=combined.ref if combined.has_validation else None,
                            eval_split="validation" if combined.has_validation else None)  # fmt: skip
        ft = ft.replace(data=combined.ref, train_split="train", aliases=(), resume=False)
        result = self._wait(FINETUNE.run(ft, self.sub), "finetune")
        art = result.artifact
        return art, art.ref, "done", f"{self.plan.adapter.ref}'s spec on {combined.ref}"

    def _gate(self, combined: Combined, candidate: Artifact):
        from ..ops.evaluate import EVAL, EvalSpec
        from .gate import judge_gate

        p, s = self.plan, self.spec
        spec = EvalSpec(
            target=(p.adapter.ref,), compare=(candidate.ref,), data=p.gate_data or combined.ref,
            split=None if p.gate_data else "validation", metrics=s.metrics, name=f"{p.name}-gate", **dict(s.gate or {}),
        )  # fmt: skip
        result = self._wait(EVAL.run(spec, self.sub), "gate")
        verdict = judge_gate(result, s.target_metric, s.min_gain)
        return (verdict, result.ref), result.ref, "passed" if verdict.passed else "failed", verdict.reason

    def _canary(self, candidate: Artifact, gate_ref: str):
        from ..serving.control import set_canary

        share = self.spec.canary
        handle = set_canary(self.plan.name, f"{candidate.ref}:{share:g}%", call=self.sub)
        self.canary_open = True
        self.ws.registry.add_edge(gate_ref, handle.artifact, "gate")
        return handle, handle.artifact.ref, "done", f"{candidate.ref} serves {share:g}% of the traffic"

    def _ab(self):
        from ..ops.ab import AB

        s = self.spec
        deadline = time.monotonic() + s.ab_timeout
        while True:
            self._sleep(min(s.ab_interval, max(0.0, deadline - time.monotonic())))
            test = AB.run(self.plan.ab, self.sub)
            a = test.analysis
            self.ctx.emit({"type": "progress", "stage": "ab", "users": sum(a.users.count(x) for x in ("primary", "canary")),
                           "verdict": a.verdict.code, "action": a.stop.action})  # fmt: skip
            if a.stop.stop:
                action = "promote" if a.stop.action == "promote" else "roll back"
                reason = f"A/B says {a.stop.action}: {a.stop.reason}; {a.verdict.text}"
                return (action, reason, test), test.ref, "passed" if action == "promote" else "failed", reason
            if time.monotonic() >= deadline:
                reason = f"no A/B decision within {s.ab_timeout:g}s ({a.stop.reason}); {a.verdict.text}"
                return ("roll back", reason, test), test.ref, "failed", reason

    def _settle(self, promote: bool, gate_ref: str, ab_ref: str, reason: str):
        from ..serving.control import promote_deployment, rollback_deployment

        reg = self.ws.registry
        handle = (promote_deployment if promote else rollback_deployment)(self.plan.name, call=self.sub)
        self.canary_open = False
        reg.add_edge(ab_ref, handle.artifact, "ab")
        if promote:
            reg.add_edge(gate_ref, handle.artifact, "gate")
            return handle, handle.artifact.ref, "done", f"{self.plan.name} serves the candidate only, as production"
        return handle, handle.artifact.ref, "done", reason

    # ------------------------------------------------------------------ helpers

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.ctx.cancelled:
                raise JobCancelledError(f"retrain {self.plan.name} cancelled during the A/B test")
            time.sleep(min(0.2, left))

    def _close_canary(self, reason: str) -> None:
        """Roll back a canary this run set and did not settle (it failed or was cancelled after setting it)."""
        if not self.canary_open:
            return
        from ..serving.control import rollback_deployment

        began = time.monotonic()
        try:
            handle = rollback_deployment(self.plan.name, call=self.sub)
        except Exception as exc:  # the original error is what the caller must see
            self.steps.append(Step("rollback", "failed", None, _since(began), _one_line(exc)))
            return
        self.canary_open = False
        self.steps.append(Step("rollback", "done", handle.artifact.ref, _since(began), reason))
