"""Small static charts as SVG text: bars with confidence intervals, per-example deltas, lines over time.

Results draw themselves as pictures people would rather look at than read (an eval's
metric means with their CIs, an A/B comparison's per-example deltas, a fine-tune's loss
curves, a deployment's latency and throughput). A static SVG rather than a widget or a
plotting library: it shows in every front end (JupyterLab, Notebook 7, VS Code, nbviewer,
a saved ``.ipynb`` on GitHub) with no JavaScript, costs no dependency (matplotlib is not
one), and the sidebar shows the very same picture from a route.

In a notebook the picture rides twice in the mimebundle: as ``image/svg+xml`` (for
front ends and converters that pick images) and inside the HTML as an ``<img>`` with a
``data:`` URL, since JupyterLab shows the richest type, HTML, and an ``<img>`` runs
nothing. Every text in a chart (metric names, labels) is escaped for XML.

Marks carry a class (``bar``, ``ci``, ``delta``, ``series``) and ``data-*`` values, so
tests (and anyone scraping a notebook) read the numbers back from the picture.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

__all__ = ["Chart", "ci_chart", "delta_chart", "line_chart", "stack", "with_charts", "PALETTE"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
GOOD, BAD, NEUTRAL = "#2ca02c", "#d62728", "#9e9e9e"
WIDTH = 420
FONT = "font-family:sans-serif;font-size:10px"


@dataclass(frozen=True)
class Chart:
    """One picture: a title and SVG text (``_repr_svg_`` shows it on its own in a notebook)."""

    title: str
    svg: str
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "svg": self.svg, "width": self.width, "height": self.height}

    def _repr_svg_(self) -> str:
        return self.svg


def _x(text: Any) -> str:
    return escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" style="{FONT};background:#fff">'
        f"<title>{_x(title)}</title>"
        f'<text x="4" y="12" font-weight="bold">{_x(title)}</text>{"".join(body)}</svg>'
    )


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def ci_chart(
    title: str, rows: Sequence[tuple[str, float, float | None, float | None]], *, colour_by: Any = None
) -> Chart:
    """Horizontal bars of means with their confidence intervals: ``rows`` of ``(label, mean, low, high)``.

    ``colour_by(label)`` picks a palette index (targets A, B… keep their colour across metrics).
    """
    rows = [r for r in rows if _finite(r[1])]
    label_w, pad_r, top, row_h = 150, 48, 20, 18
    height = top + row_h * max(len(rows), 1) + 18
    plot_w = WIDTH - label_w - pad_r
    values = [v for _, m, lo, hi in rows for v in (m, lo, hi) if _finite(v)] + [0.0]
    low, high = min(values), max(values)
    if high - low < 1e-12:
        high = low + 1.0
    x = lambda v: label_w + plot_w * (v - low) / (high - low)
    body = [
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 2}" y2="{height - 16}" stroke="#999"/>',
        f'<text x="{label_w}" y="{height - 4}">{_num(low)}</text>',
        f'<text x="{label_w + plot_w}" y="{height - 4}" text-anchor="end">{_num(high)}</text>',
    ]
    for i, (label, mean, lo, hi) in enumerate(rows):
        y = top + i * row_h
        colour = PALETTE[(colour_by(label) if colour_by else i) % len(PALETTE)]
        left, right = sorted((x(0), x(mean)))
        body.append(f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end">{_x(label)}</text>')
        body.append(
            f'<rect class="bar" data-label="{_x(label)}" data-value="{mean:.6g}" x="{left:.1f}" y="{y + 3}" '
            f'width="{max(right - left, 1):.1f}" height="{row_h - 6}" fill="{colour}" fill-opacity="0.75">'
            f"<title>{_x(label)}: {_num(mean)}</title></rect>"
        )
        if _finite(lo, hi):
            cy = y + row_h / 2
            body.append(
                f'<g class="ci" data-label="{_x(label)}" data-low="{lo:.6g}" data-high="{hi:.6g}" stroke="#222">'
                f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{cy:.1f}" y2="{cy:.1f}"/>'
                f'<line x1="{x(lo):.1f}" x2="{x(lo):.1f}" y1="{cy - 4:.1f}" y2="{cy + 4:.1f}"/>'
                f'<line x1="{x(hi):.1f}" x2="{x(hi):.1f}" y1="{cy - 4:.1f}" y2="{cy + 4:.1f}"/></g>'
            )
        body.append(f'<text x="{WIDTH - 4}" y="{y + 12}" text-anchor="end">{_num(mean)}</text>')
    if not rows:
        body.append(f'<text x="{label_w}" y="{top + 12}" fill="#777">no values</text>')
    return Chart(title, _svg(WIDTH, height, title, body), WIDTH, height)


def delta_chart(title: str, deltas: Sequence[tuple[Any, float]], *, higher_is_better: bool | None = True) -> Chart:
    """One bar per example, sorted, for ``(example, b - a)`` pairs: how many examples got better, how many worse.

    A mean can hide that a change helps most examples a little and ruins a few; this shows both.
    """
    pairs = sorted(((e, d) for e, d in deltas if _finite(d)), key=lambda p: p[1])
    height, top, bottom, pad_l = 150, 20, 18, 40
    plot_w, plot_h = WIDTH - pad_l - 8, height - top - bottom
    extent = max([abs(d) for _, d in pairs] + [1e-12])
    y = lambda v: top + plot_h * (extent - v) / (2 * extent)
    step = plot_w / max(len(pairs), 1)
    body = [
        f'<line x1="{pad_l}" x2="{WIDTH - 8}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{top + 8}" text-anchor="end">+{_num(extent)}</text>',
        f'<text x="{pad_l - 4}" y="{top + plot_h}" text-anchor="end">-{_num(extent)}</text>',
    ]
    up = down = 0
    for i, (example, d) in enumerate(pairs):
        good = None if higher_is_better is None or d == 0 else (d > 0) == higher_is_better
        colour = NEUTRAL if good is None else GOOD if good else BAD
        up, down = up + (d > 0), down + (d < 0)
        top_y, bottom_y = sorted((y(0), y(d)))
        body.append(
            f'<rect class="delta" data-example="{_x(example)}" data-value="{d:.6g}" x="{pad_l + i * step:.2f}" '
            f'y="{top_y:.1f}" width="{max(step - 0.5, 0.5):.2f}" height="{max(bottom_y - top_y, 0.5):.1f}" '
            f'fill="{colour}"><title>example {_x(example)}: {d:+.4g}</title></rect>'
        )
    body.append(
        f'<text x="{pad_l}" y="{height - 4}">{len(pairs)} examples: {up} up, {down} down, '
        f"{len(pairs) - up - down} unchanged</text>"
    )
    return Chart(title, _svg(WIDTH, height, title, body), WIDTH, height)


def line_chart(
    title: str, series: Mapping[str, Sequence[tuple[float, float]]], *, x_label: str = "", y_label: str = ""
) -> Chart:
    """One line per series of ``(x, y)`` points (loss by step, latency by time), each with a legend entry."""
    series = {k: [(float(a), float(b)) for a, b in v if _finite(a, b)] for k, v in series.items()}
    points = [p for v in series.values() for p in v]
    height, top, bottom, pad_l, pad_r = 150, 20, 20, 44, 8
    plot_w, plot_h = WIDTH - pad_l - pad_r, height - top - bottom
    if not points:
        body = [f'<text x="{pad_l}" y="{top + 20}" fill="#777">no points</text>']
        return Chart(title, _svg(WIDTH, height, title, body), WIDTH, height)
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    x_hi, y_hi = (x_hi if x_hi > x_lo else x_lo + 1), (y_hi if y_hi > y_lo else y_lo + 1)
    fx = lambda v: pad_l + plot_w * (v - x_lo) / (x_hi - x_lo)
    fy = lambda v: top + plot_h * (y_hi - v) / (y_hi - y_lo)
    body = [
        f'<line x1="{pad_l}" x2="{WIDTH - pad_r}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#999"/>',
        f'<line x1="{pad_l}" x2="{pad_l}" y1="{top}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{top + 8}" text-anchor="end">{_num(y_hi)}</text>',
        f'<text x="{pad_l - 4}" y="{top + plot_h}" text-anchor="end">{_num(y_lo)}</text>',
        f'<text x="{pad_l}" y="{height - 4}">{_num(x_lo)}</text>',
        f'<text x="{WIDTH - pad_r}" y="{height - 4}" text-anchor="end">{_x(x_label)} {_num(x_hi)}</text>',
        f'<text x="{pad_l + 4}" y="{top + 8}" fill="#555">{_x(y_label)}</text>',
    ]
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{fx(a):.1f},{fy(b):.1f}" for a, b in pts)
        if len(pts) == 1:
            body.append(f'<circle cx="{fx(pts[0][0]):.1f}" cy="{fy(pts[0][1]):.1f}" r="2.5" fill="{colour}"/>')
        body.append(
            f'<polyline class="series" data-name="{_x(name)}" data-n="{len(pts)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5" points="{coords}"/>'
        )
        last = f" {_num(pts[-1][1])}" if pts else ""
        body.append(
            f'<text x="{WIDTH - pad_r - 4}" y="{top + 10 + 12 * i}" text-anchor="end" fill="{colour}">'
            f"{_x(name)}{last}</text>"
        )
    return Chart(title, _svg(WIDTH, height, title, body), WIDTH, height)


def stack(charts: Sequence[Chart]) -> str:
    """Several charts as one SVG, one under the other (a mimebundle holds one ``image/svg+xml``)."""
    height = sum(c.height for c in charts) + 6 * max(len(charts) - 1, 0)
    width = max((c.width for c in charts), default=WIDTH)
    parts, y = [], 0
    for c in charts:
        parts.append(c.svg.replace("<svg ", f'<svg y="{y}" ', 1))
        y += c.height + 6
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">{"".join(parts)}</svg>'


def img_html(chart: Chart) -> str:
    """An ``<img>`` of one chart with a ``data:`` URL: a picture in HTML that runs nothing."""
    data = base64.b64encode(chart.svg.encode()).decode()
    return (
        f'<img class="llmops-chart" alt="{_x(chart.title)}" width="{chart.width}" height="{chart.height}" '
        f'src="data:image/svg+xml;base64,{data}" style="display:block;margin:4px 0"/>'
    )


def with_charts(bundle: Any, charts: Sequence[Chart]) -> Any:
    """``bundle`` (``data`` or ``(data, metadata)``) with the charts under its HTML and as ``image/svg+xml``."""
    if not charts:
        return bundle
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    data["text/html"] = data.get("text/html", "") + "".join(img_html(c) for c in charts)
    data["image/svg+xml"] = stack(charts)
    return bundle
