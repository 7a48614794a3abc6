"""Running a monitor (``ops/monitor.py`` is the front): read the window, make the checks, store the verdicts.

One run reads the deployment's request log between ``now - window`` and now, makes the
check groups asked for and publishes one ``monitor`` version named like the deployment,
linked to the deployment version (``monitors``), its reference data set (``reference``)
and the eval baseline (``baseline``) when the quality check used one. The verdicts ride
in the version's metadata too (``values``), so a history plot reads no blobs.

Inputs are compared with the reference data rendered as the server renders it
(``reference.reference_texts``). Texts are sampled, seeded, to bounded sizes
(``CLASSIFIER_SAMPLES`` per side for the domain classifier, ``EMBED_SAMPLES`` for MiniLM,
whose reference embeddings are kept per process): the cost of a run stays flat however
busy the deployment was. Output lengths (completion tokens) are compared with the
requests before the window, because a model's answers have no reference in training data.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import JobCancelledError, LLMOpsError, ValidationError
from .checks import Check, classifier_check, embedding_check, length_check, skip, slo_checks, thresholds
from .report import MonitorReport
from .usage import cost_check, window_usage

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..ops.catalog import Call
    from ..ops.deploy import DeploySpec
    from ..ops.jobs import Job
    from ..ops.monitor import MonitorSpec

__all__ = ["run", "check_deployment", "KIND"]

KIND = "monitor"
CLASSIFIER_SAMPLES = 2000
EMBED_SAMPLES = 200
PREVIOUS_ROWS = 5000  # output lengths before the window: the newest this many requests


def run(spec: MonitorSpec, call: Call) -> MonitorReport | Job:
    """Run a ``MonitorSpec`` once, or (``every``) as a background job that repeats it."""
    if spec.every is not None:
        _logged(call.ws, spec.name)  # refused now, not as a message every round of the job
        return _repeat(spec, call)
    return check_deployment(spec, call)


def check_deployment(spec: MonitorSpec, call: Call, *, now: float | None = None) -> MonitorReport:
    """One monitor run; everything is checked before the log is read, nothing written until the end."""
    from ..context.home import project_config
    from ..ops.monitor import _duration, seconds
    from ..serving.requestlog import read_requests

    ws = call.ws
    state, deployed = _logged(ws, spec.name)
    config = project_config().get("monitor") or {}
    limits = thresholds(spec.thresholds, config)
    window = spec.window or _duration(config.get("window", "1h"))
    end = time.time() if now is None else now
    start = end - seconds(window)
    groups = set(spec.checks)
    baseline = _baseline(ws, spec, state) if "quality" in groups else None
    db = state["monitor_db"]
    rows = read_requests(db, since=start, until=end, with_text=bool(groups & {"drift", "quality"}))
    checks: list[Check] = []
    usage = window_usage(rows, deployed.target)  # tokens and dollars, whichever checks were asked for
    if "slo" in groups:
        up_since = min([float(state.get("started_at") or start), *(r["ts"] for r in rows[:1])])
        checks += slo_checks(rows, span_s=end - max(start, up_since), limits=limits)
        checks.append(cost_check(usage, limits))
    if "drift" in groups:
        previous = read_requests(db, until=start, limit=PREVIOUS_ROWS)
        checks += drift_checks(ws, deployed, rows, previous, limits, seed=spec.seed)
    if "quality" in groups:
        from .quality import quality_check

        checks.append(quality_check(ws, state, rows, baseline, limits, sample=spec.sample, seed=spec.seed))
    report = MonitorReport(
        spec.name,
        state.get("ref"),
        {"start": start, "end": end, "seconds": end - start},
        checks,
        limits,
        deployed.reference_data,
        baseline.ref if baseline is not None else None,
        usage=usage,
    )
    resolved = spec.replace(window=window, thresholds=limits, baseline=report.baseline)
    report.artifact = _save(ws, resolved, call, report)
    return report


def _logged(ws: Workspace, name: str) -> tuple[dict[str, Any], DeploySpec]:
    """The deployment's state and spec; a deployment without a request log is refused (nothing to check)."""
    from ..ops.deploy import DeploySpec
    from ..serving.records import load_config, require_state
    from ..serving.requestlog import no_log_message

    state = require_state(ws.registry, name)
    deployed = DeploySpec.from_dict(load_config(state)["spec"])
    if not deployed.request_log:
        raise ValidationError(no_log_message(name, "there is nothing to monitor"))
    return state, deployed


def _baseline(ws: Workspace, spec: MonitorSpec, state: dict[str, Any]) -> Any:
    from .quality import find_baseline

    return find_baseline(ws, spec.baseline, state)


def _ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if (r.get("status") or 0) < 400]


def drift_checks(
    ws: Workspace,
    deployed: DeploySpec,
    rows: list[dict[str, Any]],
    previous: list[dict[str, Any]],
    limits: dict[str, float],
    *,
    seed: int = 0,
) -> list[Check]:
    """Input length, the domain classifier and MMD against the reference data; output length against the past."""
    from .drift import MIN_PER_SIDE, subsample
    from .reference import embed_cached, reference_texts

    live = _ok(rows)
    need = max(MIN_PER_SIDE, int(limits["min_requests"]))
    few = f"{len(live)} successful request(s) in the window, fewer than {need}"
    names = ("input_length", "input_drift_classifier", "input_drift_embedding")
    out: list[Check] = []
    if not deployed.reference_data:
        out += [skip(n, "no reference data: deploy with reference_data=DATASET_REF") for n in names]
    elif len(live) < need:
        out += [skip(n, few) for n in names]
    else:
        ref = reference_texts(ws, deployed, CLASSIFIER_SAMPLES)
        lengths = [int(r["input_chars"]) for r in live if r.get("input_chars") is not None]
        out.append(_guard("input_length", lambda: length_check(
            "input_length", [len(t) for t in ref], lengths, limits, unit="chars", against=deployed.reference_data)))  # fmt: skip
        texts = [r["input_text"] for r in live if r.get("input_text")]
        if len(texts) < need:
            why = (
                "input texts are not logged: deploy with log_text=True"
                if not texts
                else few.replace("request", "logged text")
            )
            out += [skip(n, why) for n in names[1:]]
        else:
            out.append(
                _guard(
                    names[1], lambda: classifier_check(ref, texts, limits, seed=seed, max_samples=CLASSIFIER_SAMPLES)
                )
            )

            def embedded() -> Check:
                key = (str(ws.registry.home), deployed.reference_data, deployed.prompt, deployed.target, seed)
                folder = ws.registry.home / "cache" / "embeddings"
                ref_emb = embed_cached(subsample(ref, EMBED_SAMPLES, seed), key=key, folder=folder)
                live_emb = embed_cached(subsample(texts, EMBED_SAMPLES, seed + 1))
                return embedding_check(ref_emb, live_emb, limits, seed=seed)

            out.append(_guard(names[2], embedded))
    before = [int(r["completion_tokens"]) for r in _ok(previous) if r.get("completion_tokens") is not None]
    now = [int(r["completion_tokens"]) for r in live if r.get("completion_tokens") is not None]
    if len(before) < need or len(now) < need:
        out.append(skip("output_length", f"{len(before)} request(s) before the window and {len(now)} in it; "
                        f"comparing output lengths needs {need} of each"))  # fmt: skip
    else:
        out.append(_guard("output_length", lambda: length_check(
            "output_length", before, now, limits, unit="tokens", against="requests before the window")))  # fmt: skip
    return out


def _guard(name: str, make) -> Check:
    """A check that cannot be made on this data (every text empty, say) is skipped with the reason."""
    try:
        return make()
    except ValidationError as exc:
        return skip(name, str(exc))


def _save(ws: Workspace, spec: MonitorSpec, call: Call, report: MonitorReport):
    from ..recording.publish import publish

    parents: list[tuple[Any, str]] = []
    if report.deployment:
        parents.append((report.deployment, "monitors"))
    if report.reference:
        parents.append((report.reference, "reference"))
    if report.baseline:
        parents.append((report.baseline, "baseline"))
    values = {c.name: {"status": c.status, "value": c.value, "warn": c.warn, "fail": c.fail} for c in report.checks}
    meta = {
        "deployment": report.name,
        "status": report.status,
        "failed": report.failures,
        "window": report.window,
        "values": values,
        "usage": report.usage,
        "filename": "monitor.json",
    }
    data = json.dumps(report.to_dict(), sort_keys=True, default=list).encode()
    run = ws.recorder.start_run(job_type="monitor", name=f"monitor-{report.name}", config=call.record(spec))
    saved = publish(ws, KIND, report.name, spec=spec, call=call, data=data, metadata=meta, parents=parents, run=run,
                    mirror_to_wandb=True)  # fmt: skip
    if run is not None:
        from ..governance.filters import wandb_rows
        from ..tracing.wandb_table import log_window_table

        window = report.window  # the deployment's server spans in it, as the eval's run holds its spans
        log_window_table(
            run, ws, f"deployment://{report.name}/", window["start"], window["end"], rows_filter=wandb_rows
        )
        run.summary({**report.flat(), "llmops_ref": saved.artifact.ref})
        run.finish(exit_code=1 if report.failed else 0)
        report._run = run
    return saved.artifact


def _repeat(spec: MonitorSpec, call: Call) -> Job:
    """Check now, then every ``spec.every`` until cancelled; each round's report is an event."""
    from ..context.provenance import collect
    from ..ops.jobs import Job
    from ..ops.monitor import seconds

    interval = seconds(spec.every)
    once = spec.replace(every=None)
    call = replace(call, workspace=call.ws, source=collect(call.source))  # the cell that started it, not a later one

    def work(ctx) -> MonitorReport | None:
        last, rounds = None, 0
        while not ctx.cancelled:
            began = time.monotonic()
            rounds += 1
            try:
                last = check_deployment(once, call)
                ctx.emit({"type": "progress", "round": rounds, "status": last.status, "ref": last.ref,
                          "failed": last.failures})  # fmt: skip
                ctx.emit({"type": "log", "round": rounds, "status": last.status, "failed": ",".join(last.failures)})
            except LLMOpsError as exc:  # a deployment stopped for a while must not end the watch
                ctx.emit({"type": "message", "text": f"monitor {spec.name}: {exc}"})
            while not ctx.cancelled and time.monotonic() - began < interval:
                time.sleep(min(0.2, interval))
        raise JobCancelledError(f"monitor {spec.name} stopped after {rounds} round(s)")

    return Job(work, name=f"monitor {spec.name} every {spec.every}", kind="monitor").start()
