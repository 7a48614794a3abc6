"""Process-wide entry points of the public API."""

from __future__ import annotations

from .context import Workspace, configure, current
from .store import Registry

__all__ = ["registry", "configure", "flush", "workspace"]


def workspace() -> Workspace:
    """The registry and recorder the API uses by default (see ``configure``)."""
    return current()


def registry() -> Registry:
    """The default registry: ``LLMOPS_HOME``, the project's ``[tool.llmops] home``, or ``./.llmops``."""
    return current().registry


def flush(timeout: float | None = None) -> bool:
    """Wait for queued W&B mirroring; True when all of it finished in time."""
    return current().recorder.flush(timeout)


configure = configure
