"""Comparing and listing dataset versions: ``diff_datasets``, ``dataset_history``, ``list_datasets``.

A diff reports the schema (columns added, removed, retyped), the split sizes, and
the rows. Rows are compared over all splits together, so re-splitting the same
rows is not a row change, and on the columns both versions have, so adding or
dropping a column is a schema change, not a change of every row. With a ``key``
column, rows are matched by key and a row whose other columns differ is
*changed* (with the columns that changed). Without one, an id-like column
(``id`` or ``*_id``, of one type and unique in both versions) is used as the key
when there is one, and the diff says it was detected; otherwise rows are
compared whole, as a multiset: an edited row shows as one removed and one added.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..context.workspaces import Workspace, current
from ..display.html import VersionHistory, cell_label, esc, format_time, kv_html, mimebundle, table_html, text_table
from ..errors import ValidationError
from .versions import KIND, DatasetVersion, get_dataset

__all__ = ["DatasetDiff", "DatasetHistory", "diff_datasets", "dataset_history", "list_datasets"]

SHOW_ROWS = 20


def _canon(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class RowChange:
    kind: str  # "added", "removed" or "changed"
    key: Any
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetDiff:
    """What changed from version ``a`` to version ``b`` (see the module docstring)."""

    a: DatasetVersion
    b: DatasetVersion
    key: str | None
    added_columns: tuple[str, ...]
    removed_columns: tuple[str, ...]
    retyped_columns: Mapping[str, tuple[str, str]]
    changes: Sequence[RowChange] = field(default_factory=tuple)
    key_detected: bool = False  # the key was not given but found (an id-like column)
    compared_columns: tuple[str, ...] = ()  # the shared columns rows were compared on, when the schema changed

    @property
    def identical(self) -> bool:
        return self.a.digest == self.b.digest

    def _count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    added = property(lambda self: self._count("added"))
    removed = property(lambda self: self._count("removed"))
    changed = property(lambda self: self._count("changed"))

    def _summary(self) -> dict[str, Any]:
        splits_a, splits_b = (
            dict(self.a.artifact.metadata.get("splits", {})),
            dict(self.b.artifact.metadata.get("splits", {})),
        )
        out = {
            "from": self.a.ref,
            "to": self.b.ref,
            "rows": f"{self.a.num_rows} → {self.b.num_rows}",
            "splits": ", ".join(
                f"{s}: {splits_a.get(s, 0)} → {splits_b.get(s, 0)}" for s in dict.fromkeys([*splits_a, *splits_b])
            ),
            "rows added": self.added,
            "rows removed": self.removed,
        }
        if self.key:
            how = "detected id column" if self.key_detected else "key"
            out["rows changed"] = f"{self.changed} (matched on {how} {self.key!r})"
        if self.compared_columns:
            out["rows compared on"] = "shared columns " + ", ".join(self.compared_columns)
        if self.added_columns:
            out["columns added"] = ", ".join(self.added_columns)
        if self.removed_columns:
            out["columns removed"] = ", ".join(self.removed_columns)
        for col, (old, new) in self.retyped_columns.items():
            out[f"column {col}"] = f"{old} → {new}"
        return out

    def _rows(self) -> list[tuple[str, str, str]]:
        out = []
        for c in self.changes[:SHOW_ROWS]:
            if c.kind == "changed":
                detail = "; ".join(
                    f"{col}: {json.dumps((c.old or {}).get(col))} → {json.dumps((c.new or {}).get(col))}"
                    for col in c.columns
                )
            else:
                detail = _canon(c.new if c.kind == "added" else c.old or {})
            out.append((c.kind, "" if c.key is None else str(c.key), detail))
        return out

    def __str__(self) -> str:
        if self.identical:
            return f"{self.a.ref} and {self.b.ref} are identical"
        head = "\n".join(f"{k}: {v}" for k, v in self._summary().items())
        rows = self._rows()
        more = f"\n… {len(self.changes) - SHOW_ROWS} more" if len(self.changes) > SHOW_ROWS else ""
        return head + ("\n\n" + text_table(("change", "key", "row"), rows) + more if rows else "")

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.identical:
            return mimebundle(str(self), f"<p><i>{esc(str(self))}</i></p>")
        body = kv_html(self._summary(), title="dataset diff")
        if self.changes:
            body += table_html(
                ("change", "key", "row"), self._rows(), title=f"first {min(SHOW_ROWS, len(self.changes))} row changes"
            )
        return mimebundle(str(self), body)


def _project(row: Mapping[str, Any], columns: Sequence[str] | None) -> dict[str, Any]:
    return dict(row) if columns is None else {c: row[c] for c in columns if c in row}


def _row_changes(a: list[dict], b: list[dict], key: str | None, columns: Sequence[str] | None) -> list[RowChange]:
    """Row changes, looking only at ``columns`` (None: all) so a schema change is not a row change."""
    if key is None:
        rows_a: dict[str, list[dict]] = {}
        rows_b: dict[str, list[dict]] = {}
        for rows, by_canon in ((a, rows_a), (b, rows_b)):
            for r in rows:
                by_canon.setdefault(_canon(_project(r, columns)), []).append(r)
        ca = Counter({k: len(v) for k, v in rows_a.items()})
        cb = Counter({k: len(v) for k, v in rows_b.items()})
        removed = [r for k, n in (ca - cb).items() for r in rows_a[k][:n]]
        added = [r for k, n in (cb - ca).items() for r in rows_b[k][:n]]
        return [RowChange("removed", None, r, None) for r in removed] + [
            RowChange("added", None, None, r) for r in added
        ]
    by_a, by_b = _index(a, key), _index(b, key)
    out: list[RowChange] = []
    for k, old in by_a.items():
        new = by_b.get(k)
        if new is None:
            out.append(RowChange("removed", k, old, None))
            continue
        old_p, new_p = _project(old, columns), _project(new, columns)
        if _canon(old_p) != _canon(new_p):
            cols = tuple(c for c in dict.fromkeys([*old_p, *new_p]) if old_p.get(c) != new_p.get(c))
            out.append(RowChange("changed", k, old, new, cols))
    out.extend(RowChange("added", k, None, new) for k, new in by_b.items() if k not in by_a)
    return out


def _index(rows: list[dict], key: str) -> dict[Any, dict]:
    out: dict[Any, dict] = {}
    for row in rows:
        k = row.get(key)
        k = json.dumps(k, sort_keys=True) if isinstance(k, (dict, list)) else k
        if k in out:
            raise ValidationError(f"key column {key!r} is not unique: {k!r} appears more than once")
        out[k] = row
    return out


def _is_unique_id(rows: list[dict], column: str) -> bool:
    values = [r.get(column) for r in rows]
    return all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values) and len(set(values)) == len(
        values
    )


def _detect_key(a: DatasetVersion, b: DatasetVersion) -> str | None:
    """An id-like column both versions have with one scalar type, unique and never empty in each."""
    sa, sb = a.schema, b.schema
    names = [c for c in sa if c in sb and sa[c] == sb[c] and sa[c] in ("int", "str")]
    candidates = [c for c in names if c.lower() == "id"] + [c for c in names if c.lower().endswith("_id")]
    rows_a, rows_b = a.records(), b.records()
    return next((c for c in candidates if _is_unique_id(rows_a, c) and _is_unique_id(rows_b, c)), None)


def diff_datasets(
    ref_a: str,
    ref_b: str,
    *,
    key: str | None = None,
    detect_key: bool = True,
    workspace: Workspace | None = None,
) -> DatasetDiff:
    """Schema, split and row changes from ``ref_a`` to ``ref_b``; ``key`` matches rows by a column.

    With no ``key``, an id-like column is used when one qualifies (see the module docstring);
    ``detect_key=False`` compares whole rows instead.
    """
    a, b = get_dataset(ref_a, workspace=workspace), get_dataset(ref_b, workspace=workspace)
    if key is not None:
        a.require_columns([key])
        b.require_columns([key])
    sa, sb = a.schema, b.schema
    retyped = {c: (sa[c], sb[c]) for c in sa if c in sb and sa[c] != sb[c]}
    shared = tuple(c for c in sa if c in sb)
    compared = shared if set(sa) != set(sb) else ()
    changes: list[RowChange] = []
    detected = False
    if a.digest != b.digest:
        if key is None and detect_key:
            key = _detect_key(a, b)
            detected = key is not None
        changes = _row_changes(a.records(), b.records(), key, compared or None)
    return DatasetDiff(
        a,
        b,
        key,
        tuple(c for c in sb if c not in sa),
        tuple(c for c in sa if c not in sb),
        retyped,
        tuple(changes),
        key_detected=detected,
        compared_columns=compared,
    )


@dataclass(frozen=True)
class DatasetHistory(VersionHistory):
    KIND = "dataset"
    name: str
    versions: Sequence[DatasetVersion]

    COLUMNS = ("version", "created", "digest", "aliases", "rows", "splits", "columns", "cell")

    def _rows(self):
        for v in reversed(self.versions):
            splits = ", ".join(f"{k}={n}" for k, n in v.artifact.metadata.get("splits", {}).items())
            yield (
                v.version,
                format_time(v.artifact.created_at),
                v.artifact.short_digest,
                ", ".join(v.aliases),
                v.num_rows,
                splits,
                ", ".join(v.columns),
                cell_label(v.artifact.source),
            )


def dataset_history(name: str, *, workspace: Workspace | None = None) -> DatasetHistory:
    ws = workspace or current()
    art = ws.registry.resolve(name, KIND)
    return DatasetHistory(art.name, [get_dataset(a.ref, workspace=ws) for a in ws.registry.versions(KIND, art.name)])


def list_datasets(search: str | None = None, *, workspace: Workspace | None = None):
    """Dataset names with version counts and aliases (``%dataset list``)."""
    from ..display.listing import NameList

    return NameList((workspace or current()).registry.names(KIND, search))
