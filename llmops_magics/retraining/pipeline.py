"""The ``pipeline`` artifact: the steps a retrain took, each with its artifact, and the decision.

Its content (``pipeline.json``) lists every step (name, status, reference, seconds, reason)
and the decision with its reason; the metadata repeats them, so browsers read no blob. Its
lineage edges come from the artifact of every step (``deployment``, ``monitor``,
``new_data``, ``dataset``, ``candidate``, ``gate``, ``canary``, ``abtest``, ``result``), so
the graph shows the loop in one place. ``get_pipeline`` reads one back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..display.html import esc, kv_html, mimebundle, table_html, text_table

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..ops.catalog import Call
    from ..ops.retrain import RetrainSpec
    from ..store import Artifact

__all__ = ["KIND", "DECISIONS", "Step", "Pipeline", "save_pipeline", "get_pipeline"]

KIND = "pipeline"
DECISIONS = ("promoted", "rolled back", "stopped at the gate", "failed", "cancelled")
# step name -> the relation of its artifact's edge to the pipeline
RELATIONS = {
    "new data": "new_data",
    "combine": "dataset",
    "finetune": "candidate",
    "gate": "gate",
    "canary": "canary",
    "ab": "abtest",
    "promote": "result",
    "rollback": "result",
}
COLUMNS = ("step", "status", "artifact", "seconds", "reason")
_COLOUR = {"promoted": "#1a7f37", "rolled back": "#cf222e", "stopped at the gate": "#9a6700"}


@dataclass(frozen=True)
class Step:
    """One step: ``status`` is done, passed, failed, skipped or cancelled."""

    name: str
    status: str
    ref: str | None = None
    seconds: float = 0.0
    reason: str = ""

    def row(self) -> list[Any]:
        return [self.name, self.status, self.ref or "", f"{self.seconds:.1f}", self.reason]


@dataclass
class Pipeline:
    """What a retrain did; displays as its step list with the decision above it."""

    name: str  # the deployment
    deployment: str  # the deployment version it started from
    decision: str
    reason: str
    steps: list[Step] = field(default_factory=list)
    monitor: str | None = None
    artifact: Artifact | None = field(default=None, repr=False)

    @property
    def ref(self) -> str:
        return self.artifact.ref if self.artifact is not None else f"{KIND}://{self.name}"

    @property
    def promoted(self) -> bool:
        return self.decision == "promoted"

    @property
    def rolled_back(self) -> bool:
        return self.decision == "rolled back"

    def step(self, name: str) -> Step | None:
        """The step called ``name`` (``"gate"``, ``"ab"`` …), or None when the pipeline stopped before it."""
        return next((s for s in self.steps if s.name == name), None)

    def ref_of(self, name: str) -> str | None:
        s = self.step(name)
        return s.ref if s is not None else None

    @property
    def result(self) -> str | None:
        """The deployment version it left serving (promoted or rolled back); None when it changed nothing."""
        return self.ref_of("promote") or self.ref_of("rollback")

    # ------------------------------------------------------------------ storage

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.name,
            "started_from": self.deployment,
            "monitor": self.monitor,
            "decision": self.decision,
            "reason": self.reason,
            "steps": [asdict(s) for s in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], artifact: Artifact | None = None) -> Pipeline:
        steps = [Step(**dict(s)) for s in data.get("steps", ())]
        return cls(data["deployment"], data["started_from"], data["decision"], data["reason"], steps,
                   data.get("monitor"), artifact)  # fmt: skip

    def parents(self) -> list[tuple[str, str]]:
        """Lineage edges to the pipeline: where it started and every step's artifact."""
        out = [(self.deployment, "deployment")]
        if self.monitor:
            out.append((self.monitor, "monitor"))
        out += [(s.ref, RELATIONS[s.name]) for s in self.steps if s.ref and s.name in RELATIONS]
        return out

    # ------------------------------------------------------------------ display

    def _facts(self) -> dict[str, str]:
        facts = {"decision": f"{self.decision}: {self.reason}", "deployment": self.deployment}
        if self.monitor:
            facts["started by"] = self.monitor
        if self.result:
            facts["now serving"] = self.result
        return facts

    def __str__(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self._facts().items())
        return f"{self.ref}\n{head}\n\n" + text_table(COLUMNS, [s.row() for s in self.steps])

    def __repr__(self) -> str:
        return f"<Pipeline {self.ref} {self.decision}>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        colour = _COLOUR.get(self.decision, "#57606a")
        head = (
            f'<p style="font-weight:bold;color:{colour}" data-decision="{esc(self.decision)}">{esc(self.decision)}</p>'
        )
        html = head + kv_html(self._facts(), title=self.ref) + table_html(COLUMNS, [s.row() for s in self.steps])
        return mimebundle(str(self), html, {"ref": self.ref, "decision": self.decision})


def save_pipeline(ws: Workspace, spec: RetrainSpec, call: Call, pipeline: Pipeline) -> Pipeline:
    """Publish ``pipeline`` as a version of ``pipeline://DEPLOYMENT``, linked to every step's artifact."""
    from ..recording.publish import publish

    meta = {
        "deployment": pipeline.name,
        "started_from": pipeline.deployment,
        "decision": pipeline.decision,
        "reason": pipeline.reason,
        "steps": [{"name": s.name, "status": s.status, "ref": s.ref} for s in pipeline.steps],
        "filename": "pipeline.json",
    }
    data = json.dumps(pipeline.to_dict(), sort_keys=True, indent=1).encode()
    saved = publish(ws, KIND, pipeline.name, spec=spec, call=call, data=data, metadata=meta,
                    parents=pipeline.parents())  # fmt: skip
    pipeline.artifact = saved.artifact
    return pipeline


def get_pipeline(ref: str, *, workspace: Workspace | None = None) -> Pipeline:
    """A stored retrain (``pipeline://qa-svc/2``, ``qa-svc``) read back with its steps."""
    from ..context.workspaces import current

    ws = workspace or current()
    art = ws.registry.resolve(ref, KIND)
    return Pipeline.from_dict(json.loads(ws.registry.read_bytes(art)), art)
