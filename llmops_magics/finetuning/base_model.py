"""The base model of a fine-tune: found without writing, registered only once the run is valid.

A base is the embedded tiny model, a registered ``model`` reference, or a local
Hugging Face folder. Every fine-tune's output gets a ``base`` lineage edge, so a
local folder is registered too, as a content-addressed ``model`` artifact named
after the folder (``metadata["source_path"]`` says where it came from). Its
digest is the registry's folder digest, so a folder whose content is already a
registered model (the tiny model's cache folder is ``model://tiny-gpt2``) reuses
that artifact instead of storing the weights again.

``find_base`` never writes; ``register_base`` does, and is called only after
every check of the request (and of a resume) has passed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context.workspaces import Workspace
from ..errors import InvalidReferenceError, NotFoundError, ValidationError
from ..store import Artifact

__all__ = ["BaseModel", "find_base", "registered_base", "register_base"]


@dataclass(frozen=True)
class BaseModel:
    """Where the base weights are, and what the registry already knows of them."""

    path: Path
    artifact: Artifact | None  # the registered artifact, when there is one already
    defaults: Mapping[str, Any] = field(default_factory=dict)
    tiny: bool = False  # the embedded model (registered by ``tiny_base_model``)
    name: str | None = None  # the registry name a folder gets (a ``[tool.llmops.models]`` name), else the folder's


def find_base(target: str | None, ws: Workspace) -> BaseModel:
    """The base model ``target`` names, without writing anything (the tiny model is built into its cache)."""
    from ..models.named import endpoint_record
    from ..models.tiny import FINETUNE_DEFAULTS, TINY_MODEL_NAME, cache_dir, cached_tiny_model

    if target in (None, "", "tiny", TINY_MODEL_NAME, f"model://{TINY_MODEL_NAME}") and not (
        target and Path(target).expanduser().is_dir()
    ):
        return BaseModel(cached_tiny_model(cache=cache_dir(ws.home)), None, FINETUNE_DEFAULTS, tiny=True)
    assert target is not None
    folder = Path(target).expanduser()
    if folder.is_dir():
        _check_model_folder(folder, target)
        return BaseModel(folder.resolve(), None)
    configured = _configured_base(target, ws)
    if configured is not None:
        return configured
    if folder.exists():
        raise ValidationError(f"base {target!r} is a file; give the model's folder (the one with config.json)")
    reg = ws.registry
    try:
        art = reg.resolve(target, "model")
    except (InvalidReferenceError, NotFoundError) as exc:
        # a mistyped path must not be reported as a malformed reference ("version must be an integer")
        if _looks_like_path(target, unparsable=isinstance(exc, InvalidReferenceError)):
            raise NotFoundError(
                f"base {target!r}: local model folder {str(folder.absolute())!r} does not exist"
            ) from None
        if isinstance(exc, InvalidReferenceError):
            raise
        raise NotFoundError(f"base {target!r} is neither a registered model nor a local model folder") from None
    endpoint = endpoint_record(art)
    if endpoint is not None:
        raise _endpoint_base(target, endpoint["endpoint"])
    return BaseModel(reg.checkout(art), art, dict(art.metadata.get("finetune_defaults", {})))


def _configured_base(target: str, ws: Workspace) -> BaseModel | None:
    """A ``[tool.llmops.models]`` name not registered yet (a registered name wins over the table), without writing."""
    from ..models.named import configured_models

    entry = configured_models().get(target)
    if entry is None or ws.registry.exists(f"model://{target}"):
        return None
    if "endpoint" in entry:
        raise _endpoint_base(target, entry["endpoint"])
    folder = Path(entry["path"]).expanduser()
    if not folder.is_dir():
        raise NotFoundError(
            f"base {target!r}: [tool.llmops.models] names the folder {str(folder)!r}, which does not exist"
        )
    _check_model_folder(folder, target)
    return BaseModel(folder.resolve(), None, name=target)


def _endpoint_base(target: str, url: str) -> ValidationError:
    return ValidationError(
        f"base {target!r} is an endpoint ({url}): fine-tuning needs the model's weights; "
        "give a local model folder or a registered folder model as --base"
    )


def _looks_like_path(target: str, unparsable: bool) -> bool:
    """``./m``, ``~/m``, ``/m`` always; ``models/m`` when it is not a valid reference (``name/3`` is one)."""
    if "://" in target:
        return False
    return target.startswith((".", "~", os.sep)) or (unparsable and os.sep in target)


def _check_model_folder(folder: Path, target: str) -> None:
    if (folder / "config.json").is_file():
        return
    if (folder / "adapter_config.json").is_file():
        raise ValidationError(
            f"base {target!r} is a PEFT adapter folder, not a model; give its base model as --base "
            "(or evaluate and serve the adapter itself)"
        )
    raise ValidationError(f"base {target!r} is a folder but not a Hugging Face model (no config.json)")


def registered_base(base: BaseModel, ws: Workspace, digest: str) -> Artifact | None:
    """The artifact already holding this base (by tiny spec, or any ``model`` with this digest), or None."""
    if base.artifact is not None:
        return base.artifact
    reg = ws.registry
    if base.tiny:
        from ..models.tiny import TINY_MODEL_NAME, TinyModelSpec

        key = TinyModelSpec().key
        if reg.exists(f"model://{TINY_MODEL_NAME}"):
            return next(
                (a for a in reversed(reg.versions("model", TINY_MODEL_NAME)) if a.metadata.get("spec_key") == key),
                None,
            )
        return None
    return reg.find_digest("model", digest)


def register_base(base: BaseModel, ws: Workspace, digest: str) -> Artifact:
    """The registered artifact for ``base``, registering a local folder (or the tiny model) if needed."""
    found = registered_base(base, ws, digest)
    if found is not None:
        return found
    from ..ops.catalog import Call
    from ..ops.models import MODEL, TINY, ModelSpec

    source = TINY if base.tiny else str(base.path)
    return MODEL.run(ModelSpec(source=source, name=base.name), Call(workspace=ws))
