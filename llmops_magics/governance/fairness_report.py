"""What ``%fairness`` found, stored as a ``fairness`` artifact and shown as per-group bars with intervals.

Kept apart from the run so that reading a stored report back (``get_fairness``, the
sidebar's codec) imports neither fairlearn nor the models. The view is escaped HTML
with one small SVG per measure: each group's value as a bar and its 95% bootstrap
interval as a whisker, on a scale shared by the groups, so a gap reads at a glance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..display.html import esc, mimebundle, text_table

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..store import Artifact

__all__ = ["FairnessReport", "get_fairness", "KIND"]

KIND = "fairness"
_W, _ROW = 160, 16  # the SVG's bar width and row height


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _ci(pair: list[float | None] | None) -> str:
    return "" if not pair or pair[0] is None else f"[{_num(pair[0])}, {_num(pair[1])}]"


@dataclass
class FairnessReport:
    """Per attribute: its groups, rows compared (``rows``), rows without a term (``skipped``) and ``measures``.

    ``attributes[attr]["measures"][measure]``: ``by_group`` {group: mean}, ``ci`` {group: [lo, hi]},
    ``difference`` (largest minus smallest group) with ``difference_ci``, ``ratio`` (smallest over
    largest) and ``gaps`` {group: {"gap": mean(group - first group), "ci": [lo, hi]}}.
    """

    target: str
    dataset: str
    metric: str
    columns: tuple[str, ...]
    attributes: dict[str, dict[str, Any]]
    outputs: list[dict[str, Any]] = field(default_factory=list, repr=False)
    seconds: float = 0.0
    artifact: Artifact | None = field(default=None, repr=False)

    @property
    def ref(self) -> str | None:
        return self.artifact.ref if self.artifact is not None else None

    def differences(self) -> dict[str, dict[str, float | None]]:
        """``{attribute: {measure: difference}}``: the headline numbers, kept in the artifact's metadata."""
        return {a: {m: v["difference"] for m, v in e["measures"].items()} for a, e in self.attributes.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "dataset": self.dataset, "metric": self.metric, "columns": list(self.columns),
                "attributes": self.attributes, "outputs": self.outputs, "seconds": self.seconds}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any], artifact: Artifact | None = None) -> FairnessReport:
        return cls(data["target"], data["dataset"], data["metric"], tuple(data["columns"]), data["attributes"],
                   list(data.get("outputs", [])), float(data.get("seconds", 0.0)), artifact)  # fmt: skip

    # ------------------------------------------------------------------ display

    def _title(self) -> str:
        where = f" ({self.ref})" if self.ref else ""
        return f"Counterfactual fairness of {self.target} on {self.dataset}{where}"

    def _rows(self) -> list[list[Any]]:
        out = []
        for attr, e in self.attributes.items():
            for m, v in e["measures"].items():
                groups = ", ".join(f"{g} {_num(x)} {_ci(v['ci'][g])}" for g, x in v["by_group"].items())
                out.append([attr, m, groups, f"{_num(v['difference'])} {_ci(v['difference_ci'])}", _num(v["ratio"])])
        return out

    def __str__(self) -> str:
        lines = [self._title()]
        for attr, e in self.attributes.items():
            lines.append(f"{attr}: {e['rows']} row(s) compared, {e['skipped']} without a term")
        rows = self._rows()
        if rows:
            lines.append(
                text_table(["attribute", "measure", "by group [95% CI]", "difference [95% CI]", "ratio"], rows)
            )
        return "\n".join(lines)

    def _svg(self, v: dict[str, Any]) -> str:
        """One bar per group (its mean) with a whisker (its interval), on a scale shared by the groups."""
        points = [x for x in v["by_group"].values() if x is not None]
        points += [x for lo_hi in v["ci"].values() for x in lo_hi if x is not None]
        lo, hi = min([0.0, *points]), max([0.0, *points])
        span = (hi - lo) or 1.0

        def x(val: float) -> float:
            return round((val - lo) / span * _W, 1)

        parts = []
        for i, (g, val) in enumerate(v["by_group"].items()):
            y = i * _ROW
            if val is not None:
                left, right = sorted((x(0.0), x(val)))
                parts.append(f'<rect x="{left}" y="{y + 3}" width="{max(right - left, 1)}" height="{_ROW - 6}" '
                             f'fill="#90caf9"><title>{esc(g)} {esc(_num(val))}</title></rect>')  # fmt: skip
            c = v["ci"].get(g) or [None, None]
            if c[0] is not None:
                mid = y + _ROW / 2
                parts.append(f'<line x1="{x(c[0])}" x2="{x(c[1])}" y1="{mid}" y2="{mid}" stroke="#263238"/>')
        height = len(v["by_group"]) * _ROW
        return (f'<svg width="{_W}" height="{height}" role="img" data-test-id="fairness-bars">'
                f'<line x1="{x(0.0)}" x2="{x(0.0)}" y1="0" y2="{height}" stroke="#999"/>{"".join(parts)}</svg>')  # fmt: skip

    def _html(self) -> str:
        sections = []
        for attr, e in self.attributes.items():
            head = (f"<div><b>{esc(attr)}</b>: {e['rows']} row(s) compared across {esc(', '.join(e['groups']))}; "
                    f"{e['skipped']} row(s) without a term left out</div>")  # fmt: skip
            rows = []
            for m, v in e["measures"].items():
                labels = "".join(f"<div style='height:{_ROW}px'>{esc(g)}: {esc(_num(val))} "
                                 f"<small>{esc(_ci(v['ci'][g]))}</small></div>"
                                 for g, val in v["by_group"].items())  # fmt: skip
                rows.append(f"<tr><td>{esc(m)}</td><td>{labels}</td><td>{self._svg(v)}</td>"
                            f"<td>{esc(_num(v['difference']))} <small>{esc(_ci(v['difference_ci']))}</small></td>"
                            f"<td>{esc(_num(v['ratio']))}</td></tr>")  # fmt: skip
            table = ("<table><tr><th>measure</th><th>by group [95% CI]</th><th></th><th>difference [95% CI]</th>"
                     f"<th>ratio</th></tr>{''.join(rows)}</table>" if rows else "")  # fmt: skip
            sections.append(f'<div data-attribute="{esc(attr)}">{head}{table}</div>')
        return f'<div data-test-id="fairness"><b>{esc(self._title())}</b>{"".join(sections)}</div>'

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), self._html(), {"ref": self.ref} if self.ref else None)


def get_fairness(ref: str, *, workspace: Workspace | None = None) -> FairnessReport:
    """A stored report (``fairness://qa/2``) read back."""
    from ..context.workspaces import current

    ws = workspace or current()
    art = ws.registry.resolve(ref, KIND)
    return FairnessReport.from_dict(json.loads(ws.registry.read_bytes(art)), art)
