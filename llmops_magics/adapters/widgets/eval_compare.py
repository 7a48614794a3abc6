"""A side-by-side panel for an eval: examples ranked worst first, filters, and a word diff of A vs B.

Stock ipywidgets composed in a plain class. With one target the "B" side is the
reference, so the same panel shows where a single model goes wrong. State changes go
through ``observe`` callbacks that ``close()`` removes; the panel never touches the
registry or the tracker.
"""

from __future__ import annotations

import difflib
import html
import math
import re
from typing import Any

import ipywidgets as w

from ...display.html import esc
from .panel import Panel, close_tree

__all__ = ["EvalPanel", "word_diff"]

ORDERS = (("worst first", "worst"), ("best first", "best"), ("data order", "data"))
FILTERS = (
    ("all examples", "all"),
    ("changed (Δ ≠ 0)", "changed"),
    ("B ≤ threshold", "b_below"),
    ("A ≤ threshold", "a_below"),
    ("|Δ| ≥ threshold", "delta_at_least"),
)
_TOKEN = re.compile(r"\s+|[^\s]+")
CELL = "border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top;max-width:28em"


def word_diff(a: str, b: str) -> str:
    """HTML of ``a`` → ``b`` word by word: removed words struck through in red, added in green, all escaped."""
    ta, tb = _TOKEN.findall(a or ""), _TOKEN.findall(b or "")
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(html.escape("".join(ta[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del style='background:#fcc'>{html.escape(''.join(ta[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins style='background:#cfc;text-decoration:none'>{html.escape(''.join(tb[j1:j2]))}</ins>")
    return "".join(out)


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.3g}"


class EvalPanel(Panel):
    """``EvalPanel(result)``: see the module docstring; ``visible`` lists the example ids shown, in order."""

    def __init__(self, result: Any, rows: int = 20) -> None:
        self.result = result
        labels = result.labels
        self.single = len(labels) == 1
        self._by = {lab: {r["example"]: r for r in result.records if r["target"] == lab} for lab in labels}
        self._examples = sorted(self._by[labels[0]])
        metrics = [c.name for c in result.columns] or ["(none)"]
        primary = [c.name for c in result.columns if c.primary] or metrics
        self._direction = {c.name: c.higher_is_better for c in result.columns}

        self.metric = w.Dropdown(options=metrics, value=primary[0], description="metric")
        self.a = w.Dropdown(options=labels, value=labels[0], description="A")
        b_options = [("reference", "reference")] if self.single else [(x, x) for x in labels]
        self.b = w.Dropdown(options=b_options, value=b_options[0][1] if self.single else labels[1], description="B")
        self.order = w.ToggleButtons(options=ORDERS, value="worst")
        self.filter = w.Dropdown(options=FILTERS, value="all", description="show")
        self.threshold = w.FloatText(value=0.5, description="threshold", step=0.05)
        self.search = w.Text(description="search", tooltip="text in the prompt, the outputs or the reference")
        self.rows = w.BoundedIntText(value=rows, min=1, max=10_000, description="rows")
        self.count = w.HTML()
        self.table = w.HTML()
        self.example = w.Dropdown(options=[], description="example")
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="6em"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="6em"))
        self.diff = w.HTML()
        legend = " · ".join(f"{t['label']} = {esc(t['name'])}" for t in result.targets)
        self.root = w.VBox(
            [
                w.HTML(f"<b>{esc(result.ref or 'eval')}</b> · {legend}"),
                w.HBox([self.metric, self.a, self.b]),
                w.HBox([self.order, self.rows]),
                w.HBox([self.filter, self.threshold, self.search]),
                self.count,
                self.table,
                w.HBox([self.prev_button, self.example, self.next_button]),
                self.diff,
            ]
        )
        self._closed = False
        self._controls = (self.metric, self.a, self.b, self.order, self.filter, self.threshold, self.search, self.rows)
        for c in self._controls:
            c.observe(self._on_change, names=["value"])
        self.example.observe(self._on_example, names=["value"])
        self.prev_button.on_click(self._on_prev)
        self.next_button.on_click(self._on_next)
        self.refresh()

    # ------------------------------------------------------------------ data

    def _score(self, side: str, i: int) -> float | None:
        if side == "reference":
            return None
        v = self._by[side][i].get(self.metric.value)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    def _delta(self, i: int) -> float | None:
        a, b = self._score(self.a.value, i), self._score(self.b.value, i)
        return None if a is None or b is None else b - a

    def _text(self, side: str, i: int) -> str:
        row = self._by[self.a.value][i]
        return str(row.get("reference") or "") if side == "reference" else str(self._by[side][i].get("output") or "")

    def _badness(self, i: int) -> float:
        """Larger is worse: B's loss against A, or (one target) a low score."""
        up = self._direction.get(self.metric.value)
        sign = -1.0 if up is False else 1.0
        d = self._delta(i) if not self.single else self._score(self.a.value, i)
        if d is None:
            return -math.inf
        return -sign * d

    def _keep(self, i: int) -> bool:
        mode, t = self.filter.value, self.threshold.value
        a, b, d = self._score(self.a.value, i), self._score(self.b.value, i), self._delta(i)
        if mode == "changed" and not (d is not None and d != 0):
            return False
        if mode == "b_below" and not (b is not None and b <= t):
            return False
        if mode == "a_below" and not (a is not None and a <= t):
            return False
        if mode == "delta_at_least" and not (d is not None and abs(d) >= t):
            return False
        needle = self.search.value.strip().casefold()
        if needle:
            row = self._by[self.a.value][i]
            hay = " ".join(
                [str(row.get("prompt") or ""), str(row.get("reference") or "")]
                + [self._text(s, i) for s in (self.a.value, self.b.value)]
            ).casefold()
            if needle not in hay:
                return False
        return True

    @property
    def visible(self) -> list[int]:
        """Example ids that pass the filters, in the chosen order (all of them, not only the shown rows)."""
        kept = [i for i in self._examples if self._keep(i)]
        if self.order.value == "worst":
            kept.sort(key=lambda i: (-self._badness(i), i))
        elif self.order.value == "best":
            kept.sort(key=lambda i: (self._badness(i), i))
        return kept

    # ------------------------------------------------------------------ rendering

    def refresh(self) -> None:
        ids = self.visible
        shown = ids[: self.rows.value]
        self.count.value = f"{len(ids)} of {len(self._examples)} examples · showing {len(shown)}"
        a, b = self.a.value, self.b.value
        head = ["#", "prompt", "reference", f"{a} output", f"{b} output", f"{a}", f"{b}", "Δ"]
        body = []
        for i in shown:
            row = self._by[a][i]
            cells = [
                i,
                row.get("prompt"),
                row.get("reference"),
                self._text(a, i),
                self._text(b, i) if b != "reference" else "",
                _num(self._score(a, i)),
                _num(self._score(b, i)),
                _num(self._delta(i)),
            ]
            body.append("<tr>" + "".join(f"<td style='{CELL}'>{esc(c)}</td>" for c in cells) + "</tr>")
        header = "".join(f"<th style='{CELL}'>{esc(h)}</th>" for h in head)
        self.table.value = (
            f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )
        options = [(f"#{i}", i) for i in ids]
        current = self.example.value
        self.example.options = options
        if options:
            self.example.value = current if current in ids else ids[0]
        self._render_diff()

    def _render_diff(self) -> None:
        i = self.example.value
        if i is None:
            self.diff.value = "<i>no example matches</i>"
            return
        a, b = self.a.value, self.b.value
        row = self._by[a][i]
        self.diff.value = (
            f"<div><b>#{i}</b> prompt:<pre style='white-space:pre-wrap;margin:2px 0'>{esc(row.get('prompt'))}</pre>"
            f"reference: <code>{esc(row.get('reference'))}</code><br>"
            f"{esc(a)} → {esc(b)}: <span style='font-family:monospace;white-space:pre-wrap'>"
            f"{word_diff(self._text(a, i), self._text(b, i))}</span></div>"
        )

    # ------------------------------------------------------------------ events

    def _on_change(self, change) -> None:
        self.refresh()

    def _on_example(self, change) -> None:
        self._render_diff()

    def _step(self, by: int) -> None:
        ids = [v for _, v in self.example.options]
        if not ids:
            return
        at = ids.index(self.example.value) if self.example.value in ids else 0
        self.example.value = ids[max(0, min(len(ids) - 1, at + by))]

    def _on_prev(self, _button) -> None:
        self._step(-1)

    def _on_next(self, _button) -> None:
        self._step(1)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Unhook every observer and close the widgets (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        for c in self._controls:
            c.unobserve(self._on_change, names=["value"])
        self.example.unobserve(self._on_example, names=["value"])
        self.prev_button.on_click(self._on_prev, remove=True)
        self.next_button.on_click(self._on_next, remove=True)
        close_tree(self.root)
