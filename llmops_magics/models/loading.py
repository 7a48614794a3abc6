"""Load a base model or an adapter, by registry reference or local folder, for inference.

One loader for evaluation and serving, so both see the same weights, tokenizer
and padding. An ``adapter`` artifact records its base in ``metadata["base_model"]``
(a reference such as ``model://tiny-gpt2/1``); a local PEFT folder names its base in
``adapter_config.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context.workspaces import Workspace, current
from ..errors import NotFoundError, ValidationError
from ..store import Artifact
from ..store.blobs import tree_digest  # re-exported: fine-tuning and eval identify base folders by it

__all__ = ["LoadedModel", "load_model", "resolve_model_source", "tokenizer_digest", "tree_digest", "pick_device"]


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    base_path: Path
    adapter_path: Path | None = None
    artifact: Artifact | None = None  # what was asked for (model or adapter)
    base_artifact: Artifact | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.artifact is not None:
            return self.artifact.ref
        return str(self.adapter_path or self.base_path)


@dataclass(frozen=True)
class ModelSource:
    base_path: Path
    adapter_path: Path | None
    artifact: Artifact | None
    base_artifact: Artifact | None


def pick_device(device: str | None = None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def tokenizer_digest(folder: Path) -> str:
    """A digest over the tokenizer files alone, to check train/serve consistency."""
    h = hashlib.sha256()
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.json",
        "merges.txt",
        "tokenizer.model",
        "chat_template.jinja",
    ):
        p = folder / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def resolve_model_source(target: str | Path | Artifact, workspace: Workspace | None = None) -> ModelSource:
    """Where the base weights and the adapter (if any) are, for a reference or a local folder."""
    ws = workspace or current()
    reg = ws.registry
    if isinstance(target, Path) or (isinstance(target, str) and Path(target).expanduser().is_dir()):
        folder = Path(target).expanduser().resolve()
        cfg = folder / "adapter_config.json"
        if cfg.is_file():
            base = json.loads(cfg.read_text()).get("base_model_name_or_path")
            if not base:
                raise ValidationError(f"{cfg} does not name its base model (base_model_name_or_path)")
            base_src = resolve_model_source(base, ws)
            return ModelSource(base_src.base_path, folder, None, base_src.base_artifact)
        if not (folder / "config.json").is_file():
            raise ValidationError(f"{folder} is not a Hugging Face model folder (no config.json)")
        return ModelSource(folder, None, None, None)
    try:
        art = reg.resolve(target)
    except NotFoundError:
        from .named import model_for

        art = model_for(str(target), ws) if isinstance(target, str) else None
        if art is None:
            raise NotFoundError(
                f"{target!r} is neither a registered model/adapter, a local model folder, 'tiny', "
                "nor a name in [tool.llmops.models]"
            ) from None
    if art.kind == "model" and art.metadata.get("endpoint"):
        raise ValidationError(
            f"{art.ref} is an endpoint ({art.metadata['endpoint']}): it has no weights here to load, "
            "fine-tune or serve; evaluate it, or register a model folder"
        )
    if art.kind == "model":
        return ModelSource(reg.checkout(art), None, art, art)
    if art.kind == "adapter":
        base_ref = art.metadata.get("base_model")
        if not base_ref:
            raise ValidationError(f"{art.ref} does not record its base model (metadata base_model)")
        base = resolve_model_source(base_ref, ws)
        return ModelSource(base.base_path, reg.checkout(art), art, base.base_artifact)
    raise ValidationError(f"{art.ref} is a {art.kind}; a model or adapter is needed here")


def load_model(
    target: str | Path | Artifact,
    *,
    device: str | None = None,
    dtype: str | None = None,
    merge: bool = False,
    workspace: Workspace | None = None,
) -> LoadedModel:
    """Model in eval mode and tokenizer with left padding (what batched decoding needs)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve_model_source(target, workspace)
    device = pick_device(device)
    torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    tok_dir = (
        src.adapter_path
        if src.adapter_path and (src.adapter_path / "tokenizer_config.json").is_file()
        else src.base_path
    )
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(src.base_path, dtype=torch_dtype)
    if src.adapter_path is not None:
        import warnings

        from peft import PeftModel

        with warnings.catch_warnings():  # PEFT reads transformers' deprecated is_gradient_checkpointing
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            model = PeftModel.from_pretrained(model, src.adapter_path)
        if merge:
            model = model.merge_and_unload()
    model.to(device)
    model.eval()
    info = {
        "base_path": str(src.base_path),
        "tokenizer_digest": tokenizer_digest(Path(tok_dir)),
        "chat_template": getattr(tokenizer, "chat_template", None),
    }
    if src.base_artifact is not None:
        info["base_digest"] = src.base_artifact.digest
    return LoadedModel(model, tokenizer, device, src.base_path, src.adapter_path, src.artifact, src.base_artifact, info)
