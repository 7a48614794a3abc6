"""The process-wide workspace: which registry and which recorder the API uses by default.

Defaults come from ``[tool.llmops]`` in the project's ``pyproject.toml``, then
environment variables (``LLMOPS_HOME``, ``LLMOPS_WANDB_MODE``, ``LLMOPS_WANDB_PROJECT``,
``LLMOPS_WANDB_ENTITY``), then ``configure(...)`` (which ``%config LLMOps.…`` calls).

Changing a setting makes a new ``Workspace`` but never closes the old one: a
background job (a fine-tune, an eval) keeps the workspace it started with and must
still be able to register its result after the notebook renamed the W&B project.
Registries are therefore shared, one open ``Registry`` per folder in the process,
and closed only when nothing holds them any more.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .home import resolve_home
from .settings import Settings, default_settings, resolve_mode

if TYPE_CHECKING:  # imported when first used: %load_ext reads settings without loading the registry
    from ..recording import SafeRecorder
    from ..recording.base import Recorder
    from ..store import Registry

__all__ = ["Settings", "Workspace", "current", "configure", "default_settings"]


_registries: weakref.WeakValueDictionary[Path, Registry] = weakref.WeakValueDictionary()
_registries_lock = threading.Lock()


def shared_registry(home: Path) -> Registry:
    """The process's one open ``Registry`` on ``home``, opened on first use.

    Workspaces on the same folder share it, so replacing the current workspace never
    invalidates a handle another thread obtained earlier; it is closed when the last
    holder lets go of it.
    """
    from ..store import Registry

    with _registries_lock:
        reg = _registries.get(home)
        if reg is None or reg.closed:
            reg = Registry(home)
            _registries[home] = reg
        return reg


class Workspace:
    """A registry plus the recorder that mirrors it; built lazily, one per settings.

    ``recorder``: ``"default"`` builds the W&B recorder the settings describe, ``None``
    records nothing, a ``Recorder`` is used as given.
    """

    def __init__(self, settings: Settings, recorder: Recorder | str | None = "default") -> None:
        self.settings = settings
        self._registry: Registry | None = None
        self._recorder: SafeRecorder | None = None
        self._recorder_choice = recorder
        self._lock = threading.Lock()

    @property
    def home(self) -> Path:
        return resolve_home(explicit=self.settings.home)

    @property
    def registry(self) -> Registry:
        with self._lock:
            if self._registry is None:
                self._registry = shared_registry(self.home)
            return self._registry

    @property
    def recorder(self) -> SafeRecorder:
        from ..recording import SafeRecorder

        with self._lock:
            if self._recorder is None:
                self._recorder = SafeRecorder(
                    self._make_recorder(),
                    timeout=self.settings.wandb_timeout,
                    exit_timeout=self.settings.wandb_exit_timeout,
                )
            return self._recorder

    def _make_recorder(self) -> Recorder | None:
        from ..recording import WandbOptions, WandbRecorder

        if self._recorder_choice != "default":
            return self._recorder_choice  # type: ignore[return-value]
        mode = resolve_mode(self.settings.wandb_mode)
        if mode == "disabled":
            return None
        wandb_dir = os.environ.get("WANDB_DIR") or str(self.home.parent)
        return WandbRecorder(
            WandbOptions(
                mode=mode,
                project=self.settings.wandb_project,
                entity=self.settings.wandb_entity,
                dir=wandb_dir,
                init_timeout=min(self.settings.wandb_timeout, 90.0),
            )
        )

    def close(self) -> None:
        """Wait (bounded) for queued mirroring and let go of the registry.

        The registry itself stays open while other workspaces or running jobs hold it.
        """
        if self._recorder is not None:
            self._recorder.flush(self.settings.wandb_exit_timeout)
        with self._lock:
            self._registry = None


_current: Workspace | None = None
_current_lock = threading.Lock()


def current() -> Workspace:
    global _current
    with _current_lock:
        if _current is None:
            _current = Workspace(default_settings())
        return _current


_KEEP = "keep"


def configure(*, recorder: Recorder | str | None = _KEEP, **changes: Any) -> Workspace:
    """Change the process-wide defaults (for example ``configure(home="/tmp/reg", wandb_mode="disabled")``).

    ``recorder`` replaces the tracker outright (a ``MemoryRecorder`` in unit tests,
    ``None`` for none, ``"default"`` for the W&B one the settings describe); left out,
    a recorder given to an earlier ``configure`` stays, whatever else changes.

    The previous workspace is not closed: jobs that hold it keep its registry (shared,
    see ``shared_registry``) and its recorder, which finishes its queue in the background.
    """
    global _current
    known = {f.name for f in fields(Settings)}
    unknown = set(changes) - known
    if unknown:
        raise ValidationError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    if "wandb_mode" in changes:
        resolve_mode(changes["wandb_mode"])
    with _current_lock:
        base = _current.settings if _current is not None else default_settings()
        if recorder == _KEEP:
            recorder = _current._recorder_choice if _current is not None else "default"
        _current = Workspace(replace(base, **changes), recorder)
        return _current
