"""Redaction on by default where text leaves its owner's hands: request-log texts and W&B tables.

``LogRedactor`` is what a model server applies to the prompts and completions it logs
(``DeploySpec.redact_log``, on unless ``--no-redact-log``): it runs in the request log's
writer thread, so a request never waits on it, and builds Presidio on its first batch,
so a server starts as fast as before. ``wandb_rows`` redacts the text cells of a table
of examples before it is mirrored to W&B, unless ``[tool.llmops.governance]
redact_wandb_tables = false``. Both replace what they find with its type
(``<EMAIL_ADDRESS>``), so drift checks and readers still see the shape of the text.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from .entities import settings

__all__ = ["LogRedactor", "wandb_rows", "IDENTIFIERS"]

# Columns of an eval's examples table that name things rather than hold free text.
IDENTIFIERS = frozenset({"example", "target", "model", "prompt_version", "finish_reason"})


class LogRedactor:
    """``redactor(texts) -> texts``: the default entities replaced; None stays None."""

    def __init__(self, model: str | None = None, threshold: float | None = None) -> None:
        from .entities import DEFAULT_THRESHOLD

        self._model = model
        self._threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        self._regions: tuple[str, ...] | None = None
        self._ready = False

    def __call__(self, texts: Sequence[str | None]) -> list[str | None]:
        from .engine import engine
        from .entities import default_entities

        if not self._ready:  # the project's settings are read in the process that redacts (the server's)
            config = settings()
            self._model = self._model or config["pii_model"]
            self._regions = config["phone_regions"]
            self._ready = True
        eng = engine(self._model, self._regions)
        # workers=1: a model server's writer thread never forks the server (its engine, threads, sockets)
        return _redact(eng, texts, default_entities(self._model), self._threshold, workers=1)


def _redact(
    eng: Any, texts: Sequence[str | None], entities: Sequence[str], threshold: float, *, workers: int | None = None
) -> list[str | None]:
    wanted = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
    found = eng.find([texts[i] for i in wanted], entities, threshold, workers=workers)
    out = list(texts)
    for i, fs in zip(wanted, found, strict=True):
        if fs:
            out[i] = eng.redact(texts[i], fs, "replace")
    return out


def wandb_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """``rows`` with the text cells of every free-text column redacted, as configured.

    When redaction is on but Presidio is not installed, the text columns are left out
    (``None``) with one warning: a table of examples never reaches W&B unredacted by default.
    """
    from ..errors import LLMOpsError
    from ..recording.base import RecordingWarning

    out = [list(r) for r in rows]
    try:
        config = settings()
        if not config["redact_wandb_tables"] or not out:
            return out
        text_at = [i for i, c in enumerate(columns) if c not in IDENTIFIERS]
        cells = [(r, i) for r in out for i in text_at if isinstance(r[i], str) and r[i].strip()]
        from .engine import engine
        from .entities import DEFAULT_THRESHOLD, default_entities

        model = config["pii_model"]
        eng = engine(model, config["phone_regions"])
        redacted = _redact(eng, [r[i] for r, i in cells], default_entities(model), DEFAULT_THRESHOLD)
    except LLMOpsError as exc:
        warnings.warn(
            f"the W&B table's text columns were left out: {exc} "
            "(or set [tool.llmops.governance] redact_wandb_tables = false)",
            RecordingWarning,
            stacklevel=2,
        )
        text_at = [i for i, c in enumerate(columns) if c not in IDENTIFIERS]
        cells = [(r, i) for r in out for i in text_at if isinstance(r[i], str)]
        redacted = [None] * len(cells)
    for (row, i), text in zip(cells, redacted, strict=True):
        row[i] = text
    return out
