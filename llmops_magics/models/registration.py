"""Registering base models: what ``register_model`` (``ops/models.py``) runs.

A folder is saved content-addressed under a name taken from the folder (or given), with
what a chooser needs to know (``card.describe_folder``). A folder whose content is already
a registered model (the tiny model's cache folder is ``model://tiny-gpt2``) comes back as
that version instead of storing the weights again. An endpoint is stored as a small JSON
record (URL, served model, key variable): evaluation calls it, fine-tuning and deployment,
which need weights, refuse it in one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ValidationError
from ..evaluation.endpoint import is_endpoint, normalize_url
from ..recording.publish import publish
from ..store import Artifact
from ..store.refs import safe_name
from .card import describe_folder

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
    if is_endpoint(spec.source):
        return _register_endpoint(spec, call)
    if spec.served_model or spec.key_env:
        raise ValidationError("--served-model and --key-env describe an endpoint; the source is a folder")
    folder = Path(spec.source).expanduser()
    if not folder.is_dir():
        raise ValidationError(f"model source {spec.source!r} is not a folder (nor 'tiny')")
    if not (folder / "config.json").is_file():
        what = (
            "a PEFT adapter, not a model" if (folder / "adapter_config.json").is_file() else "not a Hugging Face model"
        )
        raise ValidationError(f"model source {spec.source!r} is {what} (no config.json)")
    folder = folder.resolve()
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
        metadata={"source_path": str(folder), "description": spec.description, **describe_folder(folder)},
    ).artifact


def _register_endpoint(spec: ModelSpec, call: Call) -> Artifact:
    url = normalize_url(spec.source)
    if not spec.served_model:
        raise ValidationError(f"endpoint {url} needs --served-model: the model name it serves (its /v1/models id)")
    if spec.key_env is not None and not spec.key_env.replace("_", "").isalnum():
        raise ValidationError(f"--key-env takes the name of an environment variable, found {spec.key_env!r}")
    record = {"endpoint": url, "served_model": spec.served_model, "key_env": spec.key_env}
    return publish(
        call.ws,
        "model",
        spec.name or safe_name(spec.served_model, "endpoint-model"),
        spec=spec.replace(source=url),
        call=call,
        data=json.dumps(record, sort_keys=True).encode(),
        aliases=spec.aliases,
        metadata={**record, "description": spec.description, "architecture": "endpoint", "filename": "endpoint.json"},
    ).artifact
