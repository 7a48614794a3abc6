"""Dynamic batching: concurrent requests share one ``generate()`` call.

Request handlers (asyncio) submit a ``Job`` and await it; one worker thread per
served model collects jobs until it holds ``max_batch_size`` with the same
generation parameters, or until the oldest has waited ``max_wait_ms``, then runs
them as one padded batch through ``llmops_magics.models.generate``. The window is
used only under concurrency (the last batch held several jobs, or several are
waiting), so a lone client never waits for batch mates that will not come; and
it counts from when the worker became free, so the clients of the batch that
just finished can rejoin the next one instead of drifting into two half-size
batches that alternate. With greedy
decoding a batch gives each prompt the same text as running it alone (left
padding; the tests hold the server to it). ``max_batch_size=1`` is the unbatched
mode the benchmark compares against.

Tokens are streamed for real: a ``BatchStreamer`` receives every decoding step of
the batch and forwards each row's new text to that row's stream, so the
time-to-first-token metric is the time until the model produced the first token,
not the time until the whole answer was ready. Log-probabilities come from the same
place: the streamer scores each step's tokens against the logits of the forward pass
that chose them (``logprobs`` is part of the batch key, so a batch is scored or not as
a whole). As ``generate()`` runs a row past a stop string to the end of the batch, a
static answer's log-probabilities cover every token its usage counts.
"""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import DeploymentError
from .streaming import BatchStreamer

__all__ = ["GenParams", "Job", "DynamicBatcher", "ShuttingDown", "Worker", "adapters_of"]


class ShuttingDown(DeploymentError):
    """The batcher was closed before this job ran (the server answers 503)."""


@dataclass(frozen=True)
class GenParams:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    min_tokens: int = 0
    logprobs: int | None = None  # None: none; k: the chosen token's and the k most likely

    @property
    def key(self) -> tuple:
        """Jobs batch together only when this is equal (greedy ignores sampling settings)."""
        if self.temperature <= 0:
            return (self.max_tokens, self.min_tokens, "greedy", self.stop, self.logprobs)
        return (self.max_tokens, self.min_tokens, self.temperature, self.top_p, self.seed, self.stop, self.logprobs)


@dataclass(eq=False)
class Job:
    """One prompt waiting for its continuation; created and awaited on the event loop."""

    prompt: str
    params: GenParams
    loop: asyncio.AbstractEventLoop
    stream: bool = False
    adapter: str | None = None  # the PEFT adapter that answers it ("__base__": none; None: the model as loaded)
    submitted: float = field(default_factory=time.perf_counter)
    started: float | None = None
    first_token: float | None = None
    finished: float | None = None  # when its answer (or failure) was ready
    batch_size: int = 0
    future: asyncio.Future = field(init=False)
    events: asyncio.Queue | None = field(init=False, default=None)
    abandoned: bool = field(init=False, default=False)
    _unsent: list[str] = field(init=False, default_factory=list)
    _unscored: list = field(init=False, default_factory=list)  # the TokenLogprobs of the unsent text
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    @property
    def batch_key(self) -> tuple:
        return (self.adapter, self.params.key)

    def abandon(self) -> None:
        """Nobody waits for this job any more (its client went away): free its place."""
        self.abandoned = True

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()
        if self.stream:
            self.events = asyncio.Queue()

    def _call(self, fn: Callable, *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed: nobody is waiting any more
            pass

    def push_text(self, text: str, logprobs: Sequence[Any] = ()) -> None:
        """Queue streamed text (and the log-probabilities of the tokens that made it); pieces the
        event loop has not picked up yet go out as one chunk.

        Under load the HTTP loop falls behind the model by a few tokens; sending what has
        piled up as one server-sent event (as vLLM does) instead of one event per token
        keeps the loop from spending the time the model saved. A piece's log-probabilities
        arrive as a ``("logprobs", tokens)`` event just before its ``("delta", text)``, so the
        chunk that carries the text carries its tokens' values too.
        """
        if self.events is None:
            return
        with self._lock:
            self._unsent.append(text)
            self._unscored.extend(logprobs)
            if len(self._unsent) > 1:
                return  # a delivery is already scheduled and will take this piece too
        self._call(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            text, self._unsent = "".join(self._unsent), []
            scored, self._unscored = tuple(self._unscored), []
        if scored:
            self.events.put_nowait(("logprobs", scored))
        if text:
            self.events.put_nowait(("delta", text))

    def resolve(self, result: Any) -> None:
        self.finished = time.perf_counter()

        def done() -> None:
            if not self.future.done():
                self.future.set_result(result)
            if self.events is not None:
                self.events.put_nowait(("done", result))

        self._call(done)

    def fail(self, exc: BaseException) -> None:
        self.finished = time.perf_counter()

        def done() -> None:
            if not self.future.done():
                self.future.set_exception(exc)
                self.future.exception()  # mark retrieved: a disconnected client never awaits it
            if self.events is not None:
                self.events.put_nowait(("error", exc))

        self._call(done)


def adapters_of(model: Any, adapters: Sequence[str | None]) -> tuple[Any, dict[str, Any]]:
    """How one forward pass gives each row its adapter: ``(context, forward kwargs)``.

    Nothing when every row uses the model's active adapter; a thread-local row list when the
    model's LoRA layers are patched (``multilora``); else PEFT's own ``adapter_names``.
    """
    if not hasattr(model, "peft_config"):
        return nullcontext(), {}
    active = model.active_adapter
    names = [a or active for a in adapters]  # a job without an adapter runs the model as loaded
    if all(n == active for n in names):
        return nullcontext(), {}
    if getattr(model, "_llmops_rows", False):
        from .multilora import rows

        return rows(names), {}
    return nullcontext(), {"adapter_names": names}


class Worker:
    """What both batchers share: a queue of jobs for one worker thread, closing, and work that must
    not overlap a forward pass (adding or removing an adapter), run on that thread between passes
    (``run_between``; the caller gets a ``concurrent.futures.Future``)."""

    _cond: threading.Condition
    _closed: bool
    _pending: deque
    _controls: deque
    _thread: threading.Thread

    @property
    def depth(self) -> int:
        return len(self._pending)

    def submit(self, job: Job) -> Job:
        with self._cond:
            if self._closed:
                raise ShuttingDown("the server is shutting down")
            self._pending.append(job)
            self._cond.notify()
        return job

    def close(self, timeout: float = 30.0) -> None:
        """Finish the work in flight, fail the jobs still queued, stop the worker."""
        with self._cond:
            self._closed = True
            leftover, self._pending = list(self._pending), deque()
            controls, self._controls = list(self._controls), deque()
            self._cond.notify_all()
        for job in leftover:
            job.fail(ShuttingDown("the server is shutting down"))
        for _, future in controls:
            future.set_exception(ShuttingDown("the server is shutting down"))
        self._thread.join(timeout)

    def run_between(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise ShuttingDown("the server is shutting down")
            self._controls.append((fn, future))
            self._cond.notify()
        return future

    def _run_controls(self) -> None:
        while True:
            with self._cond:
                if not self._controls:
                    return
                fn, future = self._controls.popleft()
            try:
                future.set_result(fn())
            except BaseException as exc:  # the caller turns it into an answer
                future.set_exception(exc)


class DynamicBatcher(Worker):
    """One worker thread that turns queued jobs into batched ``generate()`` calls."""

    mode = "static"

    def __init__(
        self,
        loaded: Any,
        *,
        max_batch_size: int = 16,
        max_wait_ms: float = 10.0,
        label: str = "primary",
        on_batch: Callable[[int, int], None] | None = None,
        generate: Callable[..., list] | None = None,
    ) -> None:
        if generate is None:
            from ..models.generation import generate
        self.loaded = loaded
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.label = label
        self._generate = generate
        self._on_batch = on_batch
        self._pending: deque[Job] = deque()
        self._controls: deque = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._last_size = 1
        self._free_since = 0.0
        self.batches = 0
        self._thread = threading.Thread(target=self._run, name=f"llmops-batcher-{label}", daemon=True)
        self._thread.start()

    def _take(self) -> list[Job] | None:
        with self._cond:
            while not self._pending and not self._closed and not self._controls:
                self._cond.wait()
            if self._controls:
                return []
            if not self._pending:
                return None
            key = self._pending[0].batch_key
            busy = self._last_size > 1 or len(self._pending) > 1
            start = max(self._pending[0].submitted, self._free_since)
            deadline = start + (self.max_wait if busy else 0.0)
            while not self._closed:
                if sum(1 for j in self._pending if j.batch_key == key) >= self.max_batch_size:
                    break
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch, rest = [], deque()
            for job in self._pending:
                if job.abandoned:
                    continue  # its client went away while it waited: it never takes a place
                (batch if job.batch_key == key and len(batch) < self.max_batch_size else rest).append(job)
            self._pending = rest
            return batch

    def _run(self) -> None:
        while True:
            self._run_controls()
            batch = self._take()
            if batch is None:
                return
            if batch:
                self._run_batch(batch)

    def _run_batch(self, batch: list[Job]) -> None:
        started = time.perf_counter()
        self._last_size = len(batch)
        for job in batch:
            job.started, job.batch_size = started, len(batch)
        if self._on_batch:
            self._on_batch(len(batch), self.depth)
        p = batch[0].params
        streamer = BatchStreamer(self.loaded.tokenizer, batch, p.logprobs)
        context, kwargs = adapters_of(self.loaded.model, [j.adapter for j in batch])
        hook = streamer.capture(self.loaded.model) if p.logprobs is not None else None
        try:
            with context:
                results = self._generate(
                    self.loaded,
                    [j.prompt for j in batch],
                    max_new_tokens=p.max_tokens,
                    temperature=p.temperature,
                    top_p=p.top_p,
                    seed=p.seed,
                    stop=p.stop,
                    streamer=streamer,
                    min_new_tokens=p.min_tokens or None,
                    abandoned=lambda: [j.abandoned for j in batch],
                    **kwargs,
                )
        except Exception as exc:
            traceback.print_exc()  # into the server log: the client only sees the error's type and message
            for job in batch:
                job.fail(exc)
            return
        finally:
            self.batches += 1
            if hook is not None:
                hook.remove()
        for i, (job, result) in enumerate(zip(batch, results, strict=True)):
            if p.logprobs is not None:  # one batch, one setting: the batch key holds it
                result = replace(result, logprobs=tuple(streamer.scored[i][: result.completion_tokens]))
            job.resolve(result)
        self._free_since = time.perf_counter()
