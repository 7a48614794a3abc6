"""Continuous (iteration-level) batching: sequences join and leave the running batch at every token.

The static batcher (``batcher.DynamicBatcher``) runs a group of requests through one
``generate()`` call, so a 4-token answer waits for the 64-token answer beside it and a
request that arrives one step late waits for the whole group. Here one worker thread
owns a running batch and a key/value cache (transformers' ``DynamicCache``, one row per
sequence) and loops:

1. **admit**: queued requests are prefilled together (one left-padded forward pass) and
   their cache rows take the places of finished sequences or are appended (see below);
2. **step**: one forward pass over the last token of every running sequence, each row at
   its own position (``position_ids`` from its own attention mask);
3. **retire**: a sequence that hit EOS, a stop string or its token limit, or whose client
   went away, is answered at once and its row becomes a hole (masked out), so its slot is
   free for the next step.

Rows are slots: a joining sequence is written into a hole, right-aligned to the cache's
columns, instead of the cache being re-gathered. Profiled at 64 clients, copying every
row of every layer at each join (``torch.cat``) and each retirement (row indexing) took a
quarter of the worker's time; a hole costs one masked row of compute per step instead.
The cache is compacted (rows gathered) only when holes are many and no queued request
will fill them; trailing holes and leading all-padding columns are dropped as views.
(Growing the cache in place, into spare columns, instead of ``DynamicLayer.update``'s
``torch.cat`` at every step was measured too and dropped: attention over the strided views
of such a buffer was slower than the copy it saved.)

Each row picks its token with its own settings (``sampling.choose``), so a seeded answer
does not depend on what else was in the batch. Greedy answers equal unbatched
``generate()`` answers (the padded positions are masked out; the tests hold the server to
it on a mixed-length load).

Only plain ``DynamicLayer`` caches can be merged and split this way;
``supports_continuous`` checks a model once, and the service falls back to static
batching for models with sliding-window or other cache layers.
"""

from __future__ import annotations

import math
import random
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..models.generation import Generation, start_token
from .batcher import Job, Worker, adapters_of
from .sampling import choose
from .streaming import RowText

__all__ = ["ContinuousBatcher", "supports_continuous"]


def _cache_keyword(model: Any) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; ask the model which it takes."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT wrapper takes **kwargs
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def supports_continuous(loaded: Any) -> bool:
    """Whether this model's key/value cache is made of plain dynamic layers (mergeable by row)."""
    import torch
    from transformers.cache_utils import DynamicLayer

    ids = torch.tensor([[start_token(loaded.tokenizer) or 0]], device=loaded.device)
    with torch.inference_mode():
        out = loaded.model(input_ids=ids, use_cache=True)
    layers = getattr(_cache_of(out), "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


@dataclass(eq=False)
class _Sequence:
    """One request in the running batch."""

    job: Job
    prompt_tokens: int
    text: RowText
    generator: Any = None  # torch.Generator for sampled rows
    last: int = 0  # the token fed to the next step
    finish: str | None = None
    logprobs: list = field(default_factory=list)
    pushed: int = 0  # log-probabilities already streamed with a piece of text

    @property
    def params(self):
        return self.job.params

    def result(self) -> Generation:
        seconds = time.perf_counter() - (self.job.started or self.job.submitted)
        logprobs = tuple(self.logprobs) if self.params.logprobs is not None else None
        text, tokens = self.text.final(), len(self.text.ids)
        return Generation(text, self.prompt_tokens, tokens, self.finish or "stop", seconds, logprobs)


class ContinuousBatcher(Worker):
    """One worker thread that keeps a batch of sequences decoding, one token per step.

    The same face as ``DynamicBatcher`` (``submit``, ``depth``, ``close``, ``batches``),
    so the service and the HTTP layer do not know which one they hold.
    """

    mode = "continuous"
    JOIN_RATIO = 0.3  # queued/running at which queued requests join at once
    JOIN_AFTER_STEPS = 8  # the most steps a queued request is held back

    def __init__(
        self,
        loaded: Any,
        *,
        max_batch_size: int = 16,
        label: str = "primary",
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.max_batch_size = max_batch_size
        self.label = label
        self._on_batch = on_batch
        self._pending: deque[Job] = deque()
        self._controls: deque = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._running: list[_Sequence | None] = []  # one per cache row; None: a hole (a free slot)
        self._live = 0  # sequences in ``_running``
        self._held = 0  # steps the queued requests have been held back (``_ready``)
        self._cache: Any = None
        self._mask: Any = None  # [rows, columns] attention mask of the cache (0 = padding)
        self.batches = 0  # forward passes (prefills and steps)
        self._cache_kw = _cache_keyword(loaded.model)
        self._thread = threading.Thread(target=self._run, name=f"llmops-scheduler-{label}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> int:
        return self._live

    # ------------------------------------------------------------------ the loop

    def _admit(self) -> list[Job] | None:
        """Jobs to join the batch now; waits only while nothing runs; None when closed and idle.

        A join costs a prefill pass of its own, as dear as a decoding step of the whole batch,
        so while the batch is busy a few queued requests are held back until more come (see
        ``_ready``): at 64 clients a join came every second step, 2.9 requests each.
        """
        with self._cond:
            while not self._pending and not self._live and not self._closed and not self._controls:
                self._cond.wait()
            if self._closed and not self._live and not self._pending:
                return None
            room = self.max_batch_size - self._live
            if not self._ready(room):
                self._held += 1
                return []
            self._held = 0
            out: list[Job] = []
            while self._pending and len(out) < room:
                job = self._pending.popleft()
                if not job.abandoned:  # its client went away while it waited: it never takes a place
                    out.append(job)
            return out

    def _ready(self, room: int) -> bool:
        """Whether the queued requests join now (TGI's router holds joins the same way).

        Always when nothing runs, when the queue fills the free rows, when it holds at least
        ``JOIN_RATIO`` of the running batch, or when its requests have waited ``JOIN_AFTER_STEPS``
        steps: a held request's first token comes at most that many steps later.
        """
        waiting = sum(1 for job in self._pending if not job.abandoned)
        if not self._live or not waiting or self._closed:
            return True
        return (
            waiting >= min(room, max(1, math.ceil(self.JOIN_RATIO * self._live))) or self._held >= self.JOIN_AFTER_STEPS
        )

    def _run(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                self._run_controls()
                joining = self._admit()
                if joining is None:
                    return
                try:
                    if joining:
                        self._prefill(joining)
                    if self._live:
                        self._step()
                except Exception as exc:  # a failed forward pass fails what was in it; the server goes on
                    traceback.print_exc()
                    for seq in self._running:
                        if seq is not None:
                            seq.job.fail(exc)
                    for job in joining:
                        if job.finished is None:
                            job.fail(exc)
                    self._running, self._live, self._cache, self._mask = [], 0, None, None

    def _prefill(self, jobs: list[Job]) -> None:
        import torch

        tok, device = self.loaded.tokenizer, self.loaded.device
        started = time.perf_counter()
        ids = tok([j.prompt for j in jobs], add_special_tokens=False)["input_ids"]
        ids = [row or [start_token(tok)] for row in ids]  # an empty prompt starts from BOS, as generate() does
        enc = tok.pad({"input_ids": ids}, return_tensors="pt")
        input_ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        context, kwargs = adapters_of(self.loaded.model, [j.adapter for j in jobs])
        with context:
            out = self.loaded.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **kwargs,
            )
        self.batches += 1
        seqs = []
        for job, row in zip(jobs, ids, strict=True):
            job.started = started
            seq = _Sequence(job, len(row), RowText(tok, job.params.stop))
            if job.params.temperature > 0:
                seq.generator = torch.Generator(device=device)
                seed = job.params.seed if job.params.seed is not None else random.getrandbits(63)
                seq.generator.manual_seed(seed)
            seqs.append(seq)
        self._merge(_cache_of(out), mask, seqs)
        self._advance(seqs, out.logits[:, -1, :])

    def _step(self) -> None:
        import torch

        seqs = self._running
        tokens = torch.tensor([[0 if s is None else s.last] for s in seqs], device=self.loaded.device)
        positions = self._mask.sum(-1, keepdim=True)  # each row's own next position, padding not counted
        # a hole attends to its own filler tokens only (a row with nothing to attend to gives NaN)
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(seqs), 1))], dim=-1)
        context, kwargs = adapters_of(self.loaded.model, [None if s is None else s.job.adapter for s in seqs])
        with context:
            out = self.loaded.model(
                input_ids=tokens,
                attention_mask=self._mask,
                position_ids=positions,
                use_cache=True,
                **{self._cache_kw: self._cache},
                **kwargs,
            )
        self.batches += 1
        logits = out.logits[:, -1, :]
        if self._live < len(seqs):  # holes are computed but not read
            live = [i for i, s in enumerate(seqs) if s is not None]
            logits = logits[torch.tensor(live, device=logits.device)]
            seqs = [seqs[i] for i in live]
        self._advance(seqs, logits)

    def _advance(self, seqs: list[_Sequence], logits: Any) -> None:
        """Pick each row's next token, stream it, and retire the sequences that are done."""
        chosen, scored = choose(self.loaded.tokenizer, seqs, logits)
        now = time.perf_counter()
        eos = self.loaded.tokenizer.eos_token_id
        size = self._live
        for seq, token in zip(seqs, chosen, strict=True):
            job = seq.job
            job.batch_size = max(job.batch_size, size)
            if job.abandoned:
                seq.finish = "abort"
                continue
            if token == eos:
                seq.finish = "stop"
                continue
            if job.first_token is None:
                job.first_token = now
            seq.text.ids.append(token)
            seq.last = token
            if scored[seq] is not None:
                seq.logprobs.append(scored[seq])
            if job.stream or seq.params.stop:
                delta = seq.text.release()
                if delta and job.stream:  # the tokens that made the piece go with it; held ones wait
                    job.push_text(delta, seq.logprobs[seq.pushed :])
                    seq.pushed = len(seq.logprobs)
                if seq.text.stopped:
                    seq.finish = "stop"
                    continue
            if len(seq.text.ids) >= seq.params.max_tokens:
                seq.finish = "length"
        if self._on_batch:
            self._on_batch(size, self.depth)
        self._retire()

    def _retire(self) -> None:
        import torch

        done = [i for i, s in enumerate(self._running) if s is not None and s.finish is not None]
        if not done:
            return
        for i in done:
            seq = self._running[i]
            seq.job.resolve(seq.result())
            self._running[i] = None
        self._live -= len(done)
        if not self._live:
            self._running, self._cache, self._mask = [], None, None
            return
        self._mask[torch.tensor(done, device=self._mask.device)] = 0
        while self._running[-1] is None:  # trailing holes go as a view
            self._running.pop()
        rows = len(self._running)
        holes = rows - self._live
        index = None
        if holes * 4 > rows and holes > len(self._pending):  # many holes that nobody queued will fill: gather
            keep = [i for i, s in enumerate(self._running) if s is not None]
            index = torch.tensor(keep, device=self._mask.device)
            self._running = [self._running[i] for i in keep]
            self._mask = self._mask[index]
        else:
            self._mask = self._mask[:rows]
        used = self._mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0  # columns before it are padding in every remaining row
        self._mask = self._mask[:, start:]
        for layer in self._cache.layers:
            for name in ("keys", "values"):
                rows_of = getattr(layer, name)
                rows_of = rows_of[index] if index is not None else rows_of[:rows]
                setattr(layer, name, rows_of[:, :, start:, :])

    def _merge(self, cache: Any, mask: Any, seqs: list[_Sequence]) -> None:
        """Put new rows into the holes (right-aligned: the columns left of a prompt are masked), then
        append the rest, left-padded to the cache's columns; the cache is padded on the left only when
        a new prompt is longer than it."""
        import torch
        from torch.nn.functional import pad

        if self._cache is None:
            self._cache, self._mask, self._running, self._live = cache, mask, list(seqs), len(seqs)
            return
        have, new = self._mask.shape[1], mask.shape[1]
        if new > have:
            for layer in self._cache.layers:
                layer.keys = pad(layer.keys, (0, 0, new - have, 0))
                layer.values = pad(layer.values, (0, 0, new - have, 0))
            self._mask, have = pad(self._mask, (new - have, 0)), new
        holes = [i for i, s in enumerate(self._running) if s is None][: len(seqs)]
        n = len(holes)
        if n:
            slots = torch.tensor(holes, device=self._mask.device)
            for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
                for name in ("keys", "values"):
                    getattr(old_layer, name)[:, :, have - new :].index_copy_(0, slots, getattr(new_layer, name)[:n])
            self._mask[slots] = 0
            self._mask[slots, have - new :] = mask[:n]
            for i, seq in zip(holes, seqs, strict=False):
                self._running[i] = seq
        if n < len(seqs):
            for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
                for name in ("keys", "values"):
                    b = pad(getattr(new_layer, name)[n:], (0, 0, have - new, 0))
                    setattr(old_layer, name, torch.cat([getattr(old_layer, name), b], dim=0))
            self._mask = torch.cat([self._mask, pad(mask[n:], (have - new, 0))], dim=0)
            self._running.extend(seqs[n:])
        self._live += len(seqs)
