"""A prompts x models grid of an eval, cell by cell, with the filters promptfoo users look for.

``%eval --model M1,M2 --prompt P1,P2 --data …`` answers every row in every (prompt,
model) cell. This panel puts one row per example and one column per cell: the output,
pass or fail on the chosen metric (a value at or above the threshold passes; below, for
a lower-is-better metric), tokens, latency and cost at the ``[tool.llmops.prices]``
prices. "outputs differ" keeps the rows where the cells do not all say the same thing;
"failures" the rows where some cell fails. A summary line per cell gives its pass rate,
mean latency, tokens and cost. Stock ipywidgets in a plain class, like ``EvalPanel``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ipywidgets as w

from ...display.html import esc
from .eval_compare import CELL
from .panel import Panel, close_tree

__all__ = ["GridPanel", "FILTERS", "cell_cost"]

FILTERS = (("all rows", "all"), ("outputs differ", "differ"), ("failures", "failures"))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if isinstance(value, float) and math.isnan(value) else float(value)


def cell_cost(record: Mapping[str, Any], price: Mapping[str, float] | None) -> float | None:
    """Dollars for one answer at ``price`` (per million input/output tokens); ``None`` without token counts."""
    pt, ct = _num(record.get("prompt_tokens")), _num(record.get("completion_tokens"))
    if pt is None or ct is None:
        return None
    price = price or {"input": 0.0, "output": 0.0}
    return (pt * price["input"] + ct * price["output"]) / 1e6


class GridPanel(Panel):
    """``GridPanel(result)``; ``visible`` lists the example ids that pass the filters, in data order."""

    def __init__(self, result: Any, rows: int = 20, prices: Mapping[str, Mapping[str, float]] | None = None) -> None:
        from ...evaluation.usage import price_table
        from ...models.leaderboard import price_of

        prices = price_table() if prices is None else dict(prices)  # None: malformed, so no dollars
        self.result = result
        self.cells = list(result.targets)
        self._by = {
            c["label"]: {r["example"]: r for r in result.records if r["target"] == c["label"]} for c in self.cells
        }
        self._price = {c["label"]: price_of(c.get("model"), prices) if prices is not None else None for c in self.cells}
        self._examples = sorted(set().union(*(set(v) for v in self._by.values()))) if self._by else []
        quality = [c for c in result.columns if c.higher_is_better is not None and c.name != "latency_s"]
        self._direction = {c.name: c.higher_is_better for c in result.columns}
        names = [c.name for c in quality] or ["(none)"]

        self.metric = w.Dropdown(options=names, value=names[0], description="metric")
        self.threshold = w.FloatText(value=1.0 if names[0] == "exact_match" else 0.5, step=0.05, description="pass at")
        self.filter = w.ToggleButtons(options=FILTERS, value="all")
        self.search = w.Text(description="search", tooltip="text in an input, output or reference")
        self.rows = w.BoundedIntText(value=rows, min=1, max=10_000, description="rows")
        self.page = 0
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="6em"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="6em"))
        self.summary = w.HTML()
        self.count = w.HTML()
        self.table = w.HTML()
        self.root = w.VBox(
            [
                w.HTML(f"<b>{esc(getattr(result, 'ref', None) or 'eval')}</b> · {len(self.cells)} cells"),
                w.HBox([self.metric, self.threshold]),
                w.HBox([self.filter, self.search]),
                self.summary,
                w.HBox([self.prev_button, self.count, self.next_button, self.rows]),
                self.table,
            ]
        )
        self._closed = False
        self._controls = (self.metric, self.threshold, self.filter, self.search, self.rows)
        for c in self._controls:
            c.observe(self._on_change, names=["value"])
        self.prev_button.on_click(self._on_prev)
        self.next_button.on_click(self._on_next)
        self.refresh()

    # ------------------------------------------------------------------ data

    def passed(self, label: str, i: int) -> bool | None:
        """Whether cell ``label`` passes on example ``i`` (``None``: no value)."""
        rec = self._by[label].get(i)
        value = _num(rec.get(self.metric.value)) if rec else None
        if value is None:
            return None
        t = self.threshold.value
        return value <= t if self._direction.get(self.metric.value) is False else value >= t

    def cost(self, label: str, i: int) -> float | None:
        rec = self._by[label].get(i)
        return cell_cost(rec, self._price[label]) if rec and self._price[label] is not None else None

    def _keep(self, i: int) -> bool:
        labels = [c["label"] for c in self.cells]
        mode = self.filter.value
        if mode == "differ":
            outputs = {(self._by[lb].get(i) or {}).get("output") for lb in labels}
            if len(outputs) < 2:
                return False
        if mode == "failures" and not any(self.passed(lb, i) is False for lb in labels):
            return False
        needle = self.search.value.strip().casefold()
        if needle:
            recs = [self._by[lb].get(i) or {} for lb in labels]
            hay = " ".join(str(r.get(k) or "") for r in recs for k in ("prompt", "output", "reference")).casefold()
            if needle not in hay:
                return False
        return True

    @property
    def visible(self) -> list[int]:
        return [i for i in self._examples if self._keep(i)]

    def cell_summary(self, label: str) -> dict[str, Any]:
        """Pass rate on the metric, mean latency (s), tokens and cost (dollars) of one cell over all examples."""
        ids = sorted(self._by[label])
        verdicts = [p for p in (self.passed(label, i) for i in ids) if p is not None]
        lat = [v for v in (_num(self._by[label][i].get("latency_s")) for i in ids) if v is not None]
        costs = [c for c in (self.cost(label, i) for i in ids) if c is not None]
        recs = [self._by[label][i] for i in ids]
        tokens = [(_num(r.get("prompt_tokens")) or 0.0) + (_num(r.get("completion_tokens")) or 0.0) for r in recs]
        return {
            "pass_rate": sum(verdicts) / len(verdicts) if verdicts else None,
            "latency_s": sum(lat) / len(lat) if lat else None,
            "tokens": sum(tokens),
            "cost": sum(costs) if costs else None,
        }

    # ------------------------------------------------------------------ rendering

    def _head(self, cell: Mapping[str, Any]) -> str:
        return f"{esc(cell['label'])}: {esc(cell.get('prompt'))} on {esc(cell.get('model'))}"

    def refresh(self) -> None:
        ids = self.visible
        per = max(1, self.rows.value)
        pages = max(1, math.ceil(len(ids) / per))
        self.page = min(self.page, pages - 1)
        shown = ids[self.page * per : (self.page + 1) * per]
        self.count.value = f"{len(ids)} of {len(self._examples)} rows · page {self.page + 1} of {pages}"
        parts = []
        for c in self.cells:
            s = self.cell_summary(c["label"])
            rate = "-" if s["pass_rate"] is None else f"{100 * s['pass_rate']:.0f}% pass"
            lat = "-" if s["latency_s"] is None else f"{1000 * s['latency_s']:.0f} ms"
            cost = "-" if s["cost"] is None else f"${s['cost']:.6f}"
            parts.append(f"<li>{self._head(c)}: {rate}, {lat} mean, {s['tokens']:.0f} tokens, {cost}</li>")
        self.summary.value = f"<ul style='margin:2px 0'>{''.join(parts)}</ul>"
        head = "".join(f"<th style='{CELL}'>{h}</th>" for h in ["#", "reference", *map(self._head, self.cells)])
        body = []
        for i in shown:
            first = next((self._by[c["label"]][i] for c in self.cells if i in self._by[c["label"]]), {})
            cells = [f"<td style='{CELL}'>{esc(i)}</td>", f"<td style='{CELL}'>{esc(first.get('reference'))}</td>"]
            for c in self.cells:
                cells.append(f"<td style='{CELL}'>{self._cell(c['label'], i)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self.table.value = (
            f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )

    def _cell(self, label: str, i: int) -> str:
        rec = self._by[label].get(i)
        if rec is None:
            return ""
        verdict = self.passed(label, i)
        mark = {True: "<b style='color:#070'>✓</b>", False: "<b style='color:#b00'>✗</b>", None: "·"}[verdict]
        facts = []
        if _num(rec.get("completion_tokens")) is not None:
            facts.append(f"{_num(rec.get('prompt_tokens')) or 0:.0f}+{_num(rec['completion_tokens']):.0f} tok")
        if _num(rec.get("latency_s")) is not None:
            facts.append(f"{1000 * _num(rec['latency_s']):.0f} ms")
        cost = self.cost(label, i)
        if cost is not None:
            facts.append(f"${cost:.6f}")
        return f"{mark} {esc(rec.get('output'))}<br><span style='color:#666'>{esc(' · '.join(facts))}</span>"

    # ------------------------------------------------------------------ events and lifecycle

    def _on_change(self, _change) -> None:
        self.page = 0
        self.refresh()

    def _on_prev(self, _button) -> None:
        self.page = max(0, self.page - 1)
        self.refresh()

    def _on_next(self, _button) -> None:
        self.page += 1
        self.refresh()

    def close(self) -> None:
        """Unhook every observer and click handler and close the widgets (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        for c in self._controls:
            c.unobserve(self._on_change, names=["value"])
        self.prev_button.on_click(self._on_prev, remove=True)
        self.next_button.on_click(self._on_next, remove=True)
        close_tree(self.root)
