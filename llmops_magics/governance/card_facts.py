"""What a model card says, read from the registry's lineage and nothing else.

A card is only as honest as its sources: every fact here is read from a recorded version
(the adapter's metadata and stored spec, the versions its edges reach), and a fact that
lineage does not hold is left ``None`` for the card to print as "not recorded", never
guessed. The facts are plain JSON so they can be stored beside the card and shown by
the sidebar:

- ``base``: the version the adapter was trained on (``base`` edge / ``base_model``
  metadata), its digest, its folder here and its license;
- ``data``: the training and evaluation data (``train_data``, ``eval_data``, ``data``
  edges) with digests, row counts, what they were redacted from and their newest
  ``pii-scan`` (a ``scans`` edge from the dataset);
- ``hyperparameters`` and ``training_metrics``: the fine-tune's stored spec and metrics;
- ``evals``: every eval whose target is this version, per metric its mean over the
  examples with a 95% bootstrap interval recomputed from the stored per-example values;
- ``fairness``: every counterfactual report whose target is this version, per attribute
  and measure the largest gap between groups with its interval;
- ``wandb``: the run that trained it and where the version was mirrored.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..store.records import thaw

if TYPE_CHECKING:
    from ..store import Artifact, Registry

__all__ = ["subject", "gather", "base_of", "data_facts", "eval_facts", "fairness_facts", "DESCRIBED_KINDS"]

DESCRIBED_KINDS = ("adapter", "model")
DATA_RELATIONS = ("train_data", "eval_data", "data")
HYPERPARAMETERS = ("method", "r", "alpha", "dropout", "target_modules", "epochs", "max_steps", "lr", "batch_size",
                   "grad_accum", "max_length", "seed", "early_stopping", "target_column", "train_split",
                   "eval_split")  # fmt: skip
_NOT_HYPER = {"op", "data", "base", "eval_data", "prompt", "name", "aliases", "launcher", "nproc", "threads", "resume"}


def subject(reg: Registry, ref: str) -> Artifact:
    """The adapter or model ``ref`` names; anything else is refused in one line."""
    art = reg.resolve(ref)
    if art.kind not in DESCRIBED_KINDS:
        raise ValidationError(f"a model card describes an adapter or a model; {art.ref} is a {art.kind}")
    return art


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _newest(arts: list[Artifact]) -> Artifact | None:
    return max(arts, key=lambda a: (a.created_at, a.id), default=None)


def _direct(reg: Registry, art: Artifact, kind: str) -> list[Artifact]:
    """Versions of ``kind`` made directly from ``art`` (one edge downstream), oldest first."""
    refs = {e.target for e in reg.downstream(art, depth=1) if e.target.startswith(f"{kind}://")}
    return sorted((reg.resolve(r) for r in refs), key=lambda a: (a.created_at, a.id))


def base_of(reg: Registry, art: Artifact) -> dict[str, Any] | None:
    """The base ``art`` was trained on: ref, digest, its folder here and license; None when not recorded."""
    from ..models.card import folder_license

    parents = [e.source for e in reg.upstream(art, depth=1) if e.relation == "base"]
    named = art.metadata.get("base_model")
    base = None
    if parents:
        base = reg.resolve(parents[0])
    elif isinstance(named, str) and "://" in named and reg.exists(named):
        base = reg.resolve(named)
    if base is not None:
        folder = reg.checkout(base)
        return {"ref": base.ref, "digest": base.digest, "path": str(folder), "license": folder_license(folder)}
    if isinstance(named, str) and (Path(named) / "config.json").is_file():  # a base that was never registered
        return {"ref": None, "digest": art.metadata.get("base_digest"), "path": named,
                "license": folder_license(Path(named))}  # fmt: skip
    return None


def _pii(reg: Registry, data: Artifact) -> dict[str, Any] | None:
    scans = [s for s in _direct(reg, data, "pii-scan") if s.metadata.get("source") == data.ref]
    scan = _newest(scans)
    if scan is None:
        return None
    meta = thaw(scan.metadata)
    by_entity = {e: sum(cols.values()) for e, cols in (meta.get("counts") or {}).items()}
    return {"ref": scan.ref, "total": meta.get("total"), "by_entity": by_entity, "model": meta.get("model"),
            "texts_scanned": meta.get("texts_scanned"), "limit": (scan.spec.get("args") or {}).get("limit")}  # fmt: skip


def data_facts(reg: Registry, art: Artifact) -> list[dict[str, Any]]:
    """The data sets ``art`` was made from (one step up), with digests and their newest PII scan."""
    out, seen = [], set()
    for edge in reg.upstream(art, depth=1):
        if edge.relation not in DATA_RELATIONS or (edge.source, edge.relation) in seen:
            continue
        seen.add((edge.source, edge.relation))
        data = reg.resolve(edge.source)
        redacted = [e.source for e in reg.upstream(data, depth=1) if e.relation == "redacted_from"]
        out.append({"ref": data.ref, "relation": edge.relation, "digest": data.digest,
                    "rows": data.metadata.get("num_rows"), "redacted_from": redacted[0] if redacted else None,
                    "pii_scan": _pii(reg, data)})  # fmt: skip
    order = {r: i for i, r in enumerate(DATA_RELATIONS)}
    return sorted(out, key=lambda d: (order[d["relation"]], d["ref"]))


def _hyperparameters(art: Artifact) -> dict[str, Any]:
    spec = thaw(art.spec)
    args = spec.get("args") if spec.get("op") == "finetune" else thaw(art.metadata.get("spec"))
    if not isinstance(args, dict):
        return {}
    if spec.get("op") == "finetune":
        return {k: args[k] for k in HYPERPARAMETERS if args.get(k) is not None}
    return {k: v for k, v in args.items() if k not in _NOT_HYPER and v is not None and not isinstance(v, dict)}


def _eval_metrics(reg: Registry, ev: Artifact, label: str, names: list[str]) -> list[dict[str, Any]]:
    from ..evaluation.stats import paired_bootstrap

    rows = [json.loads(line) for line in (reg.checkout(ev) / "examples.jsonl").read_text().splitlines() if line]
    rows = [r for r in rows if r.get("target") == label]
    out = []
    for name in names:
        values = [v for v in (_number(r.get(name)) for r in rows) if v is not None]
        if not values:
            continue
        lo, hi = paired_bootstrap(values, n_resamples=2000, seed=0)
        out.append({"name": name, "value": sum(values) / len(values), "ci": [lo, hi], "n": len(values)})
    return out


def eval_facts(reg: Registry, art: Artifact) -> list[dict[str, Any]]:
    """The evals of ``art`` (one step down), each with its data set and metric means."""
    out = []
    for ev in _direct(reg, art, "eval"):
        meta = thaw(ev.metadata)
        for target in meta.get("targets") or []:
            if target.get("model") != art.ref:
                continue
            metrics = _eval_metrics(reg, ev, target["label"], list(meta.get("metrics") or []))
            data = reg.resolve(meta["data"]) if meta.get("data") and reg.exists(meta["data"]) else None
            out.append({"ref": ev.ref, "data": meta.get("data"), "data_digest": data.digest if data else None,
                        "split": meta.get("split"), "prompt": target.get("prompt"), "metrics": metrics})  # fmt: skip
    return out


def fairness_facts(reg: Registry, art: Artifact) -> list[dict[str, Any]]:
    """The fairness reports whose target is ``art``, with each gap and its interval."""
    out = []
    for rep in _direct(reg, art, "fairness"):
        if rep.metadata.get("target") != art.ref:
            continue
        report = json.loads(reg.read_bytes(rep))
        attributes = {}
        for attr, entry in report["attributes"].items():
            measures = {m: {"difference": v.get("difference"), "ci": v.get("difference_ci")}
                        for m, v in entry.get("measures", {}).items()}  # fmt: skip
            attributes[attr] = {"groups": entry.get("groups"), "rows": entry.get("rows"), "measures": measures}
        out.append({"ref": rep.ref, "data": report.get("dataset"), "metric": report.get("metric"),
                    "attributes": attributes})  # fmt: skip
    return out


def _wandb(art: Artifact) -> dict[str, Any] | None:
    mirrored = thaw(art.wandb)
    run_id = art.metadata.get("wandb_run_id") or mirrored.get("run_id")
    if not run_id and not mirrored:
        return None
    return {"run_id": run_id, "project": mirrored.get("project"), "mode": mirrored.get("mode"),
            "artifact": mirrored.get("artifact")}  # fmt: skip


def gather(reg: Registry, art: Artifact) -> dict[str, Any]:
    """Every fact a card of ``art`` states (see the module docstring); ``None`` where lineage holds nothing."""
    meta = thaw(art.metadata)
    return {
        "subject": {
            "ref": art.ref,
            "kind": art.kind,
            "name": art.name,
            "version": art.version,
            "digest": art.digest,
            "created": art.created.date().isoformat(),
        },
        "base": base_of(reg, art),
        "data": data_facts(reg, art),
        "hyperparameters": _hyperparameters(art),
        "training_metrics": {k: v for k, v in (meta.get("metrics") or {}).items() if _number(v) is not None},
        "prompt_template": meta.get("prompt_template"),
        "evals": eval_facts(reg, art),
        "fairness": fairness_facts(reg, art),
        "wandb": _wandb(art),
        "libraries": meta.get("libraries") or None,
    }
