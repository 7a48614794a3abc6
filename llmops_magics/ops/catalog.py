"""The operations: each a spec, a runner and a public function, found here by name.

An ``Operation`` ties a spec class to the core function that runs it
(``run(spec, call) -> result``, imported only when first run) and to the name of its
public Python function. Every front goes through it: the magic and the CLI parse a
spec and call ``op.run(spec, Call(command=...))``, the public function calls
``op.call(locals())``, and replay calls ``op.run(Spec.from_dict(stored["args"]), …)``.

``Call`` is what a call carries besides its arguments: the workspace, the line a
person typed, the artifact a replay repeats. ``Call.record`` is the one shape every
stored spec has::

    {"op": "finetune", "args": {...the spec...}, "command": "%finetune --data qa", "replayed_from": "adapter://…"}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .argv import redact_command
from .spec import Spec

if TYPE_CHECKING:
    from ..context.workspaces import Workspace

__all__ = ["Call", "Operation", "get", "operations", "CATALOG"]

# name -> "module:OPERATION". Adding an operation: one line here (see docs/ARCHITECTURE.md).
CATALOG: dict[str, str] = {
    "prompt": "llmops_magics.ops.prompts:PROMPT",
    "dataset": "llmops_magics.ops.datasets:DATASET",
    "model": "llmops_magics.ops.models:MODEL",
    "finetune": "llmops_magics.ops.finetune:FINETUNE",
    "eval": "llmops_magics.ops.evaluate:EVAL",
    "deploy": "llmops_magics.ops.deploy:DEPLOY",
    "compare": "llmops_magics.ops.compare:COMPARE",
    "monitor": "llmops_magics.ops.monitor:MONITOR",
    "ab": "llmops_magics.ops.ab:AB",
    "pii-scan": "llmops_magics.ops.pii:PII_SCAN",
    "pii-redact": "llmops_magics.ops.pii:PII_REDACT",
    "fairness": "llmops_magics.ops.fairness:FAIRNESS",
    "from-log": "llmops_magics.ops.fromlog:FROM_LOG",
    "from-traces": "llmops_magics.ops.fromtraces:FROM_TRACES",
    "retrain": "llmops_magics.ops.retrain:RETRAIN",
    "card": "llmops_magics.ops.card:CARD",
    "export": "llmops_magics.ops.card:EXPORT",
    "audit": "llmops_magics.ops.audit:AUDIT",
}


@dataclass(frozen=True)
class Call:
    """What a call carries besides its arguments."""

    workspace: Workspace | None = None
    command: str | None = None  # the magic line or CLI invocation a person typed
    replayed_from: str | None = None  # the artifact whose recorded call this one repeats
    source: Mapping[str, Any] | None = None  # provenance captured earlier (when a job started)

    @property
    def ws(self) -> Workspace:
        from ..context.workspaces import current

        return self.workspace or current()

    def record(self, spec: Spec, **extra: Any) -> dict[str, Any]:
        """The stored spec: op, the arguments (secrets as ``***``), the typed line, the replay origin."""
        out: dict[str, Any] = {"op": spec.op, "args": spec.to_dict()}
        if self.command:
            out["command"] = redact_command(self.command, type(spec))
        if self.replayed_from:
            out["replayed_from"] = self.replayed_from
        out.update(extra)
        return out

    def parents(self) -> list[tuple[str, str]]:
        """Lineage edges every output of this call gets (a replay points at what it repeats)."""
        return [(self.replayed_from, "replayed_from")] if self.replayed_from else []


@dataclass(frozen=True)
class Operation:
    """One operation: its spec, the core function that runs it and the public function's name.

    ``long``: the runner returns a ``Job`` (fronts that must finish wait for it).
    ``prepare_replay(spec, artifact, workspace) -> spec`` adapts a stored spec whose
    arguments cannot be read back as they are (rows that came from an in-memory object).
    ``ref_of(value, stored) -> str`` is the reference of what a run made.
    ``failed(value) -> bool``: the result failed a check it ran (a monitor), so the CLI exits 1.
    """

    name: str
    spec: type[Spec]
    runner: str  # "module:function", imported when first run
    function: str
    summary: str
    long: bool = False
    prepare_replay: Callable[..., Spec] | None = None
    ref_of: Callable[[Any, Mapping[str, Any]], str] = field(default=lambda value, stored: value.ref)
    failed: Callable[[Any], bool] = field(default=lambda value: False)

    def run(self, spec: Spec, call: Call | None = None) -> Any:
        if not isinstance(spec, self.spec):
            raise TypeError(f"{self.name} runs a {self.spec.__name__}, not a {type(spec).__name__}")
        module, _, name = self.runner.partition(":")
        return getattr(importlib.import_module(module), name)(spec, call or Call())

    def call(self, arguments: Mapping[str, Any]) -> Any:
        """Run from a public function's ``locals()``: its keywords are the spec's fields plus ``workspace``."""
        values = dict(arguments)
        ws = values.pop("workspace", None)
        return self.run(self.spec(**values), Call(workspace=ws))

    def finish(self, value: Any) -> Any:
        """The final result: a long operation's job waited for."""
        return value.wait() if self.long else value


def get(name: str) -> Operation:
    """The operation called ``name``."""
    target = CATALOG.get(name)
    if target is None:
        raise ValidationError(f"op must be one of {', '.join(CATALOG)}, found {name!r}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def operations() -> list[Operation]:
    return [get(name) for name in CATALOG]
