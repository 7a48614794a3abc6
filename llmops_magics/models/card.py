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

from ..errors import ValidationError

__all__ = ["describe_folder", "parameter_count", "folder_license", "chat_template"]

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its header at 100 MB


def parameter_count(folder: Path) -> int | None:
    """Sum of the tensors' sizes in the folder's ``*.safetensors`` files (None without any)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    return sum(_tensor_sizes(path) for path in files)


def _tensor_sizes(path: Path) -> int:
    with path.open("rb") as fh:
        head = fh.read(8)
        if head.startswith(b"version"):  # "version https://git-lfs.github.com/spec/v1"
            raise ValidationError(f"{path} is a Git LFS pointer, not the weights: run `git lfs pull` in its folder")
        if len(head) < 8:
            raise ValidationError(f"{path} is not a safetensors file ({len(head)} bytes)")
        (length,) = struct.unpack("<Q", head)
        if length > _MAX_HEADER:
            raise ValidationError(f"{path} is not a safetensors file (its header would be {length} bytes)")
        try:
            header = json.loads(fh.read(length))
            return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ValidationError(f"{path} is not a safetensors file (its header is not a tensor table)") from None


def _json(path: Path) -> dict[str, Any]:
    """A folder's JSON file as an object; one readable line when it is not one."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise ValidationError(f"{path} must hold a JSON object, found {type(value).__name__}")
    return value


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
        template = _json(cfg).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def describe_folder(folder: Path) -> dict[str, Any]:
    """The model card fields of a Hugging Face folder (see the module docstring)."""
    from .loading import tokenizer_digest

    config = _json(folder / "config.json")
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
