"""What one monitor run found: its checks, the window, the thresholds, and the artifact that keeps them.

A ``MonitorReport`` displays itself (a status table, then what drove a drift verdict:
the words that separate live inputs from the reference and the live inputs least like
it), reads back from a stored ``monitor`` artifact (``get_monitor``), and answers
``.failed`` for gates: ``llmops monitor`` exits 1 on it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..display.html import esc, format_time, mimebundle, table_html, text_table
from .checks import Check, overall

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..store import Artifact

__all__ = ["MonitorReport", "get_monitor"]

_MARK = {"pass": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
_COLOR = {"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828", "skip": "#757575"}


@dataclass
class MonitorReport:
    name: str  # the deployment
    deployment: str | None  # the deployment version checked (deployment://qa-svc/3)
    window: dict[str, float]  # {"start", "end", "seconds"} (Unix times)
    checks: list[Check]
    thresholds: dict[str, float]
    reference: str | None = None  # the data set drift was measured against
    baseline: str | None = None  # the eval live quality was compared with
    usage: dict[str, Any] | None = None  # tokens and dollars of the window's answered requests (``usage.py``)
    artifact: Artifact | None = field(default=None, repr=False)
    _run: Any = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> str:
        return overall(self.checks)

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def failures(self) -> list[str]:
        return [c.name for c in self.checks if c.status == "fail"]

    @property
    def ref(self) -> str | None:
        return self.artifact.ref if self.artifact is not None else None

    @property
    def wandb(self) -> dict[str, Any]:
        """Where this run's W&B run is (``run_id``, ``mode``, ``run_dir``); waits, bounded, for it to start."""
        if self._run is not None:
            return dict(self._run.info)
        return dict(self.artifact.wandb) if self.artifact is not None else {}

    def flat(self) -> dict[str, Any]:
        """For a W&B run summary: the status, each check's value and status, the window's tokens and dollars."""
        from .usage import usage_summary

        out: dict[str, Any] = {"status": self.status}
        for c in self.checks:
            out[f"{c.name}/status"] = c.status
            if c.value is not None:
                out[c.name] = c.value
        return {**out, **usage_summary(self.usage)}

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"{name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "deployment": self.deployment,
            "status": self.status,
            "window": dict(self.window),
            "checks": [c.to_dict() for c in self.checks],
            "thresholds": dict(self.thresholds),
            "reference": self.reference,
            "baseline": self.baseline,
            "usage": self.usage,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], artifact: Artifact | None = None) -> MonitorReport:
        checks = [Check(**c) for c in data.get("checks", [])]
        return cls(data["name"], data.get("deployment"), dict(data.get("window") or {}), checks,
                   dict(data.get("thresholds") or {}), data.get("reference"), data.get("baseline"),
                   usage=data.get("usage"), artifact=artifact)  # fmt: skip

    # ------------------------------------------------------------------ display

    def _title(self) -> str:
        w = self.window
        span = f"{format_time(w['start'])} → {format_time(w['end'])}" if w else ""
        where = f" ({self.ref})" if self.ref else ""
        return f"monitor {self.name}: {self.status.upper()}{where}, window {span}"

    def _rows(self) -> list[list[str]]:
        return [[c.name, _MARK[c.status], _fmt(c.value), _fmt(c.warn), _fmt(c.fail), c.direction, c.unit,
                 c.reason or _note(c)] for c in self.checks]  # fmt: skip

    _COLUMNS = ("check", "status", "value", "warn", "fail", "bad when", "unit", "note")

    def _usage(self) -> str | None:
        from .usage import usage_line

        line = usage_line(self.usage)
        return None if line is None else f"usage: {line}"

    def __str__(self) -> str:
        usage = self._usage()
        return self._title() + "\n" + text_table(self._COLUMNS, self._rows()) + (f"\n{usage}" if usage else "")

    def _repr_mimebundle_(self, include=None, exclude=None):
        html = table_html(self._COLUMNS, self._rows(), title=self._title())
        html = html.replace("<table", f'<table data-status="{esc(self.status)}"', 1)
        if self._usage():
            html += f"<div data-test-id='monitor-usage'>{esc(self._usage())}</div>"
        for status, color in _COLOR.items():  # colour only the status cells, by their exact text
            html = html.replace(f">{_MARK[status]}</td>", f"><b style='color:{color}'>{_MARK[status]}</b></td>")
        drift = next((c for c in self.checks if c.name == "input_drift_classifier" and c.status != "skip"), None)
        if drift is not None:
            words = ", ".join(w for w, _ in drift.details.get("live_words", []))
            examples = "".join(f"<li>{esc(t)}</li>" for t in drift.details.get("examples", []))
            html += (f"<div><b>words that mark live inputs:</b> {esc(words) or '-'}</div>"
                     f"<div><b>live inputs least like the reference:</b><ol>{examples}</ol></div>")  # fmt: skip
        meta = {"ref": self.ref, "status": self.status} if self.ref else None
        return mimebundle(str(self), html, meta)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def _note(check: Check) -> str:
    d = check.details
    if check.name.startswith("input_drift") or check.name.endswith("_length"):
        p = d.get("p_value", d.get("ks_p_value"))
        n = f"n={d.get('n_reference')}/{d.get('n_current')}"
        return f"p={p:.3g}, {n}" if isinstance(p, float) else n
    if d.get("ci"):
        lo, hi = d["ci"]
        return f"Δ 95% CI [{lo:+.3f}, {hi:+.3f}], n={d.get('n')}"
    if "requests" in d:
        return f"{d['requests']} requests"
    return ""


def get_monitor(ref: str, *, workspace: Workspace | None = None) -> MonitorReport:
    """A stored monitor run (``monitor://qa-svc/4``, ``qa-svc``) read back as its report."""
    from ..context.workspaces import current

    ws = workspace or current()
    art = ws.registry.resolve(ref, "monitor")
    return MonitorReport.from_dict(json.loads(ws.registry.read_bytes(art)), art)
