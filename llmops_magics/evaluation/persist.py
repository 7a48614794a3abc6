"""Recording an eval: the ``eval`` artifact with its lineage, and its W&B run.

The artifact is a folder (``examples.jsonl``, ``summary.json``) whose content depends
only on the inputs and the answers, so re-running a cached eval returns the same
version. Its spec is the resolved arguments (plus the ``%eval`` line); its parents are
every input: the dataset version (``data``), models (``model``), adapters
(``adapter``), the deployment behind an endpoint of this registry (``deployment``),
prompt versions (``prompt``), the judge's prompt and model (``judge_prompt``,
``judge_model``). The W&B run gets the spec as config, a table of
examples, a table of the eval's trace (its spans, ``traces``), the summary metrics, and the
artifact; it is queued, never awaited.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..context.workspaces import Workspace, current
from ..governance.filters import wandb_rows  # examples reach W&B with personal data redacted
from ..ops.catalog import Call
from ..ops.evaluate import EvalSpec
from ..recording.publish import publish
from ..store import Artifact
from ..store.refs import safe_name
from ..tracing.wandb_table import log_trace_table
from .results import EvalResult, MetricColumn, comparison_from_dict, load_records

__all__ = ["record", "get_eval", "eval_from_artifact", "default_name", "KIND"]

KIND = "eval"
TABLE_FIELDS = ("example", "target", "prompt", "output", "reference")


def _slug(text: str) -> str:
    text = re.sub(r"^[a-z]+(?:-[a-z]+)*://", "", text.strip())
    return safe_name(re.sub(r"/(\d+)$", r".\1", text), "target")


def default_name(data_name: str, targets: Sequence[Mapping[str, Any]]) -> str:
    """``qa-task-tiny-gpt2.1-vs-qa-lora.1``: the data set, then what tells the targets apart.

    Targets that share one model are named by their prompts (``qa-task-qa.1-vs-qa.2``);
    an endpoint that serves a deployment of this registry by the deployment, not its
    (often temporary) URL.
    """
    models = [str(t["model"]) for t in targets]
    by_prompt = len(targets) > 1 and len(set(models)) == 1
    parts = []
    for t in targets:
        text = str(t["prompt"] if by_prompt else t.get("deployment") or t["model"])
        parts.append(_slug(Path(text).name if text.startswith("/") else text))
    name = f"{data_name}-" + "-vs-".join(parts)
    return name[:128].rstrip("-._")


def _dedupe(inputs: Sequence[tuple[Artifact, str]]) -> list[tuple[Artifact, str]]:
    seen, out = set(), []
    for art, rel in inputs:
        if (art.id, rel) not in seen:
            seen.add((art.id, rel))
            out.append((art, rel))
    return out


def record(
    result: EvalResult,
    call: Call,
    *,
    spec: EvalSpec,
    inputs: Sequence[tuple[Artifact, str]],
    name: str | None = None,
) -> EvalResult:
    """Publish the eval (its folder, metadata, spec and lineage) and log it into an eval run."""
    ws = call.ws
    data_name = result.data.split("://", 1)[-1].rsplit("/", 1)[0]
    name = name or default_name(data_name, result.targets)
    inputs = _dedupe(inputs)
    metadata = {
        "data": result.data,
        "split": result.split,
        "targets": result.targets,
        "metrics": [c.name for c in result.columns],
        "summary": result.summary,
        "verdicts": result.verdicts,
        "regressions": [c.verdict for c in result.regressions],
        "consistency": result.mismatches,
        "num_examples": result.summary[result.targets[0]["label"]]["n"],
        "cache_hits": result.cache_hits,
        "seconds": round(result.seconds, 3),
    }
    run = ws.recorder.start_run(job_type="eval", name=name, config={**call.record(spec), "llmops_name": name})
    with tempfile.TemporaryDirectory(dir=ws.registry.home / "tmp") as tmp:
        folder = Path(tmp)
        for fname, data in result.content().items():
            (folder / fname).write_bytes(data)
        saved = publish(
            ws,
            KIND,
            name,
            spec=spec,
            call=call,
            path=folder,
            metadata=metadata,
            parents=inputs,
            run=run,
            mirror_to_wandb=True,
        )
    result.artifact, result.created = saved.artifact, saved.created
    if run is not None:
        cols = [*TABLE_FIELDS, *(c.name for c in result.columns)]
        run.log_table("examples", cols, wandb_rows(cols, [[r.get(c) for c in cols] for r in result.records]))
        log_trace_table(run, ws, rows_filter=wandb_rows)  # the eval's spans (generations, judge calls)
        run.summary({**result.flat_summary(), "llmops_ref": saved.artifact.ref})
        run.finish(exit_code=1 if result.regressions else 0)
        result._run = run
    return result


def get_eval(ref: str, *, workspace: Workspace | None = None) -> EvalResult:
    """A recorded eval (``"eval://name/3"``, ``"name@baseline"``) with its records and comparisons."""
    ws = workspace or current()
    return eval_from_artifact(ws.registry, ws.registry.resolve(ref, KIND))


def eval_from_artifact(reg: Any, art: Artifact) -> EvalResult:
    """The ``EvalResult`` an eval version stores (its ``summary.json`` and ``examples.jsonl``)."""
    import json

    folder = reg.checkout(art)
    summary = json.loads((folder / "summary.json").read_text())
    return EvalResult(
        targets=summary["targets"],
        data=summary["data"],
        split=summary["split"],
        reference_column=summary["reference_column"],
        columns=[MetricColumn(**c) for c in summary["columns"]],
        records=load_records((folder / "examples.jsonl").read_text()),
        summary=summary["summary"],
        comparisons=[comparison_from_dict(c) for c in summary["comparisons"]],
        mismatches=summary["mismatches"],
        seconds=float(art.metadata.get("seconds", 0.0)),
        artifact=art,
        created=None,
    )
