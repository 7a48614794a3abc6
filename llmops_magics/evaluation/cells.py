"""An eval's answers made before it scores them, every cell of a grid at once.

Endpoints on different servers are asked at the same time, one thread per server
(``generate_endpoints``): each still has at most ``batch_size`` requests in flight, so no
server sees more than one call would send it, and a grid of three hosted models takes the
time of the slowest instead of the sum. Local models' answers go to forked workers
(``generate_local``), as follows.

Small local models (the ones evals on a laptop or CI use) generate with small matrices and
Python-heavy decoding loops, so one process keeps one core busy whatever torch's thread count.
Here every local target's missing answers (all cells of a grid at once) are cut into the very
batches the one-process path makes, a few batches to a unit, and the units go to forked
workers that inherit the loaded models (``llmops_magics.forking``): the answers, greedy or
seeded, are the one-process answers, and they go through the same generation cache.

It runs when it pays and is safe, else the caller generates in this process as before:
at least ``PARALLEL_MIN`` answers to make and two units; more than one usable core; fork
available; no CUDA (a forked CUDA context is unusable); the local models' weights together at
most ``MAX_MODEL_BYTES`` (they are all held in memory at once for the workers); ``workers``
not 1. A worker writes its spans (one per batch, children of the ``eval_generate`` span)
before it answers, so traces are complete when the eval is.
"""

from __future__ import annotations

import contextvars
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..forking import forked_state, map_forked, usable_cores
from .cache import GenerationCache
from .generations import GenParams, GenRecord, cached_answers, generate_cached, store_answers

__all__ = ["generate_local", "generate_endpoints", "plan_workers", "PARALLEL_MIN"]

PARALLEL_MIN = 64  # answers to generate; below it, forking costs more than it saves
UNIT_BATCHES = 4  # batches per unit of work: small enough to balance, large enough to amortise
MAX_WORKERS = 8
MAX_MODEL_BYTES = 2 * 1024**3
STALL_S = 600.0  # no unit finished for this long: the workers are stuck; generate here instead
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.gguf")


def _weight_bytes(backend: Any) -> int:
    folders = [backend.source.base_path, backend.source.adapter_path]
    return sum(p.stat().st_size for f in folders if f is not None for g in _WEIGHTS for p in Path(f).rglob(g))


def plan_workers(backends: Sequence[Any], answers: int, units: int, workers: int | None) -> int:
    """How many forked workers generate ``answers`` in ``units``: 1 means here, in this process."""
    if workers == 1 or units < 2 or (workers is None and answers < PARALLEL_MIN):
        return 1
    import torch

    if torch.cuda.is_available() or any(b.device not in (None, "cpu") for b in backends):
        return 1
    if sum(_weight_bytes(b) for b in backends) > MAX_MODEL_BYTES:
        return 1
    return max(1, min(workers or min(usable_cores(), MAX_WORKERS), units))


def _unit(item: tuple[int, list[list[int]]]) -> list[GenRecord]:
    """In a worker: one unit's batches, each exactly as ``generate_cached`` would make it."""
    backends, payloads, params, batch_size = forked_state()
    target, batches = item
    backend = backends[target]
    out: list[GenRecord] = []
    for batch in batches:
        out += backend.generate([payloads[target][i] for i in batch], params, batch_size=batch_size)
    export = sys.modules.get("llmops_magics.tracing.export")  # loaded only where spans are recorded
    if export is not None:
        export.flush_local(30.0)  # the batch spans, before the answer lets the parent end
    return out


def _one_thread_each(threads: int) -> Callable[[], None]:
    def setup() -> None:
        import torch

        torch.set_num_threads(threads)

    return setup


def generate_local(
    backends: Mapping[str, Any],
    payloads: Mapping[str, Sequence[Any]],
    params: GenParams,
    cache: GenerationCache,
    batch_size: int,
    *,
    workers: int | None = None,
    cancelled: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, list[GenRecord]], int] | None:
    """Every answer of the local ``backends`` (label -> backend) made in forked workers, cache
    first, and how many workers made them.

    None when it would not pay or cannot be done: the caller then generates as before.
    ``JobCancelledError`` when ``cancelled()`` turns True; nothing is cached then.
    """
    labels = list(backends)
    found = {label: cached_answers(backends[label], payloads[label], params, cache) for label in labels}
    units: list[tuple[int, list[list[int]]]] = []
    for n, label in enumerate(labels):
        todo = [i for i, r in enumerate(found[label][0]) if r is None]
        batches = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
        units += [(n, batches[s : s + UNIT_BATCHES]) for s in range(0, len(batches), UNIT_BATCHES)]
    answers = sum(len(b) for _, unit in units for b in unit)
    n_workers = plan_workers(list(backends.values()), answers, len(units), workers)
    if n_workers == 1:
        return None
    import torch

    held = [backends[label] for label in labels]
    total = sum(len(payloads[label]) for label in labels)
    done = total - answers
    if progress is not None:
        progress(done, total)

    def each(i: int, recs: list[GenRecord]) -> None:
        nonlocal done
        done += len(recs)
        if progress is not None:
            progress(done, total)

    try:
        for backend in held:
            backend.held = backend.loaded  # every model in memory at once, for the workers to inherit
        state = (held, [list(payloads[label]) for label in labels], params, batch_size)
        results = map_forked(
            _unit,
            units,
            workers=n_workers,
            stall_s=STALL_S,
            state=state,
            setup=_one_thread_each(max(1, torch.get_num_threads() // n_workers)),
            cancelled=cancelled,
            each=each,
        )
    finally:
        for backend in held:
            backend.held = None
    if results is None:
        return None
    for (target, batches), recs in zip(units, results, strict=True):
        out = found[labels[target]][0]
        for i, rec in zip((i for b in batches for i in b), recs, strict=True):
            out[i] = rec
    for label in labels:
        out, keys = found[label]
        store_answers(cache, keys, out, [i for i, r in enumerate(out) if r is not None and not r.cached])
    return {label: found[label][0] for label in labels}, n_workers  # type: ignore[return-value]


def generate_endpoints(
    backends: Mapping[str, Any],
    payloads: Mapping[str, Sequence[Any]],
    params: GenParams,
    cache: GenerationCache,
    batch_size: int,
    *,
    cancelled: Callable[[], bool] | None = None,
    progress_of: Callable[[str], Callable[[int, int], None]] | None = None,
) -> dict[str, list[GenRecord]] | None:
    """The endpoint ``backends`` (label -> backend) answered one server per thread, a server's
    targets one after another; None when they are all on one server (nothing to overlap)."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    servers: dict[str, list[str]] = defaultdict(list)
    for label, backend in backends.items():
        servers[urlsplit(backend.url).netloc].append(label)
    if len(servers) < 2:
        return None

    def one_server(labels: list[str]) -> dict[str, list[GenRecord]]:
        return {
            label: generate_cached(
                backends[label],
                payloads[label],
                params,
                cache,
                batch_size,
                cancelled=cancelled,
                progress=progress_of(label) if progress_of is not None else None,
            )
            for label in labels
        }

    out: dict[str, list[GenRecord]] = {}
    with ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="llmops-eval-server") as pool:
        # each thread runs in the caller's context, so the requests' spans are the eval's children
        futures = [pool.submit(contextvars.copy_context().run, one_server, labels) for labels in servers.values()]
        for future in futures:
            out.update(future.result())
    return out
