"""The stream writer on its own, with jobs fed by hand: the order chunks go out in, which choice
each belongs to, where held-back log-probabilities end up, and what an error or a departed
client does to the other choices. (The real server is held to the same in ``test_serve_streaming``.)
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from llmops_magics.models.generation import Generation, TokenLogprob
from llmops_magics.modelserver.batcher import GenParams, Job
from llmops_magics.modelserver.stream_writer import stream_answer


class _Call:
    def __init__(self, endpoint: str, include_usage: bool = True) -> None:
        self.rid, self.endpoint, self.extra = "cmpl-1", endpoint, {}
        self.arm = SimpleNamespace(version="tiny:v1")
        self.req = SimpleNamespace(include_usage=include_usage)
        self.finished: list = []

    def finish(self, status, jobs=(), results=(), error=None, n=1) -> None:
        self.finished.append((status, list(results), error, n))


def _lp(token: str, value: float = -0.5) -> TokenLogprob:
    return TokenLogprob(token, value, ((token, value),))


def _events(payloads: list[str]) -> list:
    assert all(p.startswith("data: ") and p.endswith("\n\n") for p in payloads)
    return [p[6:-2] if p[6:-2] == "[DONE]" else json.loads(p[6:-2]) for p in payloads]


def _jobs(loop, count: int) -> list[Job]:
    return [Job("p", GenParams(max_tokens=4, logprobs=1), loop, stream=True) for _ in range(count)]


def test_choices_stream_side_by_side_and_held_back_logprobs_close_their_choice():
    call = _Call("completions")

    async def scenario():
        jobs = _jobs(asyncio.get_running_loop(), 2)
        jobs[0].push_text("Hel", [_lp("Hel")])
        jobs[1].push_text("A", [_lp("A")])
        jobs[1].resolve(Generation("A.", 3, 2, "stop", 0.1, (_lp("A"), _lp("."))))  # "." was held back
        await asyncio.sleep(0)  # delivered: the next piece is a chunk of its own, not coalesced with "Hel"
        jobs[0].push_text("l", [_lp("l")])
        await asyncio.sleep(0)
        jobs[0].resolve(Generation("Hello", 3, 3, "length", 0.1, (_lp("Hel"), _lp("l"), _lp("o"))))
        return [event async for event in stream_answer(call, jobs, 2)]

    events = _events(asyncio.run(scenario()))
    assert events[-1] == "[DONE]"
    usage = events[-2]
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    chunks = [e["choices"][0] for e in events[:-2]]
    assert [c["index"] for c in chunks] == [0, 1, 1, 1, 0, 0, 0]  # as they came: choice 1 finished first
    for i, text, finish in ((0, "Hello", "length"), (1, "A.", "stop")):
        mine = [c for c in chunks if c["index"] == i]
        assert "".join(c["text"] for c in mine) == text
        assert [c["finish_reason"] for c in mine][-1] == finish and mine[-1]["text"] == ""
        assert all(c["finish_reason"] is None for c in mine[:-1])
    tokens = [c["logprobs"] for c in chunks if c["index"] == 0 and c["logprobs"]]
    assert [lp["tokens"] for lp in tokens] == [["Hel"], ["l"], ["o"]]  # "o" came with the rest of the text
    assert [lp["text_offset"] for lp in tokens] == [[0], [3], [4]]  # from the start of the answer
    assert [c["text"] for c in chunks if c["index"] == 1] == ["A", ".", ""]  # held-back text and value together
    [(status, results, error, n)] = call.finished
    assert (status, error, n) == (200, None, 2)
    assert [r.text for r in results] == ["Hello", "A."]  # in choice order, not arrival order


def test_chat_stream_opens_every_choice_and_carries_logprobs_in_chats_shape():
    call = _Call("chat", include_usage=False)

    async def scenario():
        jobs = _jobs(asyncio.get_running_loop(), 2)
        for i, job in enumerate(jobs):
            job.push_text("é", [_lp("é", -0.25 * (i + 1))])
            job.resolve(Generation("é", 2, 1, "stop", 0.1, (_lp("é", -0.25 * (i + 1)),)))
        return [event async for event in stream_answer(call, jobs, 2)]

    events = _events(asyncio.run(scenario()))
    assert events[-1] == "[DONE]" and all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    chunks = [e["choices"][0] for e in events[:-1]]
    assert [(c["index"], c["delta"]) for c in chunks[:2]] == [
        (0, {"role": "assistant", "content": ""}),
        (1, {"role": "assistant", "content": ""}),
    ]
    scored = [c for c in chunks if c["logprobs"]]
    assert [(c["index"], c["logprobs"]["content"][0]["logprob"]) for c in scored] == [(0, -0.25), (1, -0.5)]
    assert scored[0]["logprobs"]["content"][0]["bytes"] == list("é".encode())
    assert len(chunks) == 6  # two openings, two pieces, two finishes: no usage chunk unless asked


def test_a_failed_choice_ends_the_stream_and_abandons_the_others():
    call = _Call("completions")

    async def scenario():
        jobs = _jobs(asyncio.get_running_loop(), 3)
        jobs[0].push_text("a")
        jobs[2].resolve(Generation("c", 1, 1, "stop", 0.1))
        jobs[1].fail(RuntimeError("out of memory"))
        return jobs, [event async for event in stream_answer(call, jobs, 3)]

    jobs, payloads = asyncio.run(scenario())
    events = _events(payloads)
    assert events[-1] == "[DONE]" and "out of memory" in events[-2]["error"]["message"]
    assert all("usage" not in e for e in events[:-1] if isinstance(e, dict))
    assert [job.abandoned for job in jobs] == [True, True, True]
    assert call.finished == [(500, [], "RuntimeError", 3)]


def test_a_client_that_goes_away_abandons_every_choice():
    call = _Call("completions")

    async def scenario():
        jobs = _jobs(asyncio.get_running_loop(), 2)
        jobs[0].push_text("a")
        stream = stream_answer(call, jobs, 2)
        first = await anext(stream)
        await stream.aclose()  # what Starlette does when the connection drops
        return jobs, first

    jobs, first = asyncio.run(scenario())
    assert json.loads(first[6:])["choices"][0]["text"] == "a"
    assert [job.abandoned for job in jobs] == [True, True]
    assert call.finished == [(499, [], None, 2)]
