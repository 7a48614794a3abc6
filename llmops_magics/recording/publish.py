"""The one way an operation's output enters the registry and W&B: ``publish``.

``publish`` saves the content as a version (or finds the version that already holds
it), records the stored spec in its one shape (``Call.record``), the provenance of the
call, the lineage edges (a replay's ``replayed_from`` included), and queues the W&B
mirror: into the operation's own run when it has one (a fine-tune, an eval), else into
a short run of its own. ``mirror`` alone mirrors an artifact saved elsewhere (the
model server mirrors the deployment it serves into its run).

Mirroring is queued, never awaited, and writes back where the artifact went
(``Registry.update_wandb``) when it is done.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..context.provenance import collect
from ..store import Artifact, SaveResult
from .base import Run, Tables

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..ops.catalog import Call
    from ..ops.spec import Spec

__all__ = ["publish", "mirror"]


def publish(
    ws: Workspace,
    kind: str,
    name: str,
    *,
    spec: Spec | Mapping[str, Any],
    call: Call | None = None,
    data: bytes | None = None,
    path: str | os.PathLike | None = None,
    digest: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    parents: Sequence[tuple[Any, str]] = (),
    aliases: Sequence[str] = (),
    run: Run | None = None,
    mirror_to_wandb: bool | None = None,
    tables: Tables | None = None,
    record_extra: Mapping[str, Any] | None = None,
) -> SaveResult:
    """Save one output with its spec, provenance and lineage; mirror it to W&B.

    ``spec``: the operation's (resolved) spec, stored as ``call.record(spec)``; a mapping is
    stored as it is. ``parents``: ``(reference or Artifact, relation)`` pairs. ``mirror_to_wandb``:
    True always, False never, None when the save changed something a mirror shows (a new
    version, ``latest`` moved, aliases given). ``run``: the operation's W&B run to log into.
    """
    from ..ops.catalog import Call
    from ..ops.spec import Spec

    call = call or Call(workspace=ws)
    reg = ws.registry
    if isinstance(spec, Spec):
        stored = call.record(spec, **dict(record_extra or {}))
    else:
        stored = {**dict(spec), **dict(record_extra or {})}
    inputs = [(reg.resolve(ref), relation) for ref, relation in [*parents, *call.parents()]]
    saved = reg.save(
        kind,
        name,
        data=data,
        path=path,
        digest=digest,
        metadata=metadata,
        source=collect(call.source),
        spec=stored,
        aliases=aliases,
        parents=inputs,
    )
    wanted = mirror_to_wandb if mirror_to_wandb is not None else (saved.created or saved.latest_moved or bool(aliases))
    if wanted:
        mirror(ws, saved.artifact, [(a, rel) for a, rel in inputs if a.id != saved.artifact.id], run=run, tables=tables)
    return saved


def mirror(
    ws: Workspace,
    art: Artifact,
    inputs: Sequence[tuple[Artifact, str]] = (),
    *,
    run: Run | None = None,
    tables: Tables | None = None,
) -> None:
    """Queue ``art`` for W&B (same kind, name, aliases) in ``run`` or a short run of its own."""
    if run is None and not ws.recorder.enabled:
        return
    reg = ws.registry

    def done(info: dict[str, Any]) -> None:
        reg.update_wandb(art, info)

    if run is not None:
        run.log_artifact_async(art, reg.checkout(art), inputs, on_done=done, tables=tables)  # type: ignore[attr-defined]
    else:
        ws.recorder.record_artifact(art, reg.checkout(art), inputs, on_done=done, tables=tables)
