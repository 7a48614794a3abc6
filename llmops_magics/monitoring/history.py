"""A deployment's monitor runs over time: each check's value against its thresholds, as small plots.

Every ``monitor`` version keeps its checks' status, value and warn/fail thresholds in its
metadata (``values``), so the history reads the registry's records only, never a blob. One
SVG per check: the values in run order, the warn and fail lines, each point coloured by the
status it had; the latest status is what the sidebar marks. ``%monitor history NAME``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ..context.workspaces import Workspace, current
from ..display.html import mimebundle
from ..errors import NotFoundError

__all__ = ["MonitorHistory", "monitor_history", "latest_monitor"]

COLOURS = {"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828", "skip": "#9e9e9e"}


@dataclass(frozen=True)
class Run:
    ref: str
    created_at: float
    status: str
    values: Mapping[str, Mapping[str, Any]]


def _runs(reg: Any, name: str, limit: int) -> list[Run]:
    try:
        latest = reg.resolve(f"monitor://{name}")
    except NotFoundError:
        return []
    runs = []
    for version in range(max(1, latest.version - limit + 1), latest.version + 1):
        try:
            art = reg.resolve(f"monitor://{name}/{version}")
        except NotFoundError:
            continue
        meta = art.metadata
        runs.append(Run(art.ref, art.created_at, str(meta.get("status", "?")), dict(meta.get("values") or {})))
    return runs


def latest_monitor(reg: Any, name: str) -> dict[str, Any] | None:
    """The newest monitor run of a deployment, as the sidebar shows it (None when never monitored)."""
    try:
        art = reg.resolve(f"monitor://{name}")
    except NotFoundError:
        return None
    meta = art.metadata
    return {"ref": art.ref, "status": meta.get("status"), "failed": list(meta.get("failed") or [])}


def monitor_history(name: str, *, limit: int = 50, workspace: Workspace | None = None) -> MonitorHistory:
    """The last ``limit`` monitor runs of deployment ``name``, one plot per check."""
    ws = workspace or current()
    runs = _runs(ws.registry, name, limit)
    if not runs:
        raise NotFoundError(f"deployment {name!r} has no monitor runs yet; run %monitor {name}")
    return MonitorHistory(name, runs)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _plot(check: str, runs: Sequence[Run], width: int = 320, height: int = 90) -> str:
    points = [(i, runs[i].values.get(check) or {}) for i in range(len(runs))]
    values = [v for _, c in points if (v := _number(c.get("value"))) is not None]
    lines = {k: _number(points[-1][1].get(k)) for k in ("warn", "fail")}
    span = values + [v for v in lines.values() if v is not None]
    if not span:
        return f'<div class="llmops-history-empty">{escape(check)}: no values</div>'
    low, high = min(span), max(span)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad
    x = lambda i: 8 + (width - 16) * (i / max(1, len(runs) - 1))
    y = lambda v: 8 + (height - 16) * (1 - (v - low) / (high - low))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for kind, colour in (("warn", COLOURS["warn"]), ("fail", COLOURS["fail"])):
        if lines[kind] is not None:
            parts.append(
                f'<line x1="8" x2="{width - 8}" y1="{y(lines[kind]):.1f}" y2="{y(lines[kind]):.1f}" '
                f'stroke="{colour}" stroke-dasharray="4 3"><title>{kind} {lines[kind]:.4g}</title></line>'
            )
    path = [(x(i), y(v)) for i, c in points if (v := _number(c.get("value"))) is not None]
    if len(path) > 1:
        parts.append(
            '<polyline fill="none" stroke="#607d8b" points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in path) + '"/>'
        )
    for i, c in points:
        v = _number(c.get("value"))
        if v is not None:
            status = str(c.get("status", "skip"))
            tip = escape(f"{runs[i].ref}: {v:.4g} ({status})")
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{COLOURS.get(status, "#9e9e9e")}">'
                f"<title>{tip}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class MonitorHistory:
    name: str
    runs: list[Run]

    @property
    def checks(self) -> list[str]:
        return list(dict.fromkeys(c for run in self.runs for c in run.values))

    def series(self, check: str) -> list[float | None]:
        return [_number((run.values.get(check) or {}).get("value")) for run in self.runs]

    def __str__(self) -> str:
        head = f"{self.name}: {len(self.runs)} monitor run(s), latest {self.runs[-1].ref} {self.runs[-1].status}"
        rows = [f"  {c}: " + ", ".join("-" if v is None else f"{v:.4g}" for v in self.series(c)) for c in self.checks]
        return "\n".join([head, *rows])

    def _repr_mimebundle_(self, include=None, exclude=None):
        last = self.runs[-1]
        cells = "".join(
            f'<div class="llmops-history-check"><div><b>{escape(c)}</b> '
            f'<span style="color:{COLOURS.get(str((last.values.get(c) or {}).get("status")), "#9e9e9e")}">'
            f"{escape(str((last.values.get(c) or {}).get('status', '')))}</span></div>{_plot(c, self.runs)}</div>"
            for c in self.checks
        )
        html = (
            f"<div class='llmops-history'><p><b>{escape(self.name)}</b>: {len(self.runs)} monitor run(s), "
            f"latest {escape(last.ref)} <b style='color:{COLOURS.get(last.status, '#000')}'>{escape(last.status)}</b>"
            f"</p><div style='display:flex;flex-wrap:wrap;gap:12px'>{cells}</div></div>"
        )
        return mimebundle(str(self), html)
