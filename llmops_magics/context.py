"""The process-wide workspace: which registry and which recorder the API uses by default.

Defaults come from ``[tool.llmops]`` in the project's ``pyproject.toml``, then
environment variables (``LLMOPS_HOME``, ``LLMOPS_WANDB_MODE``, ``LLMOPS_WANDB_PROJECT``,
``LLMOPS_WANDB_ENTITY``), then ``configure(...)`` (which ``%config LLMOps.…`` calls).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .config import project_config, resolve_home
from .errors import ValidationError
from .recording import SafeRecorder, WandbOptions, WandbRecorder, resolve_mode
from .recording.base import Recorder
from .store import Registry

__all__ = ["Settings", "Workspace", "current", "configure", "default_settings"]


@dataclass(frozen=True)
class Settings:
    home: str | None = None
    wandb_mode: str = "auto"
    wandb_project: str = "llmops"
    wandb_entity: str | None = None
    wandb_timeout: float = 60.0


_ENV = {
    "home": "LLMOPS_HOME",
    "wandb_mode": "LLMOPS_WANDB_MODE",
    "wandb_project": "LLMOPS_WANDB_PROJECT",
    "wandb_entity": "LLMOPS_WANDB_ENTITY",
}


def default_settings() -> Settings:
    cfg = project_config()
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {k: v for k, v in cfg.values.items() if k in known}
    for key, var in _ENV.items():
        if os.environ.get(var):
            values[key] = os.environ[var]
    if "home" in values and cfg.root is not None and not os.environ.get("LLMOPS_HOME"):
        values["home"] = str(cfg.root / values["home"])
    if "wandb_timeout" in values:
        values["wandb_timeout"] = float(values["wandb_timeout"])
    return Settings(**values)


class Workspace:
    """A registry plus the recorder that mirrors it; built lazily, one per settings."""

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
                self._registry = Registry(self.home)
            return self._registry

    @property
    def recorder(self) -> SafeRecorder:
        with self._lock:
            if self._recorder is None:
                self._recorder = SafeRecorder(self._make_recorder(), timeout=self.settings.wandb_timeout)
            return self._recorder

    def _make_recorder(self) -> Recorder | None:
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
        if self._recorder is not None:
            self._recorder.flush()
        if self._registry is not None:
            self._registry.close()


_current: Workspace | None = None
_current_lock = threading.Lock()


def current() -> Workspace:
    global _current
    with _current_lock:
        if _current is None:
            _current = Workspace(default_settings())
        return _current


def configure(*, recorder: Recorder | str | None = "default", **changes: Any) -> Workspace:
    """Change the process-wide defaults (for example ``configure(home="/tmp/reg", wandb_mode="disabled")``).

    ``recorder`` replaces the tracker outright (a ``MemoryRecorder`` in unit tests).
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
        if _current is not None:
            _current.close()
        _current = Workspace(replace(base, **changes), recorder)
        return _current
