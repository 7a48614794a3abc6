"""``pii-scan``: where personal data sits in a dataset, an eval's outputs, a prompt or a request log.

A scan counts findings per entity type and column and keeps where each one is (row,
column, character span, score), never the text it found: the ``pii-scan`` artifact
holds no personal data, and it links to what it scanned (``scans``). The result
displays itself as the counts and the texts with their spans highlighted (escaped
HTML); a scan read back with ``get_pii_scan`` re-reads those texts from its pinned
source when they are still there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..display.html import esc, mimebundle, table_html, text_table
from ..errors import LLMOpsError
from .engine import engine
from .entities import resolve_entities, settings
from .sources import read_source

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..ops.catalog import Call
    from ..ops.pii import PiiScanSpec
    from ..store import Artifact

__all__ = ["PiiScan", "run_scan", "get_pii_scan", "KIND"]

KIND = "pii-scan"
SHOWN = 20  # texts with findings shown highlighted
_COLORS = ("#ffd54f", "#90caf9", "#a5d6a7", "#f48fb1", "#ce93d8", "#ffab91", "#80deea", "#e6ee9c", "#bcaaa4")


@dataclass
class PiiScan:
    """What one scan found. ``counts[entity][column]`` is the number of findings; ``findings`` where each is."""

    source: str  # the pinned reference scanned (dataset://qa/2, deployment://svc)
    source_kind: str
    model: str  # "blank" (patterns only) or the spaCy model's name
    entities: tuple[str, ...]
    threshold: float
    columns: tuple[str, ...]
    rows: int
    texts_scanned: int
    findings: list[dict[str, Any]]  # {"row", "column", "start", "end", "entity", "score"}
    texts: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)  # for display only, never stored
    artifact: Artifact | None = field(default=None, repr=False)

    @property
    def ref(self) -> str | None:
        return self.artifact.ref if self.artifact is not None else None

    @property
    def total(self) -> int:
        return len(self.findings)

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in self.findings:
            per = out.setdefault(f["entity"], {})
            per[f["column"]] = per.get(f["column"], 0) + 1
        return {e: dict(sorted(c.items())) for e, c in sorted(out.items())}

    @property
    def by_entity(self) -> dict[str, int]:
        return {e: sum(c.values()) for e, c in self.counts.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_kind": self.source_kind,
            "model": self.model,
            "entities": list(self.entities),
            "threshold": self.threshold,
            "columns": list(self.columns),
            "rows": self.rows,
            "texts_scanned": self.texts_scanned,
            "counts": self.counts,
            "findings": self.findings,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], artifact: Artifact | None = None) -> PiiScan:
        return cls(data["source"], data["source_kind"], data["model"], tuple(data["entities"]), float(data["threshold"]),
                   tuple(data["columns"]), int(data["rows"]), int(data["texts_scanned"]), list(data["findings"]),
                   artifact=artifact)  # fmt: skip

    # ------------------------------------------------------------------ display

    def _title(self) -> str:
        where = f" ({self.ref})" if self.ref else ""
        hit = len({(f["row"], f["column"]) for f in self.findings})
        return (f"PII scan of {self.source}{where}: {self.total} finding(s) in {hit} of {self.texts_scanned} text(s), "
                f"model {self.model}, threshold {self.threshold:g}")  # fmt: skip

    def _count_rows(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["entity", *self.columns, "total"]
        rows = [[e, *(per.get(c, 0) for c in self.columns), sum(per.values())] for e, per in self.counts.items()]
        return columns, rows

    def __str__(self) -> str:
        columns, rows = self._count_rows()
        text = self._title()
        if rows:
            text += "\n" + text_table(columns, rows)
        return text

    def _highlighted(self) -> str:
        colors = {e: _COLORS[i % len(_COLORS)] for i, e in enumerate(self.entities)}
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for f in self.findings:
            grouped.setdefault((f["row"], f["column"]), []).append(f)
        items = []
        for (row, column), found in list(grouped.items())[:SHOWN]:
            text = self.texts.get((row, column))
            if text is None:
                spans = ", ".join(f"{f['entity']} {f['start']}-{f['end']}" for f in found)
                items.append(f"<li><code>{esc(row)}</code> {esc(column)}: {esc(spans)}</li>")
                continue
            parts, at = [], 0
            for f in sorted(found, key=lambda f: f["start"]):
                color = colors.get(f["entity"], _COLORS[0])
                parts.append(esc(text[at : f["start"]]))
                parts.append(f'<mark data-entity="{esc(f["entity"])}" title="{esc(f["entity"])} {f["score"]:.2f}" '
                             f'style="background:{color}">{esc(text[f["start"] : f["end"]])}'
                             f'<sub>{esc(f["entity"])}</sub></mark>')  # fmt: skip
                at = f["end"]
            parts.append(esc(text[at:]))
            items.append(f"<li><code>{esc(row)}</code> {esc(column)}: {''.join(parts)}</li>")
        more = len(grouped) - SHOWN
        tail = f"<div>… and {more} more text(s)</div>" if more > 0 else ""
        return f'<ol data-test-id="pii-findings">{"".join(items)}</ol>{tail}' if items else ""

    def _repr_mimebundle_(self, include=None, exclude=None):
        columns, rows = self._count_rows()
        body = table_html(columns, rows, title=self._title()) if rows else f"<b>{esc(self._title())}</b>"
        meta = {"ref": self.ref, "total": self.total} if self.ref else None
        return mimebundle(str(self), f'<div data-test-id="pii-scan">{body}{self._highlighted()}</div>', meta)


def run_scan(spec: PiiScanSpec, call: Call) -> PiiScan:
    """Check everything (source, columns, entities, the engine), scan, then store one ``pii-scan`` version."""
    ws = call.ws
    config = settings()
    model = config["pii_model"]
    entities = resolve_entities(spec.entities, model)
    source = read_source(ws, spec.ref, spec.columns, spec.limit)
    eng = engine(model, config["phone_regions"])
    found = eng.find([c.text for c in source.cells], entities, spec.threshold)  # one batched pass
    findings = [
        {"row": c.row, "column": c.column, **f.to_dict()} for c, fs in zip(source.cells, found, strict=True) for f in fs
    ]
    hit = {(c.row, c.column) for c, fs in zip(source.cells, found, strict=True) if fs}
    result = PiiScan(source.ref, source.kind, eng.model, entities, spec.threshold, source.columns,
                     source.rows, len(source.cells), findings,
                     texts={(c.row, c.column): c.text for c in source.cells if (c.row, c.column) in hit})  # fmt: skip
    resolved = spec.replace(ref=source.ref, entities=entities, columns=source.columns)
    result.artifact = _save(ws, resolved, call, result, source)
    return result


def _save(ws: Workspace, spec: PiiScanSpec, call: Call, result: PiiScan, source: Any) -> Artifact:
    from ..recording.publish import publish

    name = spec.name or f"{source.kind}-{source.name}"
    meta = {
        "source": result.source,
        "model": result.model,
        "total": result.total,
        "counts": result.counts,
        "texts_scanned": result.texts_scanned,
        "filename": "pii-scan.json",
    }
    data = json.dumps(result.to_dict(), sort_keys=True).encode()
    parents = [(source.artifact, "scans")] if source.artifact is not None else []
    return publish(ws, KIND, name, spec=spec, call=call, data=data, metadata=meta, parents=parents).artifact


def get_pii_scan(ref: str, *, workspace: Workspace | None = None) -> PiiScan:
    """A stored scan (``pii-scan://dataset-qa/2``) read back; its texts re-read from the source for display."""
    from ..context.workspaces import current

    ws = workspace or current()
    art = ws.registry.resolve(ref, KIND)
    scan = PiiScan.from_dict(json.loads(ws.registry.read_bytes(art)), art)
    wanted = {(f["row"], f["column"]) for f in scan.findings}
    if wanted and scan.source_kind != "deployment":  # a request log moves on; its rows are not kept
        try:
            cells = read_source(ws, scan.source, scan.columns).cells
        except LLMOpsError:
            cells = []
        scan.texts = {(c.row, c.column): c.text for c in cells if (c.row, c.column) in wanted}
    return scan
