"""Versioned datasets on the registry: one folder artifact with a JSONL file per split.

The digest is the folder's manifest digest, so identical rows in identical splits
are the same version however they were loaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..context.workspaces import Workspace, current
from ..errors import NotFoundError, ValidationError
from ..recording.publish import publish
from ..store import Artifact
from .tables import Rows, decode_jsonl, encode_jsonl, infer_schema, split_rows, to_split_rows

if TYPE_CHECKING:
    from ..ops.catalog import Call
    from ..ops.datasets import DatasetSpec

KIND = "dataset"
PREVIEW_ROWS = 5
WANDB_PREVIEW_ROWS = 100  # rows of the wandb.Table that travels with the W&B artifact

__all__ = ["DatasetVersion", "run_save", "save_rows", "get_dataset"]


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable dataset version; rows are read from the registry on first use."""

    artifact: Artifact
    folder: Path
    created: bool | None = None

    name = property(lambda self: self.artifact.name)
    version = property(lambda self: self.artifact.version)
    digest = property(lambda self: self.artifact.digest)
    aliases = property(lambda self: self.artifact.aliases)
    ref = property(lambda self: self.artifact.ref)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.artifact.metadata.get("splits", {}))

    @property
    def schema(self) -> dict[str, str]:
        return dict(self.artifact.metadata.get("schema", {}))

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema)

    @property
    def num_rows(self) -> int:
        return int(self.artifact.metadata.get("num_rows", 0))

    @cached_property
    def _rows(self) -> dict[str, Rows]:
        return {s: decode_jsonl((self.folder / f"{s}.jsonl").read_bytes()) for s in self.splits}

    def records(self, split: str | None = None) -> Rows:
        """Rows of one split, or of all splits in order when ``split`` is None."""
        if split is None:
            return [r for s in self.splits for r in self._rows[s]]
        if split not in self._rows:
            raise NotFoundError(f"{self.ref} has no split {split!r}; its splits are {', '.join(self.splits)}")
        return list(self._rows[split])

    def to_pandas(self, split: str | None = None):
        import pandas as pd

        return pd.DataFrame.from_records(self.records(split), columns=list(self.columns))

    def require_columns(self, columns: Sequence[str]) -> None:
        missing = [c for c in columns if c not in self.schema]
        if missing:
            raise ValidationError(
                f"{self.ref} has no column(s) {', '.join(missing)}; its columns are {', '.join(self.columns)}"
            )

    def _summary(self) -> dict[str, Any]:
        splits = self.artifact.metadata.get("splits", {})
        out = {
            "dataset": self.ref,
            "digest": self.artifact.short_digest,
            "aliases": ", ".join(self.aliases),
            "rows": self.num_rows,
            "splits": ", ".join(f"{k}={v}" for k, v in splits.items()),
            "schema": ", ".join(f"{k}:{v}" for k, v in self.schema.items()),
        }
        if self.created is not None:
            out["status"] = "new version" if self.created else "unchanged (existing version)"
        return out

    def __str__(self) -> str:
        return "  ".join(f"{k}: {v}" for k, v in self._summary().items())

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.html import kv_html, mimebundle, table_html

        preview = self.artifact.metadata.get("preview", [])
        cols = list(self.columns)
        body = kv_html(self._summary()) + table_html(
            cols, [[r.get(c) for c in cols] for r in preview], title=f"first {len(preview)} rows"
        )
        return mimebundle(str(self), body, {"ref": self.ref, "digest": self.digest})


def _load(art: Artifact, ws: Workspace, created: bool | None = None) -> DatasetVersion:
    return DatasetVersion(art, ws.registry.checkout(art), created)


def run_save(spec: DatasetSpec, call: Call) -> DatasetVersion:
    """Run a ``DatasetSpec`` (see ``llmops_magics.save_dataset``)."""
    name = spec.name
    splits = to_split_rows(spec.data)
    if spec.validation_fraction is not None:
        if set(splits) != {"train"}:
            raise ValidationError("validation_fraction splits one table; this data already has splits")
        splits = split_rows(splits["train"], spec.validation_fraction, spec.seed)
    return save_rows(
        name,
        splits,
        spec=spec,
        call=call,
        required_columns=spec.required_columns,
        aliases=spec.aliases,
        metadata={
            "description": spec.description,
            "split_seed": spec.seed if spec.validation_fraction is not None else None,
        },
    )


def save_rows(
    name: str,
    splits: dict[str, Rows],
    *,
    spec: Any,
    call: Call,
    required_columns: Sequence[str] = (),
    aliases: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
    parents: Sequence[tuple[Any, str]] = (),
) -> DatasetVersion:
    """The one way rows become a dataset version: checked, one JSONL per split, published with
    ``spec`` (the operation that made them: ``dataset``, ``from-log``…) and its lineage ``parents``."""
    ws = call.ws
    if not any(splits.values()):
        raise ValidationError(f"dataset {name!r} is empty: no rows to register")
    all_rows = [r for rows in splits.values() for r in rows]
    schema = infer_schema(all_rows)
    missing = [c for c in required_columns if c not in schema]
    if missing:
        raise ValidationError(
            f"dataset {name!r} lacks required column(s) {', '.join(missing)}; "
            f"its columns are {', '.join(schema) or '(none)'}"
        )
    meta = {
        "description": None,
        **(metadata or {}),
        "schema": schema,
        "num_rows": len(all_rows),
        "splits": {k: len(v) for k, v in splits.items()},
        "preview": all_rows[:PREVIEW_ROWS],
    }
    columns = list(schema)
    preview = [[r.get(c) for c in columns] for r in all_rows[:WANDB_PREVIEW_ROWS]]
    with tempfile.TemporaryDirectory(dir=ws.registry.home / "tmp") as tmp:
        folder = Path(tmp)
        for split, rows in splits.items():
            (folder / f"{split}.jsonl").write_bytes(encode_jsonl(rows))
        result = publish(
            ws,
            KIND,
            name,
            spec=spec,
            call=call,
            path=folder,
            metadata=meta,
            aliases=aliases,
            parents=parents,
            tables={"preview": (columns, preview)},
        )
    return _load(result.artifact, ws, result.created)


def get_dataset(ref: str, *, workspace: Workspace | None = None) -> DatasetVersion:
    """``"tickets"``, ``"tickets/2"``, ``"tickets@golden"`` or ``"dataset://tickets/2"``."""
    ws = workspace or current()
    return _load(ws.registry.resolve(ref, KIND), ws)
