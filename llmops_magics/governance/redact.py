"""``pii-redact``: a new dataset version with personal data replaced, masked or hashed.

Every text column (or those named) of every split is scanned and redacted; other values
and the splits are kept as they are. The new version is saved like any dataset version
(one JSONL file per split, schema, preview) with a ``redacted_from`` edge to the version
it came from, and the redact call as its stored spec, so ``replay`` redacts again.
``hash`` is salted with a secret made once per registry: the same value hashes the same
way within a registry (rows stay joinable) but cannot be looked up by someone outside it.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import engine
from .entities import resolve_entities, settings
from .sources import text_columns

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..datasets import DatasetVersion
    from ..ops.catalog import Call
    from ..ops.pii import PiiRedactSpec
    from ..store import Registry

__all__ = ["run_redact", "hash_salt"]

STATE = "governance"
_DONE = {"replace": "replaced", "mask": "masked", "hash": "hashed"}


def hash_salt(reg: Registry) -> str:
    """The registry's salt for ``hash`` (made on first use, kept in the registry's state)."""
    salt = reg.get_state(STATE, "hash_salt")
    if not salt:
        salt = secrets.token_hex(16)
        reg.put_state(STATE, "hash_salt", salt)
    return salt


def run_redact(spec: PiiRedactSpec, call: Call) -> DatasetVersion:
    """Check everything (dataset, columns, entities, the engine), redact every split, save one new version."""
    from ..datasets import get_dataset
    from ..errors import ValidationError

    ws = call.ws
    config = settings()
    model = config["pii_model"]
    entities = resolve_entities(spec.entities, model)
    source = get_dataset(spec.dataset, workspace=ws)
    missing = [c for c in spec.columns if c not in source.columns]
    if missing:
        raise ValidationError(
            f"{source.ref} has no column(s) {', '.join(missing)}; its columns are {', '.join(source.columns)}"
        )
    columns = spec.columns or text_columns(source.schema)
    if not columns:
        raise ValidationError(f"{source.ref} has no text column to redact; its columns are {', '.join(source.columns)}")
    eng = engine(model, config["phone_regions"])
    salt = hash_salt(ws.registry) if spec.operator == "hash" else ""
    splits: dict[str, list[dict[str, Any]]] = {}
    changed = 0
    for split in source.splits:
        rows = [dict(r) for r in source.records(split)]
        where = [(r, c) for r in rows for c in columns if isinstance(r.get(c), str) and r[c].strip()]
        found = eng.find([r[c] for r, c in where], entities, spec.threshold)
        for (row, column), fs in zip(where, found, strict=True):
            if fs:
                row[column] = eng.redact(row[column], fs, spec.operator, salt=salt)
                changed += 1
        splits[split] = rows
    resolved = spec.replace(dataset=source.ref, entities=entities, columns=columns)
    return _save(ws, resolved, call, source, splits, changed, eng.model)


def _save(ws: Workspace, spec: PiiRedactSpec, call: Call, source: Any, splits: dict, changed: int, model: str):
    """Saved as ``datasets.versions.run_save`` saves, with the redact call and a ``redacted_from`` edge."""
    from ..datasets.tables import encode_jsonl, infer_schema
    from ..datasets.versions import PREVIEW_ROWS, WANDB_PREVIEW_ROWS, DatasetVersion
    from ..recording.publish import publish

    all_rows = [r for rows in splits.values() for r in rows]
    schema = infer_schema(all_rows)
    meta = {
        "description": f"{source.ref} with {', '.join(spec.entities)} {_DONE[spec.operator]} in {', '.join(spec.columns)}",
        "schema": schema,
        "num_rows": len(all_rows),
        "splits": {k: len(v) for k, v in splits.items()},
        "preview": all_rows[:PREVIEW_ROWS],
        "split_seed": source.artifact.metadata.get("split_seed"),
        "redaction": {"operator": spec.operator, "model": model, "texts_changed": changed},
    }
    names = list(schema)
    preview = [[r.get(c) for c in names] for r in all_rows[:WANDB_PREVIEW_ROWS]]
    with tempfile.TemporaryDirectory(dir=ws.registry.home / "tmp") as tmp:
        folder = Path(tmp)
        for split, rows in splits.items():
            (folder / f"{split}.jsonl").write_bytes(encode_jsonl(rows))
        saved = publish(ws, "dataset", spec.name or source.name, spec=spec, call=call, path=folder, metadata=meta,
                        parents=[(source.artifact, "redacted_from")], aliases=spec.aliases,
                        tables={"preview": (names, preview)})  # fmt: skip
    ws.registry.record_event("redact", saved.artifact.ref, from_ref=source.ref, to_ref=saved.artifact.ref,
                             detail={"entities": list(spec.entities), "operator": spec.operator,
                                     "columns": list(spec.columns), "texts_changed": changed})  # fmt: skip
    return DatasetVersion(saved.artifact, ws.registry.checkout(saved.artifact), saved.created)
