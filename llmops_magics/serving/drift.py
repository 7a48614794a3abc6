"""A simple drift signal: are today's inputs still like the data the model was trained on?

Two measures, both against the deployment's reference data set (``--reference-data``,
else the data set upstream of the served adapter in the lineage graph), rendered
through the same prompt template the server applies, so like is compared with like:

* **input length**: the relative change of the mean input length in characters
  (always available: the request log stores lengths even when texts are off);
* **embedding similarity**: for each input, the cosine similarity (all-MiniLM-L6-v2)
  to its nearest reference example, averaged; compared with the same number for
  held-out reference examples. The shift is ``baseline - live`` (positive means
  the traffic is less like the training data than the training data is like
  itself). It needs the input texts, so only deployments started with
  ``log_text=True`` have it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..context.workspaces import Workspace, current
from ..display.html import kv_html, mimebundle
from ..errors import ValidationError
from ..monitoring.reference import reference_texts
from ..ops.deploy import DeploySpec
from .records import load_config, require_state
from .requestlog import read_requests

__all__ = ["DriftReport", "deployment_drift", "length_shift", "similarity_shift"]

LENGTH_THRESHOLD = 0.5
SIMILARITY_THRESHOLD = 0.1


@dataclass(frozen=True)
class DriftReport:
    name: str
    reference: str | None
    live_inputs: int
    reference_inputs: int
    length_live: float | None
    length_reference: float | None
    length_shift: float | None
    similarity_live: float | None
    similarity_baseline: float | None
    similarity_shift: float | None
    note: str = ""

    @property
    def drifted(self) -> bool:
        return bool(
            (self.length_shift is not None and abs(self.length_shift) > LENGTH_THRESHOLD)
            or (self.similarity_shift is not None and self.similarity_shift > SIMILARITY_THRESHOLD)
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "drifted": self.drifted}

    def _summary(self) -> dict[str, Any]:
        def f(v: float | None, pct: bool = False) -> str:
            if v is None:
                return "-"
            return f"{v:+.0%}" if pct else f"{v:.3f}"

        out = {
            "deployment": self.name,
            "reference data": self.reference or "(none)",
            "inputs (live / reference)": f"{self.live_inputs} / {self.reference_inputs}",
            "mean length (live / reference)": f"{f(self.length_live)} / {f(self.length_reference)} chars",
            "length shift": f(self.length_shift, pct=True),
            "nearest-example similarity (live / baseline)": f"{f(self.similarity_live)} / {f(self.similarity_baseline)}",
            "similarity shift": f(self.similarity_shift),
            "drift": "YES" if self.drifted else "no",
        }
        if self.note:
            out["note"] = self.note
        return out

    def __str__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self._summary().items())

    @property
    def html(self) -> str:
        return kv_html(self._summary(), title="drift")

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), self.html)


def length_shift(live: Sequence[int], reference: Sequence[int]) -> float | None:
    """Relative change of the mean length (``+0.5`` = inputs half again as long)."""
    if not live or not reference:
        return None
    ref = sum(reference) / len(reference)
    return (sum(live) / len(live)) / ref - 1.0 if ref else None


def similarity_shift(live: Sequence[str], reference: Sequence[str], seed: int = 0) -> tuple[float, float, float]:
    """``(live, baseline, shift)`` mean nearest-reference similarities (see the module docstring)."""
    from ..models.embeddings import embed

    ref = list(reference)
    random.Random(seed).shuffle(ref)
    held = ref[: max(1, len(ref) // 4)]
    pool = ref[len(held) :] or ref
    e_pool, e_held, e_live = embed(pool), embed(held), embed(list(live))
    base = float((e_held @ e_pool.T).max(axis=1).mean())
    now = float((e_live @ e_pool.T).max(axis=1).mean())
    return now, base, base - now


def deployment_drift(
    name: str,
    *,
    window_s: float = 3600.0,
    limit: int = 500,
    reference_limit: int = 400,
    workspace: Workspace | None = None,
) -> DriftReport:
    """Compare the last ``window_s`` seconds of inputs (at most ``limit``) with the reference data."""
    ws = workspace or current()
    state = require_state(ws.registry, name)
    spec = DeploySpec.from_dict(load_config(state)["spec"])
    if not spec.request_log:
        from .requestlog import no_log_message

        raise ValidationError(no_log_message(name, "there are no inputs to compare with the reference data"))
    rows: list[Mapping[str, Any]] = [
        r
        for r in read_requests(state["monitor_db"], since=time.time() - window_s, limit=limit, with_text=True)
        if (r.get("status") or 0) < 400 and r.get("input_chars") is not None
    ]
    if not spec.reference_data:
        return DriftReport(
            name,
            None,
            len(rows),
            0,
            None,
            None,
            None,
            None,
            None,
            None,
            note="no reference data: deploy with reference_data=DATASET_REF",
        )
    ref_texts = reference_texts(ws, spec, reference_limit)
    live_len = [int(r["input_chars"]) for r in rows]
    ref_len = [len(t) for t in ref_texts]
    texts = [r["input_text"] for r in rows if r.get("input_text")]
    sim = similarity_shift(texts, ref_texts) if texts and len(ref_texts) >= 4 else (None, None, None)
    note = "" if texts or not rows else "similarity needs the input texts: deploy with log_text=True"
    return DriftReport(
        name,
        spec.reference_data,
        len(rows),
        len(ref_texts),
        sum(live_len) / len(live_len) if live_len else None,
        sum(ref_len) / len(ref_len) if ref_len else None,
        length_shift(live_len, ref_len),
        *sim,
        note=note,
    )
