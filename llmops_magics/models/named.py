"""Models by name: ``[tool.llmops.models]``, local folders and ``tiny``, wherever a model is asked for.

A project names its models once::

    [tool.llmops.models]
    small-llama = "models/small-llama"                 # a folder, relative to pyproject.toml
    gpt = { endpoint = "http://127.0.0.1:8000/v1", served_model = "gpt", key_env = "GPT_KEY" }

and every front then takes the name (``--base small-llama``, an ``%eval`` target, a judge,
``%deploy small-llama``). A name is registered on first use, as ``register_model`` would,
so the run that used it has a version to link to; a registered name always wins over the
table. An endpoint's key is read from the environment, then from the project's ``.env``,
when a call needs it, and is never written anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..context.home import project_config
from ..errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from ..store import Artifact

__all__ = ["configured_models", "model_for", "endpoint_key", "endpoint_record"]


def configured_models() -> dict[str, dict[str, Any]]:
    cfg = project_config()
    table = cfg.get("models") or {}
    if not isinstance(table, dict):
        raise ValidationError("[tool.llmops.models] must be a table of name = folder or {endpoint = ...}")
    out = {}
    for name, entry in table.items():
        entry = {"path": entry} if isinstance(entry, str) else dict(entry)
        if "path" in entry and cfg.root is not None and not Path(entry["path"]).expanduser().is_absolute():
            entry["path"] = str(cfg.root / entry["path"])
        if ("path" in entry) == ("endpoint" in entry):
            raise ValidationError(f"[tool.llmops.models] {name}: give either path or endpoint (with served_model)")
        out[name] = entry
    return out


def model_for(text: str, ws: Any) -> Artifact | None:
    """The model version ``text`` stands for when it is ``tiny``, a model folder or a configured name.

    None when it is none of those (the caller then resolves it as a registry reference).
    """
    from ..ops.models import TINY, register_model

    if text == TINY:
        return register_model(TINY, workspace=ws)
    if not text.startswith(("model://", "adapter://")) and (Path(text).expanduser() / "config.json").is_file():
        return register_model(text, workspace=ws)
    entry = configured_models().get(text)
    if entry is None:
        return None
    try:
        return ws.registry.resolve(text, "model")
    except NotFoundError:
        pass
    if "path" in entry:
        return register_model(entry["path"], name=text, workspace=ws)
    return register_model(
        entry["endpoint"], name=text, served_model=entry.get("served_model"), key_env=entry.get("key_env"), workspace=ws
    )


def endpoint_record(art: Artifact) -> dict[str, Any] | None:
    """``{"endpoint", "served_model", "key_env"}`` for an endpoint model version, else None."""
    meta = art.metadata or {}
    return {k: meta.get(k) for k in ("endpoint", "served_model", "key_env")} if meta.get("endpoint") else None


def endpoint_key(key_env: str | None) -> str | None:
    """The key held by ``key_env``: the environment first, then the project's ``.env`` file."""
    if not key_env:
        return None
    if os.environ.get(key_env):
        return os.environ[key_env]
    root = project_config().root
    dotenv = (root or Path.cwd()) / ".env"
    if dotenv.is_file():
        for line in dotenv.read_text(errors="replace").splitlines():
            key, sep, value = line.removeprefix("export ").partition("=")
            if sep and key.strip() == key_env:
                return value.strip().strip("'\"")
    raise ValidationError(f"the endpoint's key variable {key_env} is not set (in the environment or .env)")
