"""The context every call runs in: which registry and recorder, with which settings, from which cell.

- ``home``: where the registry folder is (walking up to ``.llmops/`` or ``[tool.llmops]``).
- ``workspaces``: the process-wide ``Workspace`` (a registry plus its recorder) and ``configure``.
- ``provenance``: where an artifact came from (the notebook cell, library versions, time).

The functions below are public API. They import ``workspaces`` when called, so that
``store`` may import ``home`` without pulling in the recorder (and without a cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store import Registry
    from .workspaces import Workspace

__all__ = ["registry", "configure", "flush", "workspace"]


def workspace() -> Workspace:
    """The registry and recorder the API uses by default (see ``configure``)."""
    from .workspaces import current

    return current()


def registry() -> Registry:
    """The default registry: ``LLMOPS_HOME``, the project's ``[tool.llmops] home``, or ``./.llmops``."""
    return workspace().registry


def flush(timeout: float | None = None) -> bool:
    """Wait for queued W&B mirroring; True when all of it finished in time."""
    return workspace().recorder.flush(timeout)


def configure(**changes: Any) -> Workspace:
    """Change the process-wide defaults; see ``llmops_magics.context.workspaces.configure``."""
    from .workspaces import configure as _configure

    return _configure(**changes)
