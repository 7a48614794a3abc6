"""The live panel of a background job: progress, ETA, a loss curve (train and eval), a cancel button.

Stock ipywidgets in a plain class: the progress bar and texts are HTML/IntProgress
widgets and the loss curve is an inline SVG (no plotting library to import, one
small string per redraw). Events arrive on the job's thread; redraws are
throttled to a few per second, and the final state is drawn at once.
"""

from __future__ import annotations

import threading
from typing import Any

from ...display.html import esc
from .panel import Panel
from .throttle import Throttle

__all__ = ["JobPanel", "loss_curve_svg", "format_seconds"]

FINAL = ("succeeded", "failed", "cancelled")
COLORS = {"train": "#1f77b4", "eval": "#ff7f0e"}


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def loss_curve_svg(
    series: dict[str, list[tuple[float, float]]], max_step: float | None, width: int = 380, height: int = 130
) -> str:
    """A small line chart of ``{"train": [(step, loss), …], "eval": […]}`` as an SVG string."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return ""
    pad_l, pad_r, pad_t, pad_b = 44, 8, 8, 20
    x_max = max(max_step or 0, max(s for s, _ in points), 1)
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5

    def xy(step: float, value: float) -> str:
        x = pad_l + (width - pad_l - pad_r) * step / x_max
        y = pad_t + (height - pad_t - pad_b) * (hi - value) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'style="font:10px sans-serif;background:#fafafa">',
        f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" stroke="#999"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#999"/>',
        f'<text x="2" y="{pad_t + 8}">{hi:.3g}</text><text x="2" y="{height - pad_b}">{lo:.3g}</text>',
        f'<text x="{pad_l}" y="{height - 4}">0</text>'
        f'<text x="{width - pad_r}" y="{height - 4}" text-anchor="end">step {x_max:g}</text>',
    ]
    for i, (label, pts) in enumerate(series.items()):
        if not pts:
            continue
        color = COLORS.get(label, "#555")
        coords = [xy(s, v) for s, v in pts]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(coords)}"/>')
        cx, cy = coords[-1].split(",")
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        parts.append(
            f'<text x="{width - pad_r - 90}" y="{pad_t + 10 + 12 * i}" fill="{color}">{label} {pts[-1][1]:.4g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _result_html(job: Any) -> str | None:
    """The finished job's result as it displays itself (an eval's table, a fine-tune's summary)."""
    bundle = getattr(job.result, "_repr_mimebundle_", None)
    if bundle is None:
        return None
    data = bundle()
    data = data[0] if isinstance(data, tuple) else data
    return data.get("text/html")


class JobPanel(Panel):
    """A live view of a ``Job``; display it, or let the job display as it (the ``"job"`` view)."""

    def __init__(self, job: Any, interval: float = 0.3) -> None:
        import ipywidgets as w

        self.job = job
        self.renders = 0
        self._lock = threading.Lock()
        self._status = job.status
        self._progress: dict[str, Any] = {}
        self._series: dict[str, list[tuple[float, float]]] = {"train": [], "eval": []}
        self._message = ""
        self._outcome = ""
        self.title = w.HTML()
        self.bar = w.IntProgress(min=0, max=1, value=0, layout=w.Layout(width="340px"))
        self.cancel_button = w.Button(
            description="Cancel", button_style="danger", icon="stop", tooltip="Stop and keep a checkpoint"
        )
        self.stats = w.HTML()
        self.curve = w.HTML()
        self.footer = w.HTML()
        self.root = w.VBox([self.title, w.HBox([self.bar, self.cancel_button]), self.stats, self.curve, self.footer])
        self.cancel_button.on_click(self._on_cancel)
        self._throttle = Throttle(self._render, interval)
        self._unsubscribe = job.add_listener(self._on_event)
        self._render()

    def _on_event(self, job: Any, event: dict[str, Any]) -> None:
        kind = event.get("type")
        with self._lock:
            if kind == "status":
                self._status = event["status"]
                self._outcome = event.get("result") or event.get("error") or ""
            elif kind == "progress":
                self._progress.update({k: v for k, v in event.items() if k not in ("type", "time")})
            elif kind == "log":
                for label in ("train", "eval"):
                    if f"{label}/loss" in event:
                        self._series[label].append((float(event.get("step", 0)), float(event[f"{label}/loss"])))
            elif kind == "message":
                self._message = str(event.get("text", ""))
        if kind == "status" and event["status"] in FINAL:
            self._throttle.flush()
        else:
            self._throttle()

    def _render(self) -> None:
        with self._lock:
            status, p, msg, outcome = self._status, dict(self._progress), self._message, self._outcome
            series = {k: list(v) for k, v in self._series.items()}
        self.renders += 1
        step, total = int(p.get("step") or 0), int(p.get("max_steps") or 0)
        color = {"succeeded": "green", "failed": "#c00", "cancelled": "#b60"}.get(status, "#333")
        self.title.value = (
            f"<b>{esc(self.job.kind)} {esc(self.job.name)}</b> · <span style='color:{color}'>{esc(status)}</span>"
            + (f" · <i>{esc(msg)}</i>" if msg and status not in FINAL else "")
        )
        self.bar.max, self.bar.value = max(total, 1), min(step, max(total, 1))
        bits = [f"step {step}/{total or '?'}"]
        if p.get("epoch") is not None:
            bits.append(f"epoch {p['epoch']:.2f}")
        if p.get("steps_per_second"):
            bits.append(f"{p['steps_per_second']:.2f} steps/s")
        bits.append(f"elapsed {format_seconds(p.get('elapsed_seconds'))}")
        if status not in FINAL:
            bits.append(f"ETA {format_seconds(p.get('eta_seconds'))}")
        for label in ("train", "eval"):
            if series[label]:
                bits.append(f"{label} loss {series[label][-1][1]:.4f}")
        self.stats.value = esc(" · ".join(bits))
        self.curve.value = loss_curve_svg(series, total or None)
        self.cancel_button.disabled = status in FINAL or status == "cancelling"
        if status in FINAL:
            color = "green" if status == "succeeded" else "#c00"
            shown = _result_html(self.job) if status == "succeeded" else None
            self.footer.value = shown or f"<span style='color:{color}'>{esc(outcome)}</span>"

    def _on_cancel(self, _button: Any) -> None:
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling…"
        self.job.cancel()

    def close(self) -> None:
        """Stop listening to the job and close the widgets."""
        self._unsubscribe()
        self._throttle.cancel()
        self.cancel_button.on_click(self._on_cancel, remove=True)
        row = self.root.children[1]
        for widget in (self.title, self.bar, self.cancel_button, self.stats, self.curve, self.footer, row, self.root):
            widget.close()
