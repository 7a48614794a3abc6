"""Large PII scans on every core: the built engine forked, the texts split between the copies.

Presidio's analysis is Python holding the GIL, so one scan used one core however many the
machine has. Threads cannot help; processes can, and one started with ``fork`` inherits the
parent's engine already built (copy-on-write), so a worker is ready in milliseconds instead of
the seconds that importing Presidio and spaCy and building the recognizers take again in a
fresh process. The texts are cut into one contiguous chunk per worker and the findings come
back in order, so the result is the one-process scan's.

Used for scans of at least ``PARALLEL_MIN`` texts where ``fork`` exists and more than one core
is usable. Anything that goes wrong in the pool (fork refused, a worker killed) returns None and
the caller scans in one process: a scan never fails for being parallel. A forked worker ends
with ``os._exit`` (multiprocessing's way), so nothing of the parent's (W&B runs, the span
writer, open registries) is closed or flushed twice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["PARALLEL_MIN", "usable_cores", "find_forked"]

PARALLEL_MIN = 2000  # texts; below it a fork and the pickling cost more than they save
MAX_WORKERS = 8

_engine: Any = None  # what the forked workers scan with: set just before the pool forks them


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _scan(chunk: tuple[list[str], list[str], float]) -> list[Any]:
    texts, entities, threshold = chunk
    return _engine.find_here(texts, entities, threshold)


def find_forked(engine: Any, texts: Sequence[str], entities: Sequence[str], threshold: float, workers: int):
    """``engine.find_here`` over ``texts`` in ``workers`` forked processes; None when that cannot be done."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _engine
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        return None
    size = -(-len(texts) // workers)
    chunks = [(list(texts[i : i + size]), list(entities), threshold) for i in range(0, len(texts), size)]
    _engine = engine
    try:
        with ProcessPoolExecutor(max_workers=len(chunks), mp_context=context) as pool:
            parts = list(pool.map(_scan, chunks))
    except Exception:  # BrokenProcessPool, OSError from fork: the caller scans here instead
        return None
    finally:
        _engine = None
    return [found for part in parts for found in part]
