"""Streamed text that never takes back what it sent: per answer (``RowText``) and per batch (``BatchStreamer``).

Tokens do not map to characters one to one: a token can end inside a UTF-8 character, and
the tail of the text can be the start of a stop string that the next token completes. Text
is therefore released only once it cannot change, so the pieces a client receives always add
up to a prefix of the final answer. Both batchers stream through it.

Log-probabilities (``token_logprob``) come from the raw logits, before temperature, top-p or
``min_tokens`` touch them (vLLM's default), so a sampled answer's values are the model's own.
A streamed piece carries the values of the tokens that produced it; tokens whose text is held
back send theirs with the next piece, or with the last chunk.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..models.generation import TokenLogprob

if TYPE_CHECKING:
    from .batcher import Job

__all__ = ["RowText", "BatchStreamer", "token_logprob"]


def token_logprob(tokenizer: Any, logits: Any, token: int, k: int) -> TokenLogprob:
    """The chosen token's log-probability and the ``k`` most likely tokens', from one row of raw logits."""
    import torch

    logprobs = torch.log_softmax(logits.float(), dim=-1)
    decode = tokenizer.decode
    top = []
    if k:
        values, ids = logprobs.topk(k)
        top = [(decode([int(t)]), float(v)) for v, t in zip(values, ids, strict=True)]
    return TokenLogprob(decode([token]), float(logprobs[token]), tuple(top))


class RowText:
    """The text of one answer as its tokens arrive, released only once it cannot change.

    An incomplete UTF-8 character and any tail that could begin a stop string are held
    back, so the released pieces always add up to a prefix of the final text. Both
    engines stream through it: the static one per row of a ``generate()`` batch, the
    continuous one per running sequence.
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
        self.tokenizer, self.stops = tokenizer, tuple(stops)
        self.ids: list[int] = []
        self.sent = ""
        self.stopped = False  # a stop string appeared: the answer ends before it

    def release(self) -> str:
        """The new text that can be sent now ("" when none); sets ``stopped`` on a stop string."""
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            text = text[:-1]
        for stop in self.stops:
            if stop in text:
                self.stopped = True
                text = text[: text.index(stop)]
        if not self.stopped:
            text = text[: len(text) - _held_back(text, self.stops)]
        if len(text) > len(self.sent) and text.startswith(self.sent):
            delta, self.sent = text[len(self.sent) :], text
            return delta
        return ""

    def final(self) -> str:
        """The whole answer: every token decoded, cut before the first stop string."""
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        for stop in self.stops:
            if stop in text:
                text = text[: text.index(stop)]
        return text


class BatchStreamer:
    """A transformers streamer for a whole batch: row ``i``'s tokens go to ``jobs[i]``.

    When the batch asks for log-probabilities (``top_k`` not None), ``capture`` hooks the
    model's forward pass: each pass queues its last-position logits, and the ``put`` of the
    tokens chosen from them takes them off the queue (a queue, not the latest value, since
    transformers may hand tokens to the streamer one step late). ``generate()`` only offers
    the raw logits once the batch is over, too late for a stream.
    """

    def __init__(self, tokenizer: Any, jobs: Sequence[Job], top_k: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.jobs = list(jobs)
        self.rows = [RowText(tokenizer, job.params.stop) for job in jobs]
        self.finished = [False for _ in jobs]  # its text is complete (EOS or a stop string)
        self.ended = [False for _ in jobs]  # EOS: generate() pads the row from here on
        self.top_k = top_k
        self.scored: list[list[TokenLogprob]] = [[] for _ in jobs]  # every token up to EOS, as generate() counts
        self._pushed = [0 for _ in jobs]
        self._logits: deque = deque()
        self._prompt_seen = False

    def capture(self, model: Any) -> Any:
        """Hook ``model`` (the causal LM that ``generate()`` runs) so that ``put`` can score tokens;
        returns the handle to ``remove()`` after the batch."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model

        def hook(module: Any, args: Any, output: Any) -> None:
            self._logits.append(output.logits[:, -1, :].float())

        return base.register_forward_hook(hook)

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # the first call carries the prompt ids
            self._prompt_seen = True
            return
        now = time.perf_counter()
        eos = self.tokenizer.eos_token_id
        logits = self._logits.popleft() if self.top_k is not None and self._logits else None
        for i, token in enumerate(value.reshape(-1).tolist()):
            if self.ended[i] or token == eos:
                self.ended[i] = self.finished[i] = True
                continue
            if logits is not None:
                self.scored[i].append(token_logprob(self.tokenizer, logits[i], token, self.top_k))
            if self.finished[i]:
                continue
            job, row = self.jobs[i], self.rows[i]
            if job.first_token is None:
                job.first_token = now
            row.ids.append(token)
            if job.stream:
                delta = row.release()
                if delta:
                    job.push_text(delta, self.scored[i][self._pushed[i] :])
                    self._pushed[i] = len(self.scored[i])
                self.finished[i] = row.stopped

    def end(self) -> None:
        """Nothing to flush: the final text comes from ``generate()`` itself."""


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of a stop string."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return hold
