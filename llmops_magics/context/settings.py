"""The settings of a workspace: defaults from ``[tool.llmops]``, then the environment, then ``configure``.

Plain data and small functions only: the magics' ``%config LLMOps.…`` traits read these
when the extension loads, before anything opens a registry or imports W&B.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ValidationError
from .home import project_config

__all__ = ["Settings", "default_settings", "resolve_mode", "WANDB_MODES"]

WANDB_MODES = ("auto", "offline", "online", "disabled")
_ENV_MODES = {"offline": "offline", "dryrun": "offline", "online": "online", "run": "online", "disabled": "disabled"}


@dataclass(frozen=True)
class Settings:
    home: str | None = None
    wandb_mode: str = "auto"
    wandb_project: str = "llmops"
    wandb_entity: str | None = None
    wandb_timeout: float = 60.0
    wandb_exit_timeout: float = 15.0
    judge_model: str | None = None  # the model an eval's judge metrics use when the eval names none


_ENV = {
    "home": "LLMOPS_HOME",
    "wandb_mode": "LLMOPS_WANDB_MODE",
    "wandb_project": "LLMOPS_WANDB_PROJECT",
    "wandb_entity": "LLMOPS_WANDB_ENTITY",
    "judge_model": "LLMOPS_JUDGE_MODEL",
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
    for key in ("wandb_timeout", "wandb_exit_timeout"):
        if key in values:
            values[key] = float(values[key])
    return Settings(**values)


def resolve_mode(mode: str = "auto") -> str:
    """``auto`` follows ``WANDB_MODE`` when set and is otherwise offline (online is always a choice)."""
    if mode not in WANDB_MODES:
        raise ValidationError(f"wandb mode must be one of {', '.join(WANDB_MODES)}, found {mode!r}")
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    return _ENV_MODES.get(env, "offline")
