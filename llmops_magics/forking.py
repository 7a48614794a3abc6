"""Work spread over the machine's cores by forking this process, or not at all.

Two parts of the project are CPU-bound Python or small-matrix torch work that one process runs
on one core: Presidio's PII analysis (it holds the GIL) and generation with small local models
(a grid eval's cells). A process started with ``fork`` inherits what the parent already built
(the analyzer engine, the loaded models) copy-on-write, so a worker is ready in milliseconds
instead of the seconds a fresh interpreter needs to import and load it all again.

``map_forked`` is the one way the project does this. Its rules, each learnt the hard way:

- **One forked map at a time per process.** What the workers use is handed over in a module
  slot set just before the fork; a second map from another thread would overwrite it, so it
  gets None and does its work in its own process.
- **Never a failure or a hang for being parallel.** When ``fork`` is missing or refused, a
  worker dies, or no item finishes within ``stall_s`` (a lock copied mid-use from a parent's
  thread would do that), the workers are killed and None is returned: the caller does the work
  here. An exception the work itself raises in a worker is raised here, as in one process.
- **A worker ends with ``os._exit``** (multiprocessing's way), so nothing of the parent's (W&B
  runs, open registries, span writers) is closed or flushed twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .errors import JobCancelledError

__all__ = ["usable_cores", "map_forked", "forked_state"]

T = TypeVar("T")
R = TypeVar("R")

_state: Any = None  # what the running map's workers use: set just before its pool forks them
_forking = threading.Lock()  # one forked map at a time (``_state`` is the workers' only copy)
_POLL_S = 0.2  # how often a waiting map asks ``cancelled()``


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def forked_state() -> Any:
    """In a worker: the ``state`` its map was given (inherited through the fork, never pickled)."""
    return _state


def map_forked(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int,
    stall_s: float,
    state: Any = None,
    setup: Callable[[], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    each: Callable[[int, R], None] | None = None,
) -> list[R] | None:
    """``[fn(item) for item in items]`` in ``workers`` forked processes; None when that cannot be done.

    ``fn`` is a module-level function (sent by name); it reads ``forked_state()`` for what is
    too big or too live to pickle. Items go to whichever worker is free, so unequal items keep
    every worker busy to the end. ``setup`` runs once in each worker before its first item.
    ``each(index, result)`` hears every result as it arrives (progress); ``cancelled()`` is
    asked while waiting, and a True kills the workers and raises ``JobCancelledError``.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    global _state
    if not items:
        return []
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        return None
    if not _forking.acquire(blocking=False):
        return None  # another thread's forked map is running
    pool = None
    try:
        _state = state
        pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(items))), mp_context=context, initializer=setup)
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        results: list[Any] = [None] * len(items)
        pending, idle = set(futures), 0.0
        while pending:
            done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
            if cancelled is not None and cancelled():
                _kill(pool)
                raise JobCancelledError("cancelled while working in forked processes; nothing was saved")
            idle = 0.0 if done else idle + _POLL_S
            if idle >= stall_s:
                _kill(pool)
                return None
            for future in sorted(done, key=futures.__getitem__):
                i = futures[future]
                results[i] = future.result()  # the work's own exception is raised here, as in one process
                if each is not None:
                    each(i, results[i])
        return results
    except (BrokenProcessPool, OSError):  # a worker died, or fork was refused: the caller works here
        if pool is not None:
            _kill(pool)
        return None
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        _state = None
        _forking.release()


def _kill(pool: Any) -> None:
    """Stop a pool's workers (the executor can only wait for them)."""
    for process in list(getattr(pool, "_processes", {}).values()):  # CPython's executor keeps them here
        process.kill()
