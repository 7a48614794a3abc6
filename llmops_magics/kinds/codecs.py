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

    def load(self, art, ws):
        from ..datasets import get_dataset

        return get_dataset(art.ref, workspace=ws)

    def details(self, art, reg) -> dict[str, Any]:
        meta = thaw(art.metadata)
        return {k: meta.get(k) for k in ("splits", "schema", "num_rows", "preview", "description")}


class EvalCodec(Codec):
    kind = "eval"
    getter = "get_eval"
    show_magic = "%eval --show {ref}"

    def load(self, art, ws):
        from ..evaluation import get_eval

        return get_eval(art.ref, workspace=ws)

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

    def load(self, art, ws):
        from ..monitoring.report import get_monitor

        return get_monitor(art.ref, workspace=ws)

    def details(self, art, reg) -> dict[str, Any]:
        meta = thaw(art.metadata)
        return {k: meta.get(k) for k in ("deployment", "status", "failed", "window", "values")}


class PiiScanCodec(Codec):
    kind = "pii-scan"
    getter = "get_pii_scan"

    def load(self, art, ws):
        from ..governance.scan import get_pii_scan

        return get_pii_scan(art.ref, workspace=ws)

    def details(self, art, reg) -> dict[str, Any]:
        meta = thaw(art.metadata)
        return {k: meta.get(k) for k in ("source", "model", "total", "counts", "texts_scanned")}


class FairnessCodec(Codec):
    kind = "fairness"
    getter = "get_fairness"

    def load(self, art, ws):
        from ..governance.fairness_report import get_fairness

        return get_fairness(art.ref, workspace=ws)

    def details(self, art, reg) -> dict[str, Any]:
        meta = thaw(art.metadata)
        return {k: meta.get(k) for k in ("target", "dataset", "metric", "differences")}


class PipelineCodec(Codec):
    kind = "pipeline"
    getter = "get_pipeline"

    def load(self, art, ws):
        from ..retraining.pipeline import get_pipeline

        return get_pipeline(art.ref, workspace=ws)

    def details(self, art, reg) -> dict[str, Any]:
        meta = thaw(art.metadata)
        return {k: meta.get(k) for k in ("deployment", "started_from", "decision", "reason", "steps")}


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
        Codec(),
    )
}
