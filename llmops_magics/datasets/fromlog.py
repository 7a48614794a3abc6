"""What ``from-log`` runs: logged requests (with their feedback) → rows → a dataset version.

Why the columns are named as they are: ``prompt`` is the model's input exactly as the server
rendered it (the deployed template already applied), so fine-tuning's default template for a
``prompt`` column (``{{ prompt }}``) trains on what the model really saw; naming it
``question`` would wrap it in ``Question: … Answer:`` a second time. ``answer`` is the
target column fine-tuning and eval look for first; it is the served answer with its
surrounding whitespace trimmed (the target gets its separating space back when encoded),
or, with ``with_corrections``, the reviewer's correction where there is one. Extracting the
template's variables back out of ``prompt`` is not attempted.

Left out, and counted in the version's metadata: failed requests (no answer), rows logged
without text, and requests with several prompts or ``n`` > 1, whose texts share one row.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import ValidationError
from ..ops.catalog import Call
from ..ops.fromlog import FromLogSpec
from .versions import DatasetVersion, save_rows

__all__ = ["run", "rows_from_log"]


def _feedback_matches(row: dict[str, Any], wanted: str) -> bool:
    score = row.get("feedback")
    return {
        "up": score is not None and score >= 0.5,
        "down": score is not None and score < 0.5,
        "any": score is not None,
        "none": score is None,
        "corrected": bool(row.get("correction")),
    }[wanted]


def _keep(row: dict[str, Any], where: dict[str, str]) -> bool:
    for key, wanted in where.items():
        if key == "feedback":
            if not _feedback_matches(row, wanted):
                return False
        elif row.get(key) != wanted:
            return False
    return True


def rows_from_log(
    logged: list[dict[str, Any]], where: dict[str, str], with_corrections: bool
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``(rows, what was left out and why)`` from ``read_requests(with_text=True, with_feedback=True)`` rows."""
    skipped = {"failed": 0, "without_text": 0, "several_answers": 0}
    rows = []
    for r in logged:
        if (r.get("status") or 0) >= 400:
            skipped["failed"] += 1
        elif r.get("input_text") is None or r.get("output_text") is None:
            skipped["without_text"] += 1
        elif (r.get("outputs") or 1) > 1:
            skipped["several_answers"] += 1
        elif _keep(r, where):
            corrected = with_corrections and bool(r.get("correction"))
            rows.append(
                {
                    "prompt": r["input_text"],
                    "answer": (r["correction"] if corrected else r["output_text"]).strip(),
                    "request_id": r["request_id"],
                    "feedback": r.get("feedback"),
                    "correction": r.get("correction"),
                    "output_text": r["output_text"],
                    "ts": r["ts"],
                    "arm": r.get("arm"),
                    "version": r.get("version"),
                }
            )
    return rows, skipped


def run(spec: FromLogSpec, call: Call) -> DatasetVersion:
    """Run a ``FromLogSpec`` (see ``llmops_magics.dataset_from_log``)."""
    from ..serving.feedback import traffic_source
    from ..serving.requestlog import read_requests

    ws = call.ws
    source = traffic_source(ws, spec.deployment)
    source.require_text("its traffic cannot become a dataset")
    until = spec.until if spec.until is not None else time.time()
    if spec.since is not None and spec.since >= until:
        raise ValidationError(f"since must be before until; the window {spec.since:.0f} to {until:.0f} is empty")
    resolved = spec.replace(name=spec.name or f"{spec.deployment}-traffic", until=until)
    logged = read_requests(source.log, since=spec.since, until=until, with_text=True, with_feedback=True)
    rows, skipped = rows_from_log(logged, dict(spec.where or {}), spec.with_corrections)
    if not rows:
        found = f"{len(logged)} logged request(s) in the window" + (
            f", none where {_where_text(spec)}" if spec.where else ""
        )
        raise ValidationError(f"no rows for a dataset from {source.ref}: {found}")
    return save_rows(
        resolved.name,
        {"train": rows},
        spec=resolved,
        call=call,
        aliases=spec.aliases,
        metadata={
            "description": spec.description,
            "deployment": source.ref,
            "window": {"since": spec.since, "until": until},
            "where": dict(spec.where or {}),
            "with_corrections": spec.with_corrections,
            "corrected": sum(1 for r in rows if spec.with_corrections and r["correction"]),
            "logged": len(logged),
            "skipped": skipped,
        },
        parents=[(source.artifact, "from_log")],
    )


def _where_text(spec: FromLogSpec) -> str:
    return ", ".join(f"{k}={v}" for k, v in (spec.where or {}).items())
