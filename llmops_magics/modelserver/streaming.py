"""Streamed text that never takes back what it sent: per answer (``RowText``) and per batch (``BatchStreamer``).

Tokens do not map to characters one to one: a token can end inside a UTF-8 character, and
the tail of the text can be the start of a stop string that the next token completes. Text
is therefore released only once it cannot change, so the pieces a client receives always add
up to a prefix of the final answer. Both batchers stream through it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batcher import Job

__all__ = ["RowText", "BatchStreamer"]


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
    """A transformers streamer for a whole batch: row ``i``'s tokens go to ``jobs[i]``."""

    def __init__(self, tokenizer: Any, jobs: Sequence[Job]) -> None:
        self.tokenizer = tokenizer
        self.jobs = list(jobs)
        self.rows = [RowText(tokenizer, job.params.stop) for job in jobs]
        self.finished = [False for _ in jobs]
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # the first call carries the prompt ids
            self._prompt_seen = True
            return
        now = time.perf_counter()
        eos = self.tokenizer.eos_token_id
        for i, token in enumerate(value.reshape(-1).tolist()):
            if self.finished[i]:
                continue
            if token == eos:
                self.finished[i] = True
                continue
            job, row = self.jobs[i], self.rows[i]
            if job.first_token is None:
                job.first_token = now
            row.ids.append(token)
            if job.stream:
                delta = row.release()
                if delta:
                    job.push_text(delta)
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
