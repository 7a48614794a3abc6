"""The deployment monitor: live p50/p95 latency, throughput, error rate and tokens, per version.

Stock ipywidgets composed in a plain class. A daemon thread polls the request log
and ``/health`` (``monitor_snapshot``) every ``interval`` seconds (at least 0.25 s)
and touches a widget only when its text changed, so an idle deployment sends no
messages to the browser. The drift check embeds texts (seconds of CPU), so it
runs only on a click, in its own thread. ``close()`` stops the thread and unhooks
every observer.
"""

from __future__ import annotations

import threading
from typing import Any

from ...display.html import esc, money, table_html

__all__ = ["DeploymentMonitor"]

WINDOWS = [("last minute", 60.0), ("last 5 minutes", 300.0), ("last hour", 3600.0)]
COLUMNS = (
    "version",
    "requests",
    "req/s",
    "p50 ms",
    "p95 ms",
    "ttft p50 ms",
    "errors",
    "tokens in",
    "tokens out",
    "cost",
)
_COLORS = {"running": "#2e7d32", "unhealthy": "#ef6c00", "dead": "#c62828", "stopped": "#757575"}


def _num(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class DeploymentMonitor:
    def __init__(
        self, name: str, *, window_s: float = 60.0, interval: float = 1.0, workspace: Any = None, live: bool = True
    ) -> None:
        import ipywidgets as w

        self.name = name
        self.workspace = workspace
        self.interval = max(0.25, float(interval))
        self.snapshot: dict[str, Any] | None = None
        self.updates = 0
        options = WINDOWS if any(v == window_s for _, v in WINDOWS) else [*WINDOWS, (f"last {window_s:g}s", window_s)]
        self.title = w.HTML()
        self.table = w.HTML()
        self.drift_box = w.HTML()
        self.window = w.Dropdown(options=options, value=float(window_s), description="window")
        self.live = w.ToggleButton(value=live, description="live", tooltip="poll the server every second")
        self.drift_button = w.Button(description="check drift", tooltip="compare recent inputs with the training data")
        self.root = w.VBox(
            [self.title, w.HBox([self.window, self.live, self.drift_button]), self.table, self.drift_box]
        )
        self.window.observe(self._on_window, names=["value"])
        self.live.observe(self._on_live, names=["value"])
        self.drift_button.on_click(self._on_drift)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.refresh()
        if live:
            self._start()

    # ------------------------------------------------------------------ polling

    def refresh(self) -> dict[str, Any]:
        """Read the log and probe the server once, and update the panel."""
        from ...serving.status import monitor_snapshot

        snap = monitor_snapshot(self.name, window_s=float(self.window.value), workspace=self.workspace)
        with self._lock:
            self.snapshot = snap
            self._set(self.title, self._title_html(snap))
            self._set(self.table, self._table_html(snap))
        return snap

    @staticmethod
    def _set(widget: Any, value: str) -> None:
        if widget.value != value:
            widget.value = value

    def _title_html(self, snap: dict[str, Any]) -> str:
        status = snap["status"]
        url = (snap.get("state") or {}).get("url") or ""
        color = _COLORS.get(status, "#757575")
        return f"<b>{esc(self.name)}</b> <span style='color:{color}'>● {esc(status)}</span> <code>{esc(url)}</code>"

    def _table_html(self, snap: dict[str, Any]) -> str:
        if snap.get("note"):  # no request log: one line instead of a table of zeros
            return f"<i>{esc(snap['note'])}</i>"
        summary = snap["summary"]
        versions = {
            a["arm"]: f"{a['arm']}: {a['version']} ({a['weight']:g}%)"
            for a in (snap.get("health") or {}).get("arms", [])
        }
        rows = []
        for arm, v in [*summary["arms"].items(), ("all", summary["all"])]:
            rows.append(
                (
                    versions.get(arm, arm),
                    v["requests"],
                    _num(v["throughput_rps"], 2),
                    _num(v["p50_ms"]),
                    _num(v["p95_ms"]),
                    _num(v["ttft_p50_ms"]),
                    f"{v['error_rate']:.1%}",
                    v["tokens_in"],
                    v["tokens_out"],
                    money(v.get("cost_usd")),
                )
            )
        return table_html(COLUMNS, rows)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
                self.updates += 1
            except Exception as exc:  # a transient read error must not kill the panel
                self._set(self.title, f"<b>{esc(self.name)}</b> <i>monitor error: {esc(exc)}</i>")

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=f"llmops-monitor-{self.name}", daemon=True)
            self._thread.start()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    # ------------------------------------------------------------------ callbacks

    def _on_window(self, change: dict[str, Any]) -> None:
        self.refresh()

    def _on_live(self, change: dict[str, Any]) -> None:
        self._start() if change["new"] else self._halt()

    def _on_drift(self, button: Any = None) -> None:
        self.drift_box.value = "<i>computing drift (embedding recent inputs and the training data)…</i>"
        threading.Thread(target=self.check_drift, name=f"llmops-drift-{self.name}", daemon=True).start()

    def check_drift(self):
        """Run the drift check now and show it in the panel; returns the ``DriftReport``."""
        from ...serving.drift import deployment_drift

        try:
            report = deployment_drift(self.name, workspace=self.workspace)
        except Exception as exc:
            self.drift_box.value = f"<i>drift check failed: {esc(exc)}</i>"
            return None
        self.drift_box.value = report.html
        return report

    # ------------------------------------------------------------------ lifecycle and display

    def close(self) -> None:
        self._halt()
        self.window.unobserve(self._on_window, names=["value"])
        self.live.unobserve(self._on_live, names=["value"])
        self.drift_button.on_click(self._on_drift, remove=True)
        for widget in (self.title, self.table, self.drift_box, self.window, self.live, self.drift_button):
            widget.close()
        self.root.close()

    def __str__(self) -> str:
        snap = self.snapshot or {}
        a = (snap.get("summary") or {}).get("all", {})
        return (
            f"monitor {self.name}: {snap.get('status')}  requests={a.get('requests')}  "
            f"p50={_num(a.get('p50_ms'))}ms  p95={_num(a.get('p95_ms'))}ms"
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.root._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/plain"] = str(self)
        return bundle
