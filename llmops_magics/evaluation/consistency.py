"""The train/serve consistency guard for adapters.

An adapter is only meaningful on the exact base weights, tokenizer and chat template it
was trained with. ``%finetune`` records their digests in the adapter's metadata
(``base_digest``, ``tokenizer_digest``, ``chat_template``); before generating, the eval
compares them with what it is about to load and warns loudly (``ConsistencyWarning``)
about each difference, and the eval artifact records them. Everything is computed from
files, so the check costs no model load and also runs when every answer is cached.

A base model given to ``%finetune`` as a folder has no artifact; its digest is then
recomputed from the folder the eval loads, with the registry's scheme
(``models.loading.tree_digest``), which is also what a registered base's digest is.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.loading import tokenizer_digest, tree_digest

__all__ = ["ConsistencyWarning", "Mismatch", "check_adapter"]


class ConsistencyWarning(UserWarning):
    """An adapter is evaluated on a base model, tokenizer or chat template other than its training one."""


@dataclass(frozen=True)
class Mismatch:
    target: str
    field: str
    recorded: str | None
    loaded: str | None

    def message(self) -> str:
        short = lambda v: "none" if v is None else (v[:12] if len(v) == 64 else repr(v[:60]))
        return (
            f"train/serve mismatch for {self.target}: {self.field} was {short(self.recorded)} in training "
            f"but is {short(self.loaded)} now; its scores may not reflect the trained adapter"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "field": self.field, "recorded": self.recorded, "loaded": self.loaded}


def tokenizer_folder(base: Path, adapter: Path | None) -> Path:
    """The folder ``load_model`` takes the tokenizer from: the adapter's when it ships one."""
    if adapter is not None and (adapter / "tokenizer_config.json").is_file():
        return adapter
    return base


def chat_template_of(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            value = json.loads(cfg.read_text()).get("chat_template")
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    return None


def _base_folder_digest(src: Any, meta: dict[str, Any]) -> str | None:
    """The digest of an unregistered base folder, hashed only when training recorded one to compare with."""
    if "base_digest" not in meta:
        return None
    return tree_digest(src.base_path)


def check_adapter(target: Any, warn: bool = True) -> list[Mismatch]:
    """Mismatches between an adapter target's recorded training setup and what will be loaded."""
    adapter = target.adapter
    if adapter is None or target.backend.kind != "local":
        return []
    src = target.backend.source
    meta = adapter.metadata
    tok_dir = tokenizer_folder(src.base_path, src.adapter_path)
    loaded = {
        "base_digest": src.base_artifact.digest if src.base_artifact is not None else _base_folder_digest(src, meta),
        "tokenizer_digest": tokenizer_digest(tok_dir),
        "chat_template": chat_template_of(tok_dir),
    }
    found = []
    for key, now in loaded.items():
        if key not in meta:
            continue  # nothing recorded: nothing to compare
        recorded = meta.get(key)
        if (recorded or None) != (now or None):
            found.append(Mismatch(adapter.ref, key, recorded, now))
    if warn:
        for m in found:
            warnings.warn(m.message(), ConsistencyWarning, stacklevel=3)
    return found
