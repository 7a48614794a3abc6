"""Registering base models: what ``register_model`` (``ops/models.py``) runs.

A folder is saved content-addressed under a name taken from the folder (or given), with
what a chooser needs to know from its ``config.json``. A folder whose content is already
a registered model (the tiny model's cache folder is ``model://tiny-gpt2``) comes back as
that version instead of storing the weights again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ValidationError
from ..recording.publish import publish
from ..store import Artifact
from ..store.refs import safe_name

if TYPE_CHECKING:
    from ..ops.catalog import Call
    from ..ops.models import ModelSpec

__all__ = ["run_register"]


def run_register(spec: ModelSpec, call: Call) -> Artifact:
    from ..ops.models import TINY

    ws = call.ws
    if spec.source == TINY:
        from .tiny import tiny_base_model

        return tiny_base_model(ws, call=call, name=spec.name, aliases=spec.aliases)
    folder = Path(spec.source).expanduser()
    if not folder.is_dir():
        raise ValidationError(f"model source {spec.source!r} is not a folder (nor 'tiny')")
    if not (folder / "config.json").is_file():
        what = (
            "a PEFT adapter, not a model" if (folder / "adapter_config.json").is_file() else "not a Hugging Face model"
        )
        raise ValidationError(f"model source {spec.source!r} is {what} (no config.json)")
    folder = folder.resolve()
    config = json.loads((folder / "config.json").read_text())
    from ..models.loading import tree_digest

    digest = tree_digest(folder)
    found = ws.registry.find_digest("model", digest)
    if found is not None and spec.name in (None, found.name):
        if spec.aliases:
            for alias in spec.aliases:
                found = ws.registry.set_alias(found, alias)
        return found
    stored = spec.replace(source=str(folder))
    return publish(
        ws,
        "model",
        spec.name or safe_name(folder.name, "local-model"),
        spec=stored,
        call=call,
        path=folder,
        aliases=spec.aliases,
        metadata={
            "source_path": str(folder),
            "description": spec.description,
            "architecture": config.get("model_type"),
        },
    ).artifact
