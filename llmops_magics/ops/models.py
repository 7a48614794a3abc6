"""Registering a base model: ``%model SOURCE``, ``register_model(source)``, ``llmops model SOURCE``.

A source is a local Hugging Face model folder (stored content-addressed: the same weights
are the same version, under any name), ``tiny``, the embedded model the project trains
itself, or an OpenAI-compatible endpoint's base URL with the model it serves and the *name*
of the environment variable holding its key (a key is never stored). A fine-tune's local
``--base`` folder, a ``%deploy`` of a folder and a model named in ``[tool.llmops.models]``
are registered through this operation too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..store import Artifact

__all__ = ["ModelSpec", "register_model", "MODEL", "TINY"]

TINY = "tiny"


@dataclass(frozen=True, kw_only=True)
class ModelSpec(Spec):
    """A base model version: where its weights are, and what to call it."""

    op = "model"

    source: str = option(
        positional=True,
        help="A local Hugging Face model folder (with config.json), 'tiny' for the embedded model, "
        "or an OpenAI-compatible endpoint's base URL (http://host:port/v1).",
    )
    name: str | None = option(None, short="-n", help="Registry name (default: the folder's name; tiny-gpt2 for tiny).")
    aliases: tuple[str, ...] = option(
        (), flag="--alias", short="-a", help="Alias to point at this version (repeatable)."
    )
    description: str | None = option(None, short="-d", help="What this model is (metadata, not content).")
    served_model: str | None = option(
        None, flag="--served-model", help="For an endpoint: the model name it serves (its /v1/models id)."
    )
    key_env: str | None = option(
        None,
        flag="--key-env",
        help="For an endpoint: the environment variable (or .env entry) holding its API key; the key is never stored.",
    )


def register_model(
    source: str,
    *,
    name: str | None = None,
    aliases: Sequence[str] = (),
    description: str | None = None,
    served_model: str | None = None,
    key_env: str | None = None,
    workspace: Workspace | None = None,
) -> Artifact:
    """Register a base model (see the module docstring); the version already holding it comes back unchanged."""
    return MODEL.call(locals())


MODEL = Operation(
    "model",
    ModelSpec,
    "llmops_magics.models.registration:run_register",
    "register_model",
    "register a local Hugging Face model folder, the embedded tiny model or an endpoint as a model version",
)
