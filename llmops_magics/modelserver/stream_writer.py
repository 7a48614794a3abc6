"""The streamed answer: the server-sent events of one request's choices, as OpenAI and vLLM send them.

A request for ``n`` choices (or for several completion prompts) is one job per choice, all
decoding side by side in the running batch. Their events are read as they arrive, so each
chunk carries one choice (``choices[0].index`` says which, numbered as without ``stream``:
prompt by prompt, ``n`` per prompt) and a short choice finishes with its own ``finish_reason``
while a long one still streams. The chat stream opens every choice with a role chunk;
``stream_options.include_usage`` adds one chunk once every choice has finished, with each
prompt counted once and the completion tokens of all choices.

With ``logprobs`` a chunk carries the values of the tokens that made its text (the batchers
send them together, see ``Job.push_text``); tokens whose text was held back (half a UTF-8
character, the start of a stop string) send theirs with a later chunk, the last ones just
before the finishing chunk, so the chunks of a choice add up to its non-streamed values.
Completions' ``text_offset`` counts from the start of the answer, not of the chunk.

A choice that fails ends the stream with an error event; the client going away (or an error)
abandons every choice still running, and the batch frees their slots at the next token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from .batcher import Job, ShuttingDown
from .protocol import chat_body, chat_logprobs, completion_body, completion_logprobs, error_body, sse

__all__ = ["stream_answer"]


async def _events(jobs: Sequence[Job]) -> AsyncIterator[tuple[int, str, Any]]:
    """``(choice, kind, value)`` from every job's queue as they come; a job's last is "done" or "error"."""
    waiting = {asyncio.ensure_future(job.events.get()): i for i, job in enumerate(jobs)}
    try:
        while waiting:
            ready, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for future in sorted(ready, key=waiting.__getitem__):
                i = waiting.pop(future)
                kind, value = future.result()
                if kind in ("delta", "logprobs"):
                    waiting[asyncio.ensure_future(jobs[i].events.get())] = i
                yield i, kind, value
    finally:  # the stream ended early (an error, a client gone): stop waiting on the others
        for future in waiting:
            future.cancel()


class _Choices:
    """What each choice has streamed so far, and the chunk shapes of the endpoint."""

    def __init__(self, call: Any, count: int) -> None:
        self.call, self.chat, self.model = call, call.endpoint == "chat", call.arm.version
        self.text = ["" for _ in range(count)]
        self.scored = [0 for _ in range(count)]  # log-probabilities sent
        self.offset = [0 for _ in range(count)]  # characters their tokens cover (completions' text_offset)

    def chunk(self, i: int, text: str | None, finish: str | None = None, tokens: Sequence[Any] = ()) -> str:
        call, logprobs = self.call, None
        if tokens:
            if self.chat:
                logprobs = chat_logprobs(tokens)
            else:
                logprobs = completion_logprobs(tokens, self.offset[i])
                self.offset[i] += sum(len(t.token) for t in tokens)
            self.scored[i] += len(tokens)
        if text:
            self.text[i] += text
        if self.chat:
            delta = {} if text is None else {"content": text}
            choice = {"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            return sse(chat_body(call.rid, self.model, [choice], None, call.extra, chunk=True))
        choice = {"text": text or "", "index": i, "logprobs": logprobs, "finish_reason": finish}
        return sse(completion_body(call.rid, self.model, [choice], None, call.extra))

    def opening(self, i: int) -> str:
        choice = {"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
        return sse(chat_body(self.call.rid, self.model, [choice], None, self.call.extra, chunk=True))

    def closing(self, i: int, result: Any) -> list[str]:
        """What is left of choice ``i`` (text and log-probabilities), then its finish reason."""
        sent = self.text[i]
        rest = result.text[len(sent) :] if result.text.startswith(sent) else ""
        left = tuple(result.logprobs[self.scored[i] :]) if result.logprobs is not None else ()
        out = [self.chunk(i, rest, None, left)] if rest or left else []
        return [*out, self.chunk(i, None, result.finish_reason)]

    def usage(self, results: list[Any], n: int) -> str:
        usage = (sum(r.prompt_tokens for r in results[::n]), sum(r.completion_tokens for r in results))
        call = self.call
        if self.chat:
            return sse(chat_body(call.rid, self.model, [], usage, call.extra, chunk=True))
        return sse(completion_body(call.rid, self.model, [], usage, call.extra))


async def stream_answer(call: Any, jobs: list[Job], n: int) -> AsyncIterator[str]:
    """The events of one streamed request; ``call`` is the app's request record (``rid``, ``arm``,
    ``extra``, ``req``, ``finish``), ``jobs`` its choices, ``n`` choices per prompt."""
    choices = _Choices(call, len(jobs))
    results: list[Any] = [None for _ in jobs]
    pending: dict[int, tuple] = {}  # a piece's log-probabilities arrive just before its text
    status, error = 499, None
    try:
        if choices.chat:
            for i in range(len(jobs)):
                yield choices.opening(i)
        async with aclosing(_events(jobs)) as events:
            async for i, kind, value in events:
                if kind == "logprobs":
                    pending[i] = pending.get(i, ()) + value
                elif kind == "delta":
                    yield choices.chunk(i, value, None, pending.pop(i, ()))
                elif kind == "done":
                    results[i] = value
                    for event in choices.closing(i, value):
                        yield event
                else:
                    status, error = (503 if isinstance(value, ShuttingDown) else 500), type(value).__name__
                    yield sse(error_body(f"generation failed ({error}: {value})", "server_error"))
                    break
        if error is None:
            status = 200
            if call.req.include_usage:
                yield choices.usage(results, n)
        yield sse("[DONE]")
    finally:  # also reached when the client disconnects mid-stream (status stays 499)
        if status != 200:
            for job in jobs:
                job.abandon()
        call.finish(status, jobs, results if status == 200 else [], error=error, n=n)
