"""Mirroring later what was never mirrored: ``llmops sync`` / ``llmops_magics.sync()``.

W&B work can be dropped (the exit bound passed while the server was unreachable) or never
asked for (recording was disabled when the artifact was saved). The registry knows which
versions have no W&B record; this mirrors each with its direct lineage, in the mode the
settings say, and waits (bounded) for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ValidationError
from .publish import mirror

if TYPE_CHECKING:
    from ..context.workspaces import Workspace

__all__ = ["sync", "SyncReport"]


@dataclass(frozen=True)
class SyncReport:
    """What ``sync`` queued, and what had not finished when it stopped waiting."""

    queued: tuple[str, ...]
    unfinished: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.unfinished

    def __str__(self) -> str:
        if not self.queued:
            return "W&B: every artifact is mirrored already"
        text = f"W&B: mirrored {len(self.queued) - len(self.unfinished)} of {len(self.queued)} artifact(s)"
        return text + (f"; still running: {', '.join(self.unfinished)}" if self.unfinished else "")


def sync(kind: str | None = None, *, timeout: float = 600.0, workspace: Workspace | None = None) -> SyncReport:
    """Mirror every version that has no W&B record yet (of ``kind``, or all); wait up to ``timeout`` s."""
    from ..context.workspaces import current

    ws = workspace or current()
    if not ws.recorder.enabled:
        raise ValidationError("W&B recording is disabled (wandb_mode='disabled'): choose offline or online to sync")
    reg = ws.registry
    queued = []
    for art in reg.unmirrored(kind):
        inputs = [(reg.resolve(e.source), e.relation) for e in reg.upstream(art, depth=1)]
        mirror(ws, art, inputs)
        queued.append(art.ref)
    ws.recorder.flush(timeout)
    pending = {w.split(" ", 1)[1] for w in ws.recorder.pending() if w.startswith("artifact ")}
    return SyncReport(tuple(queued), tuple(r for r in queued if r in pending))
