"""Continuous batching on the real tiny models (GPT-2 and Llama architectures, a PEFT adapter).

The scheduler is driven directly here (the HTTP layer is the same for both batchers and is
covered by ``test_deploy_server`` and ``faults/test_server_faults``, which run on it):
greedy answers of a mixed-length, staggered load equal unbatched ``generate()`` answers;
sequences join a running batch and leave it the step they finish; an abandoned sequence
frees its slot; a seeded sampled answer does not depend on its batch mates.
"""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from deploy_support import build_folders, llama_folder
from test_deploy_server import PROMPTS as SERVER_PROMPTS

from llmops_magics.models.generation import generate
from llmops_magics.modelserver.batcher import GenParams, Job
from llmops_magics.modelserver.scheduler import ContinuousBatcher, supports_continuous

pytestmark = pytest.mark.slow

PROMPTS = [*SERVER_PROMPTS[:7], ""]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return build_folders(str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module", params=["gpt2", "llama", "gpt2+lora"])
def loaded(request, folders, tmp_path_factory):
    from llmops_magics.models.loading import load_model

    if request.param == "llama":
        return load_model(llama_folder(tmp_path_factory.mktemp("llama"), folders.base))
    return load_model(folders.adapter_a if request.param == "gpt2+lora" else folders.base)


def _run(batcher: ContinuousBatcher, cases, *, gaps: list[float] | None = None, stream: bool = False):
    async def scenario():
        loop = asyncio.get_running_loop()
        jobs = []
        for i, (prompt, params) in enumerate(cases):
            jobs.append(batcher.submit(Job(prompt, params, loop, stream=stream)))
            if gaps:
                await asyncio.sleep(gaps[i])
        return jobs, await asyncio.gather(*(j.future for j in jobs))

    return asyncio.run(scenario())


def test_greedy_answers_of_a_mixed_staggered_load_equal_unbatched_answers(loaded):
    rng = random.Random(3)
    cases = [(p, GenParams(max_tokens=rng.choice([1, 4, 9, 17, 33, 64]))) for p in PROMPTS * 3]
    alone = [generate(loaded, [p], max_new_tokens=g.max_tokens, temperature=0)[0] for p, g in cases]
    batcher = ContinuousBatcher(loaded, max_batch_size=6)
    try:
        jobs, results = _run(batcher, cases, gaps=[rng.random() * 0.02 for _ in cases])
    finally:
        batcher.close()
    assert [r.text for r in results] == [a.text for a in alone]
    assert [r.finish_reason for r in results] == [a.finish_reason for a in alone]
    assert [r.completion_tokens for r in results] == [a.completion_tokens for a in alone]
    assert max(j.batch_size for j in jobs) > 1
    joined_mid_flight = [(a, b) for a in jobs for b in jobs if a.first_token < b.started < a.finished]
    assert joined_mid_flight, "no sequence joined a batch that was already decoding"


def test_the_model_cache_is_one_that_rows_can_be_merged_and_split(loaded):
    assert supports_continuous(loaded)


def test_a_short_answer_leaves_the_batch_while_a_long_one_goes_on(folders):
    from llmops_magics.models.loading import load_model

    batcher = ContinuousBatcher(load_model(folders.base), max_batch_size=2)
    long_ = ("The capital of", GenParams(max_tokens=80, min_tokens=80))
    shorts = [(p, GenParams(max_tokens=3, min_tokens=3)) for p in PROMPTS[:4]]
    try:
        jobs, results = _run(batcher, [long_, *shorts])
    finally:
        batcher.close()
    long_job, short_jobs = jobs[0], jobs[1:]
    assert results[0].completion_tokens == 80 and all(r.completion_tokens == 3 for r in results[1:])
    # with two slots, the four short answers pass through the second slot one after another,
    # each finishing while the long answer is still decoding
    assert all(long_job.first_token < j.finished < long_job.finished for j in short_jobs)
    assert all(j.batch_size == 2 for j in jobs)


def test_a_request_that_takes_a_finished_rows_place_later_answers_as_if_alone(folders):
    """A finished row stays in the cache as a masked hole (decoding filler tokens) until a request
    takes its place; the newcomer must see none of what the hole held or decoded meanwhile."""
    from llmops_magics.models.loading import load_model

    loaded = load_model(folders.base)
    first = [("", 2), (PROMPTS[0], 100), ("", 100), (PROMPTS[6], 100)]  # row 0 finishes first: a hole, not the tail
    later = [(PROMPTS[6], 9), (PROMPTS[2], 30), ("", 5)]  # the first takes row 0; the rest are appended
    alone = [generate(loaded, [p], max_new_tokens=n, min_new_tokens=n, temperature=0)[0] for p, n in first + later]
    batcher = ContinuousBatcher(loaded, max_batch_size=8)

    async def scenario():
        loop = asyncio.get_running_loop()

        def submit(cases):
            return [batcher.submit(Job(p, GenParams(max_tokens=n, min_tokens=n), loop)) for p, n in cases]

        early = submit(first)
        await early[0].future
        passes = batcher.batches
        while batcher.batches < passes + 20:  # the hole decodes filler (more columns than a prompt) before it is taken
            await asyncio.sleep(0.001)
        rest = submit(later)
        return early + rest, await asyncio.gather(*(j.future for j in early + rest))

    try:
        jobs, results = asyncio.run(scenario())
    finally:
        batcher.close()
    assert [r.text for r in results] == [a.text for a in alone]
    assert all(j.started > jobs[0].finished for j in jobs[len(first) :])
    assert all(j.finished > jobs[-1].started for j in jobs[1:4]), "the long rows were still decoding"


def test_an_abandoned_sequence_frees_its_slot_for_the_next_request(folders):
    from llmops_magics.models.loading import load_model

    batcher = ContinuousBatcher(load_model(folders.base), max_batch_size=1)
    params = GenParams(max_tokens=200, min_tokens=200)

    async def scenario():
        loop = asyncio.get_running_loop()
        leaving = batcher.submit(Job("The capital of", params, loop, stream=True))
        waiting = batcher.submit(Job("The flag of", GenParams(max_tokens=5, min_tokens=5), loop))
        assert (await leaving.events.get())[0] == "delta"
        leaving.abandon()
        gone = await asyncio.wait_for(leaving.future, 60)
        served = await asyncio.wait_for(waiting.future, 60)
        return gone, served, leaving, waiting

    try:
        gone, served, leaving, waiting = asyncio.run(scenario())
    finally:
        batcher.close()
    assert gone.finish_reason == "abort" and gone.completion_tokens < 100
    assert served.completion_tokens == 5 and waiting.started >= leaving.finished


def test_a_seeded_sampled_answer_does_not_depend_on_its_batch_mates(folders):
    from llmops_magics.models.loading import load_model

    loaded = load_model(folders.base)
    sampled = GenParams(max_tokens=12, temperature=1.3, top_p=0.9, seed=11)
    batcher = ContinuousBatcher(loaded, max_batch_size=8)
    try:
        _, alone = _run(batcher, [("People in", sampled)])
        _, crowd = _run(batcher, [(p, GenParams(max_tokens=20)) for p in PROMPTS[:5]] + [("People in", sampled)])
        _, other_seed = _run(batcher, [("People in", GenParams(max_tokens=12, temperature=1.3, top_p=0.9, seed=12))])
    finally:
        batcher.close()
    assert crowd[-1].text == alone[0].text
    assert other_seed[0].text != alone[0].text


def test_streamed_pieces_add_up_to_the_answer_and_a_stop_string_ends_it(folders):
    from llmops_magics.models.loading import load_model

    loaded = load_model(folders.base)
    full = generate(loaded, ["The capital of"], max_new_tokens=30, temperature=0, min_new_tokens=30)[0].text
    stop = full.strip()[3:6]
    assert stop and stop in full
    batcher = ContinuousBatcher(loaded, max_batch_size=4)

    async def scenario():
        loop = asyncio.get_running_loop()
        job = batcher.submit(Job("The capital of", GenParams(max_tokens=30, stop=(stop,)), loop, stream=True))
        pieces = []
        while True:
            kind, value = await job.events.get()
            if kind != "delta":
                return pieces, value
            pieces.append(value)

    try:
        pieces, result = asyncio.run(scenario())
    finally:
        batcher.close()
    assert result.text == full[: full.index(stop)] and result.finish_reason == "stop"
    assert "".join(pieces) == result.text
    assert result.completion_tokens < 30  # it stopped generating at the stop string


def test_close_finishes_running_sequences_and_fails_queued_ones(folders):
    from llmops_magics.models.loading import load_model
    from llmops_magics.modelserver.batcher import ShuttingDown

    batcher = ContinuousBatcher(load_model(folders.base), max_batch_size=1)

    async def scenario():
        loop = asyncio.get_running_loop()
        running = batcher.submit(Job("The capital of", GenParams(max_tokens=40, min_tokens=40), loop, stream=True))
        queued = batcher.submit(Job("The flag of", GenParams(max_tokens=4), loop))
        await running.events.get()
        await asyncio.get_running_loop().run_in_executor(None, batcher.close)
        first = await running.future
        with pytest.raises(ShuttingDown):
            await queued.future
        return first

    assert asyncio.run(scenario()).completion_tokens == 40


def test_a_busy_batch_holds_a_lone_newcomer_a_few_steps_and_takes_a_crowd_at_once(folders):
    """A join is a prefill pass of its own: while 20 rows decode, one queued request waits until
    more come or ``JOIN_AFTER_STEPS`` steps pass; ``JOIN_RATIO`` of the batch queued joins at the next pass."""
    import time

    from llmops_magics.models.loading import load_model

    loaded = load_model(folders.base)
    passes: list[float] = []
    batcher = ContinuousBatcher(
        loaded, max_batch_size=32, on_batch=lambda size, depth: passes.append(time.perf_counter())
    )
    long_ = GenParams(max_tokens=90, min_tokens=90)
    short = GenParams(max_tokens=3, min_tokens=3)
    crowd_size = math.ceil(ContinuousBatcher.JOIN_RATIO * 21)
    alone = [generate(loaded, [p], max_new_tokens=3, min_new_tokens=3, temperature=0)[0] for p in PROMPTS[:crowd_size]]

    async def scenario():
        loop = asyncio.get_running_loop()
        running = [batcher.submit(Job(PROMPTS[i % 7], long_, loop)) for i in range(20)]
        while len(passes) < 3:  # the 20 are decoding
            await asyncio.sleep(0.001)
        lone = batcher.submit(Job(PROMPTS[0], short, loop))
        await lone.future
        crowd = [batcher.submit(Job(p, short, loop)) for p in PROMPTS[:crowd_size]]
        answers = await asyncio.gather(*(j.future for j in crowd))
        await asyncio.gather(*(j.future for j in running))
        return lone, crowd, answers

    try:
        lone, crowd, answers = asyncio.run(scenario())
    finally:
        batcher.close()

    def passes_between(start: float, end: float) -> int:
        return sum(1 for t in passes if start < t < end)

    held = passes_between(lone.submitted, lone.started)
    assert 2 <= held <= ContinuousBatcher.JOIN_AFTER_STEPS + 1, held
    assert passes_between(crowd[-1].submitted, min(j.started for j in crowd)) <= 1
    assert len({j.started for j in crowd}) == 1, "the crowd joined in one prefill pass"
    assert [a.text for a in answers] == [a.text for a in alone]
