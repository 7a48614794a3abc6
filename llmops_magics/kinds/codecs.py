"""The codecs of the kinds whose content means more than bytes, and the table of all of them."""

from __future__ import annotations

from typing import Any

from ..store.records import thaw
from .base import Codec
from .prompt import PromptCodec

__all__ = ["CODECS"]


class DatasetCodec(Codec):
    kind = "dataset"
    getter = "get_dataset"
    show_magic = "%dataset show {ref}"
    detail_keys = ("splits", "schema", "num_rows", "preview", "description")


class EvalCodec(Codec):
    kind = "eval"
    getter = "get_eval"
    show_magic = "%eval --show {ref}"

    def details(self, art, reg) -> dict[str, Any]:
        summary = thaw(art.metadata.get("summary"))
        return {"summary": summary if isinstance(summary, dict) else {}}


class DeploymentCodec(Codec):
    kind = "deployment"

    def details(self, art, reg) -> dict[str, Any]:
        from ..serving.liveness import describe

        record = reg.get_state("deployments", art.name)
        return {"deployment": describe(record) if isinstance(record, dict) else None}


class ModelCodec(Codec):
    kind = "model"

    def details(self, art, reg) -> dict[str, Any]:
        meta = thaw(art.metadata)
        keys = ("architecture", "parameters", "context_length", "license", "source_path", "base_model", "metrics")
        return {k: meta[k] for k in keys if meta.get(k) is not None}


class AdapterCodec(ModelCodec):
    kind = "adapter"


class MonitorCodec(Codec):
    kind = "monitor"
    getter = "get_monitor"
    detail_keys = ("deployment", "status", "failed", "window", "values")


class PiiScanCodec(Codec):
    kind = "pii-scan"
    getter = "get_pii_scan"
    detail_keys = ("source", "model", "total", "counts", "texts_scanned")


class FairnessCodec(Codec):
    kind = "fairness"
    getter = "get_fairness"
    detail_keys = ("target", "dataset", "metric", "differences")


class CardCodec(Codec):
    kind = "card"
    getter = "get_card"
    detail_keys = ("of", "base_model", "license", "intended_use", "limitations", "evals", "fairness", "pii_scanned")


class PipelineCodec(Codec):
    kind = "pipeline"
    getter = "get_pipeline"
    detail_keys = ("deployment", "started_from", "decision", "reason", "steps")


CODECS: dict[str, Codec] = {
    c.kind: c
    for c in (
        PromptCodec(),
        DatasetCodec(),
        EvalCodec(),
        DeploymentCodec(),
        ModelCodec(),
        AdapterCodec(),
        MonitorCodec(),
        PiiScanCodec(),
        FairnessCodec(),
        PipelineCodec(),
        CardCodec(),
        Codec(),
    )
}
