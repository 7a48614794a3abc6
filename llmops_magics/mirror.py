"""Mirror a registry artifact to the tracker in the background, writing back where it went."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .context import Workspace
from .store import Artifact

__all__ = ["mirror_artifact"]


def mirror_artifact(ws: Workspace, art: Artifact, inputs: Sequence[tuple[Artifact, str]] = ()) -> None:
    """Queue ``art`` for W&B (same kind, name, aliases); its ``wandb`` field is filled in when done."""
    reg = ws.registry
    path: Path = reg.checkout(art)
    ws.recorder.record_artifact(art, path, inputs, on_done=lambda info: reg.update_wandb(art, info))
