"""Replaying a recorded call: ``replay(ref_or_spec)``, the core of ``llmops run``.

Every artifact stores the call that made it (``Call.record``: the op, its arguments, the
line typed). Replay is ``op.run(op.spec.from_dict(stored["args"]), …)``: no table of
field names is kept here, the spec is the list. Identical content comes back as the same
version, as for any save; a long operation (a fine-tune, an eval) is waited for.

References in a stored spec are pinned versions (``dataset://qa/1``, never ``@latest``),
so a replay uses the same inputs even after newer versions were saved. What a replay
makes gets a ``replayed_from`` edge to the artifact it repeats. A spec may be given as a
dict, a JSON file (the bare spec, or an artifact record as ``llmops show`` prints it) or a
reference. What cannot be replayed faithfully is refused with a ``ValidationError``
before anything is written: an API key (only that one was used is recorded; give it
again, or record ``api_key_env`` instead), rows that came from an in-memory object with
no stored version to re-register.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context.workspaces import Workspace, current
from ..errors import NotFoundError, ValidationError
from ..store import Artifact
from ..store.records import thaw
from .catalog import Call, Operation, get
from .spec import SECRET, Spec

__all__ = ["replay", "plan_replay", "ReplayPlan", "ReplayResult"]


@dataclass(frozen=True)
class _Source:
    """Where a stored spec came from: the artifact it was stored with, or the record ``llmops show`` printed."""

    origin: str
    artifact: Artifact | None = None
    record: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did: the op, the call it made, and the reference of what that produced."""

    op: str
    call: str
    ref: str | None  # None for a dry run
    origin: str
    value: Any = field(default=None, repr=False, compare=False)  # what the call returned
    dry_run: bool = False

    def __str__(self) -> str:
        if self.dry_run:
            return f"{self.op} (dry run, nothing written): {self.call}"
        return f"{self.op}: {self.call} -> {self.ref}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.html import kv_html, mimebundle

        pairs = {"replayed": self.origin, "op": self.op, "call": self.call, "ref": self.ref or "(dry run)"}
        return mimebundle(str(self), kv_html(pairs, title="replay"), {"ref": self.ref} if self.ref else None)


@dataclass(frozen=True)
class ReplayPlan:
    """The call a stored spec maps to, checked but not made; ``execute()`` makes it."""

    operation: Operation
    spec: Spec
    origin: str
    context: Call
    stored: Mapping[str, Any]

    @property
    def op(self) -> str:
        return self.operation.name

    @property
    def call(self) -> str:
        text = self.spec.call_text(self.operation.function)
        return text + (".wait()" if self.operation.long else "")

    def execute(self) -> ReplayResult:
        value = self.operation.finish(self.operation.run(self.spec, self.context))
        return ReplayResult(self.op, self.call, self.operation.ref_of(value, self.stored), self.origin, value)

    def __str__(self) -> str:
        return self.call


def replay(
    spec_or_ref: Any,
    *,
    workspace: Workspace | None = None,
    dry_run: bool = False,
    overrides: Mapping[str, Any] | None = None,
    command: str | None = None,
) -> ReplayResult:
    """Make the recorded call again and return what it produced (see the module docstring).

    ``spec_or_ref``: a stored spec dict, a path to a JSON file (a spec, or an artifact record
    as ``llmops show`` prints it), or an artifact reference (its stored spec is used).
    ``overrides`` replaces arguments (``{"name": "qa-v2", "max_steps": 4}``), checked like the
    spec's. ``dry_run`` checks and describes the call, writing nothing.
    """
    plan = plan_replay(spec_or_ref, workspace=workspace, overrides=overrides, command=command)
    if dry_run:
        return ReplayResult(plan.op, plan.call, None, plan.origin, dry_run=True)
    return plan.execute()


def plan_replay(
    spec_or_ref: Any,
    *,
    workspace: Workspace | None = None,
    overrides: Mapping[str, Any] | None = None,
    command: str | None = None,
) -> ReplayPlan:
    """The call ``replay`` would make, checked; nothing is written (the registry is only read)."""
    ws = workspace or current()
    stored, source = _load(spec_or_ref, ws)
    op = get(stored.get("op"))
    if not isinstance(stored.get("args"), Mapping):
        raise ValidationError(
            f"{source.origin}: its spec has no 'args' (it was recorded before every op stored one shape); "
            "it cannot be replayed"
        )
    values = {**stored["args"], **dict(overrides or {})}
    for opt in op.spec.options():
        if opt.secret and values.get(opt.name) == SECRET:
            if opt.name in (overrides or {}):
                continue
            if values.get(f"{opt.name}_env"):
                values[opt.name] = None  # the variable named in the spec holds it
                continue
            raise ValidationError(
                f"{source.origin}: the call used {opt.name.replace('_', ' ')}, which is never stored; "
                f"give it again (--set {opt.name}=…)"
            )
    spec = op.spec.from_dict(values, origin=source.origin)
    artifact = _artifact(source, ws) if source.artifact is not None or source.record is not None else None
    if op.prepare_replay is not None:
        spec = op.prepare_replay(spec, artifact, ws)
    context = Call(workspace=ws, command=command, replayed_from=artifact.ref if artifact is not None else None)
    return ReplayPlan(op, spec, source.origin, context, stored)


# ---------------------------------------------------------------------------- reading the input


def _load(value: Any, ws: Workspace) -> tuple[dict[str, Any], _Source]:
    if isinstance(value, Mapping):
        return _from_mapping(value, _Source("spec dict"))
    if not isinstance(value, (str, Path)):
        raise ValidationError(f"replay takes a spec dict, a JSON file or a reference, found {type(value).__name__}")
    path = Path(value).expanduser()
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"spec file {str(path)!r} is not JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValidationError(f"spec file {str(path)!r} must hold a JSON object, found {type(data).__name__}")
        return _from_mapping(data, _Source(str(path)))
    text = str(value)
    if path.exists() or text.endswith(".json") or text.startswith((".", "~", "/")):
        what = "is a folder, not a spec file" if path.exists() else "does not exist"
        raise NotFoundError(f"spec file {text!r} {what}")
    art = ws.registry.resolve(text)
    if not art.spec:
        raise ValidationError(f"{art.ref} has no recorded spec to replay")
    return thaw(art.spec), _Source(art.ref, artifact=art)


def _from_mapping(data: Mapping[str, Any], source: _Source) -> tuple[dict[str, Any], _Source]:
    if "op" in data:
        return thaw(data), source
    if isinstance(data.get("spec"), Mapping) and "ref" in data:
        if not data["spec"]:
            raise ValidationError(f"{data['ref']} has no recorded spec to replay")
        return thaw(data["spec"]), _Source(f"{data['ref']} ({source.origin})", record=thaw(data))
    raise ValidationError(f"{source.origin} is neither a spec (no 'op' field) nor an artifact record (no 'spec')")


def _artifact(source: _Source, ws: Workspace) -> Artifact | None:
    """The stored version a spec belongs to; a record counts only if this registry holds it (same digest)."""
    if source.artifact is not None:
        return source.artifact
    record = source.record or {}
    try:
        art = ws.registry.resolve(record["ref"])
    except (NotFoundError, KeyError):
        return None
    return art if art.digest == record.get("digest") else None
