"""The result of an eval: per-example records, a summary per target, A/B comparisons.

``records`` has one row per (example, target) with the data row's columns, the prompt,
the output, the reference and one column per metric; ``df`` is the same as a pandas
DataFrame. ``summary`` maps each target label (A, B, …) to the mean of every metric
column over the examples where it applies. The result displays itself (text and
escaped HTML) and carries its eval artifact once recorded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..display.charts import with_charts
from ..display.html import esc, kv_html, mimebundle, table_html, text_table
from ..store import Artifact
from .stats import Comparison, format_number

__all__ = ["EvalResult", "MetricColumn"]

FIELDS = ("example", "target", "model", "prompt_version", "prompt", "output", "reference", "finish_reason")


@dataclass(frozen=True)
class MetricColumn:
    """A metric column: ``primary`` columns are compared in A/B tests; the rest are reported only."""

    name: str
    metric: str
    primary: bool
    higher_is_better: bool | None
    gate: bool


def _mean(values: Sequence[float | None]) -> float | None:
    valid = [v for v in values if v is not None]
    return sum(valid) / len(valid) if valid else None


@dataclass
class EvalResult:
    targets: list[dict[str, str]]  # label, name, model, prompt
    data: str
    split: str | None
    reference_column: str | None
    columns: list[MetricColumn]
    records: list[dict[str, Any]]
    summary: dict[str, dict[str, Any]]
    comparisons: list[Comparison] = field(default_factory=list)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    cache_hits: int = 0
    generated: int = 0
    seconds: float = 0.0
    artifact: Artifact | None = None
    created: bool | None = None
    _run: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls, *, targets, dataset, split, rows, reference_column, columns, per_target, comparisons, mismatches, seconds
    ) -> EvalResult:
        names = {c.name for c in columns}
        reserved = set(FIELDS) | names | {"cached"}
        records = []
        for t in targets:
            info = per_target[t.label]
            cell = t.to_spec()  # model and prompt: result.df pivots on them (a prompts x models grid)
            for ex in info["examples"]:
                rec: dict[str, Any] = {
                    "example": ex.index,
                    "target": t.label,
                    "model": cell["model"],
                    "prompt_version": cell["prompt"],
                }
                for k, v in rows[ex.index].items():
                    rec[f"data_{k}" if k in reserved else k] = v
                rec.update(
                    prompt=ex.prompt,
                    output=ex.output,
                    reference=ex.reference,
                    finish_reason=ex.finish_reason,
                    cached=ex.cached,
                )
                for col in columns:
                    rec[col.name] = info["values"][col.name][ex.index]
                for col, values in info.get("details", {}).items():  # not numbers: per-claim verdicts
                    rec[col] = values[ex.index]
                records.append(rec)
        summary = {}
        for t in targets:
            info = per_target[t.label]
            s: dict[str, Any] = {c.name: _mean(info["values"][c.name]) for c in columns}
            s["n"] = len(info["examples"])
            s.update(info["notes"])
            summary[t.label] = s
        hits = sum(per_target[t.label]["cache_hits"] for t in targets)
        total = sum(len(per_target[t.label]["examples"]) for t in targets)
        return cls(
            targets=[{"label": t.label, "name": t.name, **t.to_spec()} for t in targets],
            data=dataset.ref,
            split=split,
            reference_column=reference_column,
            columns=list(columns),
            records=records,
            summary=summary,
            comparisons=list(comparisons),
            mismatches=[m.to_dict() for m in mismatches],
            cache_hits=hits,
            generated=total - hits,
            seconds=seconds,
        )

    # ------------------------------------------------------------------ views

    @property
    def wandb(self) -> dict[str, Any]:
        """Where the W&B run is (``run_id``, ``mode``, ``run_dir``); waits, bounded, for the run to start."""
        if self._run is not None:
            return dict(self._run.info)
        return dict(self.artifact.wandb) if self.artifact is not None else {}

    @property
    def ref(self) -> str | None:
        return self.artifact.ref if self.artifact is not None else None

    @property
    def labels(self) -> list[str]:
        return [t["label"] for t in self.targets]

    @property
    def metric_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def df(self):
        """One row per (example, target), as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records)

    def frame(self):
        """The summary as a DataFrame: one row per metric column, one column per target."""
        import pandas as pd

        return pd.DataFrame(
            {t["label"]: {c.name: self.summary[t["label"]].get(c.name) for c in self.columns} for t in self.targets}
        )

    def values(self, label: str, column: str) -> list[float | None]:
        return [r[column] for r in self.records if r["target"] == label]

    @property
    def verdicts(self) -> list[str]:
        return [c.verdict for c in self.comparisons]

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.regression]

    @property
    def warnings(self) -> list[str]:
        from .consistency import Mismatch

        return [Mismatch(**m).message() for m in self.mismatches]

    # ------------------------------------------------------------------ storage

    def content(self) -> dict[str, bytes]:
        """The artifact's files: deterministic for the same inputs, so a cached re-run is the same version."""
        stored = [{k: v for k, v in r.items() if k != "cached"} for r in self.records]
        lines = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in stored)
        summary = {
            "targets": self.targets,
            "data": self.data,
            "split": self.split,
            "reference_column": self.reference_column,
            "columns": [asdict(c) for c in self.columns],
            "summary": self.summary,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "mismatches": self.mismatches,
        }
        return {
            "examples.jsonl": lines.encode(),
            "summary.json": json.dumps(summary, sort_keys=True, indent=1, default=str).encode(),
        }

    def flat_summary(self) -> dict[str, float]:
        """``{"A/exact_match": …, "B-A/exact_match": delta, …}`` for trackers; single targets drop the prefix."""
        out: dict[str, float] = {}
        single = len(self.targets) == 1
        for label, s in self.summary.items():
            for k, v in s.items():
                if isinstance(v, (int, float)) and v is not None and not (isinstance(v, float) and math.isnan(v)):
                    out[k if single else f"{label}/{k}"] = v
        for c in self.comparisons:
            if c.delta is not None:
                key = f"{c.b}-{c.a}/{c.metric}"
                out.update({key: c.delta, f"{key}/ci_low": c.ci_low, f"{key}/ci_high": c.ci_high})
                out[f"{key}/p_value"] = c.p_value
        out["cache_hits"] = self.cache_hits
        return out

    # ------------------------------------------------------------------ display

    def _table(self):
        cols = ["metric", *(t["label"] for t in self.targets)]
        rows = []
        for c in self.columns:
            rows.append([c.name, *(_fmt(self.summary[t["label"]].get(c.name)) for t in self.targets)])
        return cols, rows

    def _head(self) -> dict[str, Any]:
        status = {True: "new version", False: "unchanged (existing version)", None: "not recorded"}[self.created]
        n = self.summary[self.targets[0]["label"]]["n"] if self.targets else 0
        return {
            "eval": self.ref or "(not saved)",
            "status": status,
            "data": f"{self.data} [{self.split or 'all rows'}, {n} examples]",
            **{t["label"]: t["name"] for t in self.targets},
            **self._usage(),
            "cache": f"{self.cache_hits} of {self.cache_hits + self.generated} answers from the cache",
        }

    def _usage(self) -> dict[str, str]:
        """``{"A tokens": "120 in + 24 out tokens, $0.0003; judge …"}``: what each target's calls spent."""
        from .usage import usage_line

        lines = {t["label"]: usage_line(self.summary.get(t["label"], {})) for t in self.targets}
        return {f"{label} tokens": line for label, line in lines.items() if line is not None}

    def __str__(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self._head().items())
        cols, rows = self._table()
        parts = [head, text_table(cols, rows)]
        if self.verdicts:
            parts.append("\n".join(self.verdicts))
        if self.warnings:
            parts.append("\n".join(f"WARNING {w}" for w in self.warnings))
        return "\n\n".join(parts)

    def __repr__(self) -> str:
        return f"<EvalResult {self.ref or '(not saved)'} targets={self.labels} n={len(self.records)}>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        cols, rows = self._table()
        html = kv_html(self._head()) + table_html(cols, rows, title="means")
        if self.verdicts:
            items = "".join(f"<li style='color:{_color(c.outcome)}'>{esc(c.verdict)}</li>" for c in self.comparisons)
            html += f"<ul style='margin:4px 0'>{items}</ul>"
        if self.warnings:
            html += "".join(
                f"<div style='background:#fdd;border:1px solid #c00;padding:4px;margin:4px 0'><b>⚠ </b>{esc(w)}</div>"
                for w in self.warnings
            )
        meta = {"ref": self.ref, "digest": self.artifact.digest if self.artifact else None}
        return with_charts(mimebundle(str(self), html, meta), self.charts())

    def charts(self) -> list:
        """The pictures (``display.result_charts``): metric means with CIs, per-example deltas per comparison."""
        from ..display.result_charts import eval_charts

        return eval_charts(self)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return format_number(float(value)) if isinstance(value, (int, float)) else str(value)


def _color(outcome: str) -> str:
    return {"better": "#070", "worse": "#b00"}.get(outcome, "inherit")


def load_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def comparison_from_dict(d: Mapping[str, Any]) -> Comparison:
    keep = {k: d[k] for k in Comparison.__dataclass_fields__ if k in d}
    return Comparison(**keep)
