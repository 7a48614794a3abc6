"""The model-selection leaderboard of ``%model compare`` as a sortable table with a per-example drill-down.

Stock ipywidgets composed in a plain class, like ``EvalPanel``. The table is the
``Leaderboard``'s rows (one per candidate: quality with its paired-bootstrap interval
against the best, latency, throughput, card facts, cost); a button per column sorts by
it, a second click reverses. A row's ▸ button (or the ``candidate`` dropdown) opens
the drill-down: that candidate's answers beside another candidate's (the best by
default), the rows where it loses most first, so a gap in the table can be read
example by example. The panel reads only the leaderboard; it never touches the
registry.
"""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as w

from ...display.html import esc
from .eval_compare import CELL, word_diff
from .panel import Panel, close_tree

__all__ = ["LeaderboardPanel", "LOWER_IS_BETTER"]

LOWER_IS_BETTER = ("p50 latency s", "p95 latency s", "ttft p50 s", "ttft p95 s", "$ / 1k requests")
"""Operational columns where less is better: their first click sorts ascending (best first)."""

_HIDDEN = {"version"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if isinstance(value, float) and math.isnan(value) else float(value)


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_num(v) is not None for v in value):
        return f"[{value[0]:+.3f}, {value[1]:+.3f}]"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000:
        return f"{value:,}"
    return "-" if value is None else str(value)


class LeaderboardPanel(Panel):
    """``LeaderboardPanel(board)``: see the module docstring; ``order`` lists the candidates as shown."""

    def __init__(self, board: Any, rows: int = 10) -> None:
        self.board = board
        self._rows = {r["candidate"]: r for r in board.rows}
        self._best = board.winner if board.rows else None
        first = board.rows[0] if board.rows else {}
        self.columns = [c for c in first if c not in _HIDDEN and not c.endswith(" vs best")]
        self._quality = [c for c in first if f"{c} vs best" in first]
        self._higher = dict(getattr(board, "higher_is_better", {}) or {})
        self._higher.setdefault(board.primary, True)
        labels = dict(getattr(board, "labels", {}) or {})
        self._by: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in self._rows}
        by_label = {lab: cand for cand, lab in labels.items()}
        for rec in getattr(board, "examples", []) or []:
            cand = by_label.get(rec.get("target"))
            if cand in self._by:
                self._by[cand][rec["example"]] = rec
        self.sort_column = board.primary if board.primary in self.columns else None
        self.descending = self._default_descending(self.sort_column) if self.sort_column else True

        self.sort_buttons = {c: w.Button(description=c, layout=w.Layout(width="auto")) for c in self.columns}
        self.drill_buttons = {
            c: w.Button(description=f"▸ {c}", tooltip=f"drill down into {c}", layout=w.Layout(width="auto"))
            for c in self._rows
        }
        self.table = w.HTML()
        cands = list(self._rows)
        self.candidate = w.Dropdown(options=cands, value=self._runner_up(), description="candidate")
        self.versus = w.Dropdown(options=cands, value=self._best, description="versus")
        metrics = self._quality or ["(none)"]
        self.metric = w.Dropdown(options=metrics, value=metrics[0], description="metric")
        self.only_differ = w.Checkbox(value=False, description="only rows where outputs differ")
        self.limit = w.BoundedIntText(value=rows, min=1, max=10_000, description="rows")
        self.count = w.HTML()
        self.drill = w.HTML()
        title = f"<b>leaderboard by {esc(board.primary)}</b> · {esc(board.eval_ref or '')}"
        selection = getattr(board, "selection", None)
        if selection is not None:
            title += f" · selected {esc(board.winner)} as {esc(selection.metadata.get('alias'))}"
        self.root = w.VBox(
            [
                w.HTML(title),
                w.HBox([w.HTML("sort by:"), *self.sort_buttons.values()], layout=w.Layout(flex_flow="row wrap")),
                self.table,
                w.HBox([w.HTML("drill down:"), *self.drill_buttons.values()], layout=w.Layout(flex_flow="row wrap")),
                w.HBox([self.candidate, self.versus, self.metric]),
                w.HBox([self.only_differ, self.limit]),
                self.count,
                self.drill,
            ]
        )
        self._closed = False
        self._sorters = {c: self._sorter(c) for c in self.columns}
        for c, b in self.sort_buttons.items():
            b.on_click(self._sorters[c])
        self._drillers = {c: self._driller(c) for c in self._rows}
        for c, b in self.drill_buttons.items():
            b.on_click(self._drillers[c])
        self._controls = (self.candidate, self.versus, self.metric, self.only_differ, self.limit)
        for c in self._controls:
            c.observe(self._on_change, names=["value"])
        self.render_table()
        self.render_drill()

    # ------------------------------------------------------------------ sorting

    def _default_descending(self, column: str) -> bool:
        """Best first: descending unless less is better (latency, cost, a lower-is-better metric)."""
        if column in self._higher:
            return bool(self._higher[column])
        return column not in LOWER_IS_BETTER

    @property
    def order(self) -> list[str]:
        """Candidates in the shown order; rows without a value in the sort column go last, in board order."""
        cands = list(self._rows)
        if self.sort_column is None:
            return cands
        col, desc = self.sort_column, self.descending
        numeric = [c for c in cands if _num(self._rows[c].get(col)) is not None]
        if numeric or all(self._rows[c].get(col) is None for c in cands):
            rest = [c for c in cands if c not in numeric]
            return sorted(numeric, key=lambda c: _num(self._rows[c][col]), reverse=desc) + rest
        has = [c for c in cands if self._rows[c].get(col) is not None]
        rest = [c for c in cands if c not in has]
        return sorted(has, key=lambda c: str(self._rows[c][col]).casefold(), reverse=desc) + rest

    def sort_by(self, column: str) -> None:
        """Sort by ``column``; the same column again reverses the order."""
        if column not in self.columns:
            raise KeyError(column)
        if column == self.sort_column:
            self.descending = not self.descending
        else:
            self.sort_column, self.descending = column, self._default_descending(column)
        self.render_table()

    def _sorter(self, column: str):
        def on_click(_button) -> None:
            self.sort_by(column)

        return on_click

    def _driller(self, candidate: str):
        def on_click(_button) -> None:
            self.candidate.value = candidate

        return on_click

    def _runner_up(self) -> str | None:
        cands = list(self._rows)
        return cands[1] if len(cands) > 1 else (cands[0] if cands else None)

    # ------------------------------------------------------------------ rendering

    def _cell(self, row: dict[str, Any], column: str) -> str:
        text = _fmt(row.get(column))
        interval = row.get(f"{column} vs best")
        if interval is None or row["candidate"] == self._best:
            return esc(text) + (" ★" if column in self._quality and row["candidate"] == self._best else "")
        lo, hi = interval
        up = self._higher.get(column, True)
        below = (hi < 0) if up else (lo > 0)  # the whole interval on the worse side of the best
        mark = " <span title='significantly worse than the best' style='color:#b00'>▼</span>" if below else ""
        return f"{esc(text)} <span style='color:#666'>{esc(_fmt(interval))}</span>{mark}"

    def render_table(self) -> None:
        arrow = "▼" if self.descending else "▲"
        for c, b in self.sort_buttons.items():
            b.description = f"{c} {arrow}" if c == self.sort_column else c
            b.button_style = "info" if c == self.sort_column else ""
        head = "".join(
            f"<th style='{CELL}'>{esc(c)}{' (Δ vs best, 95% CI)' if c in self._quality else ''}</th>"
            for c in self.columns
        )
        body = []
        for cand in self.order:
            row = self._rows[cand]
            shade = " style='background:#eef6ee'" if cand == self._best else ""
            cells = "".join(f"<td style='{CELL}'>{self._cell(row, c)}</td>" for c in self.columns)
            body.append(f"<tr{shade}>{cells}</tr>")
        self.table.value = (
            f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )

    def _score(self, cand: str | None, i: int) -> float | None:
        rec = self._by.get(cand, {}).get(i) if cand else None
        return _num(rec.get(self.metric.value)) if rec else None

    @property
    def drill_examples(self) -> list[int]:
        """Example ids of the drill-down, worst for ``candidate`` (against ``versus``) first; all, not only shown."""
        cand, other = self.candidate.value, self.versus.value
        mine, theirs = self._by.get(cand, {}), self._by.get(other, {})
        ids = sorted(set(mine) & set(theirs)) if cand != other else sorted(mine)
        if self.only_differ.value:
            ids = [i for i in ids if (mine[i].get("output") or "") != (theirs[i].get("output") or "")]
        sign = -1.0 if self._higher.get(self.metric.value, True) is False else 1.0

        def loss(i: int) -> float:
            a, b = self._score(cand, i), self._score(other, i)
            return -math.inf if a is None or b is None else sign * (b - a)

        return sorted(ids, key=lambda i: (-loss(i), i))

    def render_drill(self) -> None:
        cand, other = self.candidate.value, self.versus.value
        ids = self.drill_examples
        shown = ids[: self.limit.value]
        total = len(self._by.get(cand, {}))
        self.count.value = f"{len(ids)} of {total} examples · showing {len(shown)}"
        if not shown:
            self.drill.value = "<i>no example matches</i>"
            return
        metric = self.metric.value
        head = [
            "#",
            "prompt",
            "reference",
            f"{cand} (words changed from {other})",
            f"{other}",
            metric,
            f"{metric} ({other})",
            "Δ",
        ]
        body = []
        for i in shown:
            mine, theirs = self._by[cand][i], self._by[other][i]
            a, b = self._score(cand, i), self._score(other, i)
            delta = "-" if a is None or b is None else f"{a - b:+.3g}"
            cells = [
                esc(i),
                esc(mine.get("prompt")),
                esc(mine.get("reference")),
                word_diff(str(theirs.get("output") or ""), str(mine.get("output") or "")),
                esc(theirs.get("output")),
                esc(_fmt(a)),
                esc(_fmt(b)),
                esc(delta),
            ]
            body.append("<tr>" + "".join(f"<td style='{CELL}'>{c}</td>" for c in cells) + "</tr>")
        header = "".join(f"<th style='{CELL}'>{esc(h)}</th>" for h in head)
        self.drill.value = (
            f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )

    # ------------------------------------------------------------------ events and lifecycle

    def _on_change(self, _change) -> None:
        self.render_drill()

    def close(self) -> None:
        """Unhook every observer and click handler and close the widgets (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        for c in self._controls:
            c.unobserve(self._on_change, names=["value"])
        for c, b in self.sort_buttons.items():
            b.on_click(self._sorters[c], remove=True)
        for c, b in self.drill_buttons.items():
            b.on_click(self._drillers[c], remove=True)
        close_tree(self.root)
