"""Mirror a registry artifact to the tracker in the background, writing back where it went."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..context.workspaces import Workspace
from ..store import Artifact
from .base import Tables

__all__ = ["mirror_artifact"]


def mirror_artifact(
    ws: Workspace, art: Artifact, inputs: Sequence[tuple[Artifact, str]] = (), tables: Tables | None = None
) -> None:
    """Queue ``art`` for W&B (same kind, name, aliases); its ``wandb`` field is filled in when done.

    ``tables`` (``{key: (columns, rows)}``) are added to the W&B artifact, e.g. a dataset preview.
    """
    reg = ws.registry
    path: Path = reg.checkout(art)
    ws.recorder.record_artifact(art, path, inputs, on_done=lambda info: reg.update_wandb(art, info), tables=tables)
