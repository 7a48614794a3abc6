"""A running deployment's state record (registry state, namespace ``deployments``) and its files.

The record says where the server is and how to stop it; the JupyterLab sidebar and a
fresh kernel read it::

    {"name", "ref", "target", "prompt", "pid", "pid_started", "port", "url", "host", "started_at",
     "status", "engine", "canary", "log_path", "monitor_db", "request_log", "config_path", "auth"}

The config file next to it is what the server process was started with: ``{"spec": the
stored DeploySpec, "runtime": {home, artifact, api_key_sha256, wandb settings}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import NotFoundError
from ..store import Registry

__all__ = ["NAMESPACE", "KIND", "run_dir", "require_state", "load_config"]

NAMESPACE = "deployments"
KIND = "deployment"


def run_dir(reg: Registry, name: str) -> Path:
    return reg.home / "deployments" / name


def require_state(reg: Registry, name: str) -> dict[str, Any]:
    state = reg.get_state(NAMESPACE, name)
    if state is None:
        known = ", ".join(sorted(reg.list_state(NAMESPACE))) or "none"
        raise NotFoundError(f"no deployment is named {name!r}; deployments: {known}")
    return state


def load_config(state: dict[str, Any]) -> dict[str, Any]:
    path = Path(state["config_path"])
    if not path.is_file():
        raise NotFoundError(f"deployment {state['name']!r} has lost its config file {path}")
    return json.loads(path.read_text())
