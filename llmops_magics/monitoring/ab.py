"""What ``ab`` runs: read a deployment's request log over its two arms, judge the canary, record it.

The rows compared are those since the deployment's current split started (its state's
``started_at``: a new canary or a new share restarts the test, since the design changed)
or, with ``window``, those of the last ``window`` seconds. A row counts for an arm only
when the version it names is the one the arm serves now. The ``feedback`` metric is each
request's latest rating (``POST /v1/feedback``, ``feedback()``), 0 to 1. The ``quality`` metric
is a judge model's verdict on one logged answer of a seeded share of each arm's users
(``monitoring/ab_quality.py``: the sample grows with traffic, so the interval narrows as
the test runs, and verdicts are cached per request, so a test analysed every few seconds
judges only new entrants); the result says how many users of how many per arm were judged,
or why none could be (texts not logged, no judge model). The analysis is
saved as an ``abtest`` version named after the deployment, linked to the deployment and to
both versions; the same log read twice gives the same version.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ..display.html import esc, kv_html, mimebundle, table_html, text_table
from ..errors import ValidationError
from ..ops.ab import AbSpec
from ..ops.catalog import Call
from ..store import Artifact
from .ab_quality import JudgedQuality, judge_quality
from .abstats import ARMS, AbAnalysis, MetricResult, analyse

__all__ = ["AbTest", "run", "KIND"]

KIND = "abtest"
COLUMNS = ("metric", "better when", "users (primary / canary)", "primary", "canary", "difference",
           "always-valid interval", "fixed interval", "outcome")  # fmt: skip


def _fmt(value: float | None, unit: str = "", sign: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:+.4g}" if sign else f"{value:.4g}"
    return f"{text} {unit}".rstrip()


def _row(m: MetricResult, quality: JudgedQuality | None = None) -> list[str]:
    unit = m.metric.unit
    diff = _fmt(m.diff, unit, sign=True)
    if m.relative is not None:
        diff += f" ({m.relative:+.1%})"
    interval = f"{m.interval[0]:+.4g} to {m.interval[1]:+.4g}" if m.interval else "-"
    fixed = f"{m.fixed[0]:+.4g} to {m.fixed[1]:+.4g}" if m.fixed else "-"
    outcome = m.outcome + (" · no harm beyond margin" if m.safe else "")
    if m.metric.name == "quality" and quality is not None and quality.unavailable:
        outcome = f"unavailable: {quality.unavailable}"
    return [m.metric.label, "higher" if m.metric.higher_is_better else "lower", f"{m.users[0]:,} / {m.users[1]:,}",
            _fmt(m.means[0], unit), _fmt(m.means[1], unit), diff, interval, fixed, outcome]  # fmt: skip


@dataclass(frozen=True)
class AbTest:
    """A canary judged against its primary; displays as a table with the verdict above it."""

    name: str
    primary: str
    canary: str
    weight: float  # the canary's share, percent
    since: float | None
    analysis: AbAnalysis
    artifact: Artifact | None = None
    quality: JudgedQuality | None = None  # what fed the quality metric; None when it was not asked for

    @property
    def ref(self) -> str:
        return self.artifact.ref if self.artifact is not None else f"{KIND}://{self.name}"

    @property
    def verdict(self) -> str:
        return self.analysis.verdict.text

    def _facts(self) -> dict[str, str]:
        a, u = self.analysis, self.analysis.users
        left_out = f"{u.anonymous_requests:,} requests without a user id, {u.crossed_users:,} users seen in both arms"
        return {
            "verdict": a.verdict.text,
            "stop rule": ("stop: " if a.stop.stop else "") + f"{a.stop.action} ({a.stop.reason})",
            "sample ratio": a.srm.describe() + (" - BLOCKED" if a.srm.blocked else " - ok"),
            "arms": f"primary {self.primary}, canary {self.canary} ({self.weight:g}%)",
            "left out": left_out,
            "settings": f"alpha {a.alpha:g} per metric, tuning N* = {a.tuning:g} users, "
            f"at least {a.settings.get('min_users')} users per arm",
        } | ({"judged quality": self.quality.describe()} if self.quality is not None else {})

    def __str__(self) -> str:
        facts = "\n".join(f"{k}: {v}" for k, v in self._facts().items())
        return f"{self.ref}\n{facts}\n\n" + text_table(COLUMNS, self._rows())

    def _rows(self) -> list[list[str]]:
        return [_row(m, self.quality) for m in self.analysis.metrics]

    @property
    def html(self) -> str:
        code = self.analysis.verdict.code
        colour = {"better": "#1a7f37", "worse": "#cf222e", "blocked": "#9a6700"}.get(code, "#57606a")
        head = f'<p style="font-weight:bold;color:{colour}" data-verdict="{esc(code)}">{esc(self.verdict)}</p>'
        return head + kv_html(self._facts(), title=self.ref) + table_html(COLUMNS, self._rows())

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), self.html, {"ref": self.ref})

    def to_dict(self) -> dict[str, Any]:
        judged = {"judged_quality": self.quality.to_dict()} if self.quality is not None else {}
        return {"deployment": self.name, "primary": self.primary, "canary": self.canary, "weight": self.weight,
                "since": self.since, **self.analysis.to_dict(), **judged}  # fmt: skip


def _rows(state: dict[str, Any], since: float | None, with_text: bool = False) -> list[dict[str, Any]]:
    from ..serving.requestlog import read_requests

    served = {"primary": state["target"], "canary": state["canary"]["target"]}
    # ratings feed the feedback metric, texts the judged quality
    rows = read_requests(state["monitor_db"], since=since, with_feedback=True, with_text=with_text)
    return [r if r.get("version") in (None, served.get(r.get("arm"))) else {**r, "arm": None} for r in rows]


def _logs_text(ws: Any, state: dict[str, Any]) -> bool:
    """Whether the deployment stores prompt and answer texts (its spec's ``log_text``)."""
    spec = ws.registry.resolve(state["ref"]).spec or {}
    return bool((spec.get("args") or {}).get("log_text"))


def run(spec: AbSpec, call: Call) -> AbTest:
    """Run an ``AbSpec`` (see ``llmops_magics.ab``)."""
    from ..recording.publish import publish
    from ..serving.records import require_state
    from ..serving.requestlog import logs_requests, no_log_message

    ws = call.ws
    state = require_state(ws.registry, spec.name)
    if not logs_requests((ws.registry.resolve(state["ref"]).spec or {}).get("args")):
        raise ValidationError(no_log_message(spec.name, "there is no traffic to compare the arms on"))
    canary = state.get("canary")
    if not canary:
        raise ValidationError(
            f"deployment {spec.name!r} has no canary to judge; add one with %deploy {spec.name} --canary REF:10%"
        )
    weight = float(canary["weight"])
    since = time.time() - spec.window if spec.window is not None else state.get("started_at")
    quality = None
    if "quality" in spec.metrics:
        log_text = _logs_text(ws, state)
        judge_model = spec.judge_model or ws.settings.judge_model  # the project's judge, configured once
        spec = spec.replace(judge_model=judge_model)  # the record names the judge used
        rows, quality = judge_quality(
            ws, spec.name, _rows(state, since, with_text=log_text), share=spec.judge_share,
            max_new=spec.judge_max_new, seed=spec.judge_seed, judge_model=judge_model,
            judge_prompt=spec.judge_prompt, log_text=log_text,
        )  # fmt: skip
    else:
        rows = _rows(state, since)
    analysis = analyse(
        rows,
        weights=(1 - weight / 100, weight / 100),
        metrics=spec.metrics,
        alpha=spec.alpha,
        tuning=spec.tuning,
        min_users=spec.min_users,
        max_users=spec.max_users,
        margins=spec.margins,
    )
    test = AbTest(spec.name, state["target"], canary["target"], weight, since, analysis, quality=quality)
    body = {**test.to_dict(), "last_request": rows[-1]["ts"] if rows else None}
    body.pop("since")  # a window ends "now": the same rows must give the same version
    a = analysis
    saved = publish(
        ws,
        KIND,
        spec.name,
        spec=spec,
        call=call,
        data=json.dumps(body, sort_keys=True, indent=1, default=float).encode(),
        metadata={
            "deployment": state["ref"],
            "primary": test.primary,
            "canary": test.canary,
            "weight": weight,
            "verdict": a.verdict.code,
            "verdict_text": a.verdict.text,
            "stop": a.stop.stop,
            "action": a.stop.action,
            "users": {arm: a.users.count(arm) for arm in ARMS},
            "srm_p": a.srm.p_value,
            **({"quality_judged": dict(quality.judged)} if quality is not None else {}),
            "filename": "abtest.json",
        },
        parents=[(state["ref"], "deployment"), (test.primary, "primary"), (test.canary, "canary")],
    )
    return AbTest(spec.name, test.primary, test.canary, weight, since, analysis, saved.artifact, quality)
