"""Large PII scans on every core: the built engine forked, the texts split between the copies.

Presidio's analysis is Python holding the GIL, so one scan used one core however many the
machine has. Threads cannot help; processes can, and one started with ``fork`` inherits the
parent's engine already built (copy-on-write), so a worker is ready in milliseconds instead of
the seconds that importing Presidio and spaCy and building the recognizers take again in a
fresh process. The texts are cut into one contiguous chunk per worker and the findings come
back in order, so the result is the one-process scan's.

Used for scans of at least ``PARALLEL_MIN`` texts where ``fork`` exists and more than one core
is usable, one forked scan at a time per process (a second, from another thread, scans in its own
process rather than wait). When the pool fails (fork refused, a worker killed) or a worker is
stuck past a deadline generous for its chunk (a lock copied mid-use from a parent's thread), the
workers are killed and None is returned: the caller scans in one process, so a scan never fails
or hangs for being parallel. An error Presidio raises in a worker is raised here, as it would be
in one process. A forked worker ends with ``os._exit`` (multiprocessing's way), so nothing of
the parent's (W&B runs, the span writer, open registries) is closed or flushed twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["PARALLEL_MIN", "usable_cores", "find_forked"]

PARALLEL_MIN = 2000  # texts; below it a fork and the pickling cost more than they save
MAX_WORKERS = 8
SECONDS_PER_TEXT = 0.05  # a worker's deadline: 20 texts/s, a tenth of the slowest (NER) rate measured
MIN_DEADLINE_S = 60.0

_engine: Any = None  # what the forked workers scan with: set just before the pool forks them
_forking = threading.Lock()  # one forked scan at a time: ``_engine`` is the workers' only copy


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
    from concurrent.futures import ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    global _engine
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        return None
    if not _forking.acquire(blocking=False):
        return None  # another thread's forked scan is running
    size = -(-len(texts) // workers)
    chunks = [(list(texts[i : i + size]), list(entities), threshold) for i in range(0, len(texts), size)]
    pool = None
    try:
        _engine = engine
        pool = ProcessPoolExecutor(max_workers=len(chunks), mp_context=context)
        futures = [pool.submit(_scan, chunk) for chunk in chunks]
        _, stuck = wait(futures, timeout=max(MIN_DEADLINE_S, size * SECONDS_PER_TEXT))
        if stuck:
            _kill(pool)
            return None
        return [found for future in futures for found in future.result()]
    except (BrokenProcessPool, OSError):  # a worker died, or fork was refused: scan here instead
        return None
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        _engine = None
        _forking.release()


def _kill(pool: Any) -> None:
    """Stop a pool's stuck workers (the executor can only wait for them)."""
    for process in list(getattr(pool, "_processes", {}).values()):  # CPython's executor keeps them here
        process.kill()
