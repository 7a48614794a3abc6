"""What a chooser needs to know about a model folder, read without loading it.

Architecture, parameter count, context length, dtype and vocabulary size come from
``config.json`` and the safetensors headers (8 bytes of length, then JSON naming every
tensor's shape: counting parameters never reads the weights). The tokenizer and chat
template are identified by digest, so two folders that would tokenize differently are told
apart. The license comes from the README's front matter (``license:``, as the Hugging Face
Hub writes model cards), else from a LICENSE file's first line.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

__all__ = ["describe_folder", "parameter_count", "folder_license", "chat_template"]

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its header at 100 MB


def parameter_count(folder: Path) -> int | None:
    """Sum of the tensors' sizes in the folder's ``*.safetensors`` files (None without any)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > _MAX_HEADER:
                return None
            header = json.loads(fh.read(length))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


def folder_license(folder: Path) -> str | None:
    readme = folder / "README.md"
    if readme.is_file():
        lines = readme.read_text(errors="replace").splitlines()
        if lines[:1] == ["---"]:
            for line in lines[1:]:
                if line.strip() == "---":
                    break
                key, _, value = line.partition(":")
                if key.strip() == "license" and value.strip():
                    return value.strip().strip("'\"")
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
        path = folder / name
        if path.is_file():
            first = next((line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()), "")
            return first[:80] or None
    return None


def chat_template(folder: Path) -> str | None:
    """The folder's chat template: ``chat_template.jinja``, else ``tokenizer_config.json``'s."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        template = json.loads(cfg.read_text()).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def describe_folder(folder: Path) -> dict[str, Any]:
    """The model card fields of a Hugging Face folder (see the module docstring)."""
    from .loading import tokenizer_digest

    config = json.loads((folder / "config.json").read_text())
    text = config.get("text_config") or config  # multimodal configs nest the language model's
    template = chat_template(folder)
    return {
        "architecture": config.get("model_type"),
        "architectures": config.get("architectures"),
        "parameters": parameter_count(folder),
        "context_length": next((text[k] for k in _CONTEXT_KEYS if isinstance(text.get(k), int)), None),
        "dtype": config.get("torch_dtype") or config.get("dtype"),
        "vocab_size": text.get("vocab_size"),
        "tokenizer_digest": tokenizer_digest(folder),
        "chat_template_digest": hashlib.sha256(template.encode()).hexdigest() if template else None,
        "license": folder_license(folder),
    }
