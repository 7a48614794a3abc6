"""Registering what a fine-tune made, with the metadata evaluation and serving rely on.

The adapter contract (shared with ``%eval`` and ``%deploy``): an ``adapter``
artifact whose folder is PEFT's ``save_pretrained`` output plus the tokenizer
files; metadata ``base_model``, ``base_digest``, ``tokenizer_digest``,
``chat_template``, ``prompt``, ``prompt_template``, ``target_column``, ``spec``,
``seed``, ``metrics``, ``wandb_run_id``, ``libraries``; edges base → adapter
``base``, train data → ``train_data``, eval data → ``eval_data``, prompt →
``prompt``. A full fine-tune registers a ``model`` with the same metadata and
edges; ``merge`` adds a ``model`` with an edge adapter → model ``merged_from``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context.provenance import library_versions
from ..context.workspaces import Workspace
from ..ops.catalog import Call
from ..ops.finetune import FinetuneSpec
from ..recording.base import Run
from ..recording.publish import publish
from ..store import Artifact
from .data import render_prompt_text, target_prefix
from .spec import ResolvedRun

__all__ = ["FinetuneResult", "register_outputs", "stored_spec"]


@dataclass(frozen=True)
class FinetuneResult:
    """What a finished fine-tune produced: the adapter (or model), the merged model, the metrics."""

    artifact: Artifact
    merged: Artifact | None
    metrics: Mapping[str, Any]
    run_id: str
    wandb_run_id: str | None = None
    created: bool = True
    ranks: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    ref = property(lambda self: self.artifact.ref)
    kind = property(lambda self: self.artifact.kind)

    def load(self, merged: bool = False, **kwargs: Any):
        """The fine-tuned model, ready for ``llmops_magics.models.generate`` (see ``load_model``)."""
        from ..models import load_model

        target = self.merged if merged and self.merged is not None else self.artifact
        return load_model(target, **kwargs)

    def _summary(self) -> dict[str, Any]:
        m = self.metrics
        out: dict[str, Any] = {self.artifact.kind: self.ref, "digest": self.artifact.short_digest}
        if self.merged is not None:
            out["merged"] = self.merged.ref
        for key in ("train_loss", "eval_loss", "global_step", "train_runtime", "train_steps_per_second"):
            if m.get(key) is not None:
                out[key] = round(m[key], 4) if isinstance(m[key], float) else m[key]
        out["run"] = self.run_id
        if self.wandb_run_id:
            out["wandb run"] = self.wandb_run_id
        if not self.created:
            out["status"] = "unchanged (identical weights already registered)"
        return out

    def __str__(self) -> str:
        return "  ".join(f"{k}: {v}" for k, v in self._summary().items())

    def charts(self) -> list:
        """The train and eval loss by step (``metadata["loss_curve"]``, kept at registration)."""
        from ..display.result_charts import loss_charts
        from ..store.records import thaw

        return loss_charts(thaw(self.artifact.metadata.get("loss_curve")))

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.charts import with_charts
        from ..display.html import kv_html, mimebundle

        bundle = mimebundle(str(self), kv_html(self._summary(), title="fine-tune"), {"ref": self.ref})
        return with_charts(bundle, self.charts())


def _metadata(resolved: ResolvedRun, folder: Path, outcome: Mapping[str, Any], wandb_run_id: str | None):
    from ..models.loading import tokenizer_digest

    rows = resolved.train_file.read_text(encoding="utf-8").splitlines()
    prefix = " "
    if rows and resolved.prompt_format == "text":
        import json

        first = json.loads(rows[0])
        prefix = target_prefix(render_prompt_text(resolved.template, resolved.prompt_params, first, "train"))
    spec = resolved.spec
    return {
        "base_model": resolved.base_ref,
        "base_digest": resolved.base_digest,
        "base_tokenizer_digest": resolved.tokenizer_digest,
        "tokenizer_digest": tokenizer_digest(folder),
        "chat_template": resolved.chat_template,
        "prompt": resolved.prompt.ref if resolved.prompt is not None else None,
        "prompt_template": resolved.template,
        "prompt_format": resolved.prompt_format,
        "prompt_params": resolved.prompt_params,
        "target_column": resolved.target_column,
        "target_prefix": prefix,
        "train_data": resolved.train.ref,
        "eval_data": resolved.eval.ref if resolved.eval is not None else None,
        "method": spec["method"],
        "lora_modules": _lora_modules(folder),
        "defaults_from": spec.get("defaults_from"),
        "seed": spec["seed"],
        "metrics": dict(outcome.get("metrics", {})),
        "loss_curve": outcome.get("loss_curve") or None,
        "wandb_run_id": wandb_run_id,
        "run_id": outcome.get("run_id"),
        "run_name": resolved.title,
        "libraries": library_versions(),
    }


def _lora_modules(folder: Path) -> list[str] | None:
    """The modules LoRA was put on, as PEFT resolved them for this architecture (``all-linear`` by default)."""
    import json

    config = folder / "adapter_config.json"
    if not config.is_file():
        return None
    modules = json.loads(config.read_text()).get("target_modules")
    if isinstance(modules, str):
        return [modules]  # a regular expression, kept as written
    return sorted({m.rsplit(".", 1)[-1] for m in modules}) if isinstance(modules, list) else None  # leaf names


def stored_spec(resolved: ResolvedRun) -> FinetuneSpec:
    """The resolved run as a spec: every value filled in, every reference pinned (what replay repeats)."""
    names = {o.name for o in FinetuneSpec.options()}
    return FinetuneSpec(**{k: v for k, v in resolved.spec.items() if k in names})


def register_outputs(
    ws: Workspace,
    resolved: ResolvedRun,
    outcome: Mapping[str, Any],
    *,
    run_id: str,
    wandb_run_id: str | None,
    call: Call,
    run: Run | None = None,
) -> tuple[Artifact, Artifact | None, bool]:
    """Publish the adapter/model (and merged model) with metadata and lineage; returns them and ``created``.

    ``call.source`` is the provenance captured when the run was started (the cell that started
    it, not whichever cell is running when training ends). Both are logged into the run.
    """
    folder = Path(outcome["output_dir"])
    meta = _metadata(resolved, folder, {**outcome, "run_id": run_id}, wandb_run_id)
    spec = stored_spec(resolved)
    kind = "adapter" if resolved.spec["method"] == "lora" else "model"
    saved = publish(
        ws,
        kind,
        resolved.name,
        spec=spec,
        call=call,
        path=folder,
        metadata=meta,
        aliases=resolved.aliases,
        parents=resolved.inputs,
        run=run,
        mirror_to_wandb=True,
    )
    merged = None
    if outcome.get("merged_dir"):
        from ..models.loading import tokenizer_digest

        merged_dir = Path(outcome["merged_dir"])
        merged_meta = {**meta, "merged_from": saved.artifact.ref, "tokenizer_digest": tokenizer_digest(merged_dir)}
        merged = publish(
            ws,
            "model",
            f"{resolved.name}-merged",
            spec=spec,
            call=call,
            path=merged_dir,
            metadata=merged_meta,
            parents=[(saved.artifact, "merged_from")],
            run=run,
            mirror_to_wandb=True,
            record_extra={"output": "merged"},
        ).artifact
    return saved.artifact, merged, saved.created
