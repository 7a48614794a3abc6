"""Large PII scans on every core: the built engine forked, the texts split between the copies.

Presidio's analysis is Python holding the GIL, so one scan used one core however many the
machine has. Threads cannot help; processes can, and forked ones inherit the engine already
built (see ``llmops_magics.forking``), so a worker is ready in milliseconds instead of the
seconds that importing Presidio and spaCy and building the recognizers take again in a fresh
process. The texts are cut into one contiguous chunk per worker and the findings come back in
order, so the result is the one-process scan's.

Used for scans of at least ``PARALLEL_MIN`` texts where more than one core is usable. When the
pool cannot run, or a worker is stuck past a deadline generous for its chunk, None is returned
and the caller scans in one process, so a scan never fails or hangs for being parallel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..forking import forked_state, map_forked, usable_cores

__all__ = ["PARALLEL_MIN", "usable_cores", "find_forked"]

PARALLEL_MIN = 2000  # texts; below it a fork and the pickling cost more than they save
MAX_WORKERS = 8
SECONDS_PER_TEXT = 0.05  # a worker's deadline: 20 texts/s, a tenth of the slowest (NER) rate measured
MIN_DEADLINE_S = 60.0


def _scan(chunk: tuple[list[str], list[str], float]) -> list[Any]:
    texts, entities, threshold = chunk
    return forked_state().find_here(texts, entities, threshold)


def find_forked(engine: Any, texts: Sequence[str], entities: Sequence[str], threshold: float, workers: int):
    """``engine.find_here`` over ``texts`` in ``workers`` forked processes; None when that cannot be done."""
    size = -(-len(texts) // workers)
    chunks = [(list(texts[i : i + size]), list(entities), threshold) for i in range(0, len(texts), size)]
    found = map_forked(
        _scan, chunks, workers=len(chunks), stall_s=max(MIN_DEADLINE_S, size * SECONDS_PER_TEXT), state=engine
    )
    return None if found is None else [f for chunk in found for f in chunk]
