"""Streaming the whole request surface: ``n`` choices and log-probabilities, with the official ``openai`` client.

A streamed answer must be the non-streamed answer cut into pieces: each of ``n`` choices
(told apart by ``index``) adds up to the text of the same choice asked without ``stream``,
ends with its own ``finish_reason``, and the usage chunk counts every choice; the
log-probabilities the chunks carry add up to the non-streamed ones. Both batchers are held
to it (the static one scores tokens through a forward hook, see ``BatchStreamer``).
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from deploy_support import build_folders, module_workspace, register, stop_all

pytestmark = pytest.mark.slow

KEY = "stream-key"
QUESTION = [{"role": "user", "content": "What is the capital of Brailand?"}]


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    from openai import OpenAI

    from llmops_magics import deploy

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    with module_workspace(tmp_path_factory.mktemp("serve-streaming") / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            continuous = deploy(refs.base, name="qa", api_key=KEY, threads=1, workspace=ws)
            static = deploy(refs.base, name="qa-static", api_key=KEY, batching="static", threads=1, workspace=ws)
            yield {
                mode: (OpenAI(base_url=handle.url + "/v1", api_key=KEY, max_retries=0), name)
                for mode, handle, name in (("continuous", continuous, "qa"), ("static", static, "qa-static"))
            }
        finally:
            stop_all(ws)


def _gather(chunks) -> dict:
    """Per choice index: text, finish reasons, streamed log-probabilities; and the usage chunk."""
    out = {"text": defaultdict(str), "finish": defaultdict(list), "lp": defaultdict(list), "usage": None}
    for chunk in chunks:
        if chunk.usage is not None:
            assert chunk.choices == [] and out["usage"] is None
            out["usage"] = chunk.usage
            continue
        assert len(chunk.choices) == 1
        choice = chunk.choices[0]
        i = choice.index
        assert not out["finish"][i], f"choice {i} sent a chunk after its finish_reason"
        delta = getattr(choice, "delta", None)
        out["text"][i] += (delta.content or "") if delta is not None else choice.text
        if choice.finish_reason is not None:
            out["finish"][i].append(choice.finish_reason)
        if choice.logprobs is not None:
            out["lp"][i].append(choice.logprobs)
    return out


def _completion_lp(parts) -> dict:
    joined = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for part in parts:
        for key in joined:
            joined[key] += getattr(part, key)
    return joined


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, abs_tol=1e-4) for x, y in zip(a, b, strict=True))


def _same_completion_lp(streamed, plain) -> None:
    assert streamed["tokens"] == plain.tokens and streamed["text_offset"] == plain.text_offset
    assert _close(streamed["token_logprobs"], plain.token_logprobs)
    for got, want in zip(streamed["top_logprobs"], plain.top_logprobs, strict=True):
        assert list(got) == list(want) and _close(list(got.values()), list(want.values()))


@pytest.mark.parametrize("mode", ["continuous", "static"])
def test_streamed_greedy_choices_are_the_plain_answer_and_usage_counts_them_all(clients, mode):
    client, model = clients[mode]
    ask = dict(model=model, prompt="The capital of", max_tokens=10, temperature=0)
    plain = client.completions.create(**ask)
    got = _gather(client.completions.create(**ask, n=2, stream=True, stream_options={"include_usage": True}))
    assert dict(got["text"]) == {0: plain.choices[0].text, 1: plain.choices[0].text}
    assert dict(got["finish"]) == {0: [plain.choices[0].finish_reason], 1: [plain.choices[0].finish_reason]}
    assert got["usage"].prompt_tokens == plain.usage.prompt_tokens  # one prompt, counted once
    assert got["usage"].completion_tokens == 2 * plain.usage.completion_tokens


def test_streamed_seeded_choices_reproduce_the_plain_ones(clients):
    client, model = clients["continuous"]
    ask = dict(model=model, prompt="People in", max_tokens=12, temperature=1.3, seed=7, n=3)
    plain = client.completions.create(**ask)
    got = _gather(client.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
    assert [got["text"][i] for i in range(3)] == [c.text for c in plain.choices]
    assert len({c.text for c in plain.choices}) == 3  # three different draws, each kept apart by its index
    assert [got["finish"][i] for i in range(3)] == [[c.finish_reason] for c in plain.choices]
    assert got["usage"].completion_tokens == plain.usage.completion_tokens


def test_streamed_prompts_times_choices_are_indexed_as_without_stream(clients):
    client, model = clients["continuous"]
    ask = dict(model=model, prompt=["The capital of", "The flag of"], max_tokens=6, temperature=0, n=2)
    plain = client.completions.create(**ask)
    got = _gather(client.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
    assert [got["text"][i] for i in range(4)] == [c.text for c in plain.choices]
    assert (got["usage"].prompt_tokens, got["usage"].completion_tokens) == (
        plain.usage.prompt_tokens,
        plain.usage.completion_tokens,
    )


def test_streamed_chat_choices_each_open_with_the_role_and_finish(clients):
    client, model = clients["continuous"]
    ask = dict(model=model, messages=QUESTION, max_tokens=8, temperature=0)
    plain = client.chat.completions.create(**ask)
    chunks = list(client.chat.completions.create(**ask, n=2, stream=True))
    roles = [c.choices[0].index for c in chunks if c.choices[0].delta.role == "assistant"]
    assert sorted(roles) == [0, 1]
    got = _gather(chunks)
    assert dict(got["text"]) == {i: plain.choices[0].message.content for i in (0, 1)}
    assert dict(got["finish"]) == {i: [plain.choices[0].finish_reason] for i in (0, 1)}


@pytest.mark.parametrize("mode", ["continuous", "static"])
def test_streamed_completion_logprobs_add_up_to_the_plain_ones(clients, mode):
    client, model = clients[mode]
    # 24 tokens, EOS held off: enough decoding steps that the stream is in several pieces even when
    # the event loop falls behind (10 could arrive as one under load)
    ask = dict(model=model, prompt="The capital of", max_tokens=24, temperature=0, logprobs=3)
    ask["extra_body"] = {"min_tokens": 24}
    plain = client.completions.create(**ask)
    got = _gather(client.completions.create(**ask, stream=True, n=2))
    lp = plain.choices[0].logprobs
    assert len(lp.tokens) == plain.usage.completion_tokens
    for i in (0, 1):
        assert got["text"][i] == plain.choices[0].text
        _same_completion_lp(_completion_lp(got["lp"][i]), lp)
        assert len(got["lp"][i]) > 1  # the values come with the pieces, not all at the end


@pytest.mark.parametrize("mode", ["continuous", "static"])
def test_streamed_chat_logprobs_add_up_to_the_plain_ones(clients, mode):
    client, model = clients[mode]
    ask = dict(model=model, messages=QUESTION, max_tokens=8, temperature=0, logprobs=True, top_logprobs=2)
    plain = client.chat.completions.create(**ask).choices[0].logprobs.content
    got = _gather(client.chat.completions.create(**ask, stream=True))
    streamed = [entry for part in got["lp"][0] for entry in part.content]
    assert [(t.token, t.bytes) for t in streamed] == [(t.token, t.bytes) for t in plain]
    assert _close([t.logprob for t in streamed], [t.logprob for t in plain])
    for a, b in zip(streamed, plain, strict=True):
        assert [x.token for x in a.top_logprobs] == [x.token for x in b.top_logprobs]
        assert _close([x.logprob for x in a.top_logprobs], [x.logprob for x in b.top_logprobs])


def test_sampled_and_stopped_streams_carry_the_same_logprobs(clients):
    """Sampled rows are scored on the raw logits; tokens held back by a stop string still send theirs."""
    client, model = clients["continuous"]
    full = client.completions.create(model=model, prompt="People in", max_tokens=16, temperature=0).choices[0].text
    stop = full.strip()[2:5]
    for ask in (
        dict(model=model, prompt="People in", max_tokens=12, temperature=1.0, seed=3, logprobs=2),
        dict(model=model, prompt="People in", max_tokens=16, temperature=0, logprobs=1, stop=[stop]),
    ):
        plain = client.completions.create(**ask).choices[0]
        got = _gather(client.completions.create(**ask, stream=True))
        assert got["text"][0] == plain.text and got["finish"][0] == [plain.finish_reason]
        _same_completion_lp(_completion_lp(got["lp"][0]), plain.logprobs)
    assert plain.finish_reason == "stop" and stop not in plain.text


def test_a_static_deployment_serves_logprobs_like_the_continuous_one(clients):
    ask = dict(prompt="The capital of", max_tokens=8, temperature=0, logprobs=2)
    static = clients["static"][0].completions.create(model=clients["static"][1], **ask).choices[0]
    continuous = clients["continuous"][0].completions.create(model=clients["continuous"][1], **ask).choices[0]
    assert static.text == continuous.text
    _same_completion_lp(_completion_lp([static.logprobs]), continuous.logprobs)


@pytest.mark.parametrize(
    ("endpoint", "ask", "param"),
    [
        ("chat", {"stream_options": {"include_usage": True}}, "stream_options"),
        ("chat", {"n": 17, "stream": True}, "n"),
        ("chat", {"logprobs": True, "top_logprobs": 21, "stream": True}, "top_logprobs"),
        ("completions", {"echo": True, "stream": True}, "echo"),
        ("completions", {"best_of": 2, "n": 2, "stream": True}, "best_of"),
        ("completions", {"logprobs": 21, "stream": True}, "logprobs"),
    ],
)
def test_what_stays_unsupported_with_stream_is_a_400_naming_the_field(clients, endpoint, ask, param):
    import openai

    client, model = clients["continuous"]
    with pytest.raises(openai.BadRequestError) as caught:
        if endpoint == "chat":
            client.chat.completions.create(model=model, messages=QUESTION, max_tokens=2, **ask)
        else:
            client.completions.create(model=model, prompt="The capital of", max_tokens=2, **ask)
    assert caught.value.body["param"] == param


def test_a_padded_static_batch_on_an_adapter_scores_like_the_continuous_engine(tmp_path_factory):
    """Rows of different lengths, streamed and not, in one ``generate()`` call of a PEFT model:
    the forward hook must hand each step's logits to the tokens chosen from them."""
    import asyncio

    from llmops_magics.models.loading import load_model
    from llmops_magics.modelserver.batcher import DynamicBatcher, GenParams, Job
    from llmops_magics.modelserver.scheduler import ContinuousBatcher

    loaded = load_model(build_folders(str(tmp_path_factory.getbasetemp())).adapter_a)
    prompts = ("Question: What is the capital of Brailand?\nAnswer:", "The capital of")

    def answers(cls):
        batcher = cls(loaded, max_batch_size=4, max_wait_ms=200) if cls is DynamicBatcher else cls(loaded)

        async def ask():
            loop = asyncio.get_running_loop()
            params = GenParams(max_tokens=6, logprobs=2)
            jobs = [batcher.submit(Job(p, params, loop, stream=s)) for p in prompts for s in (False, True)]
            return await asyncio.gather(*(j.future for j in jobs)), max(j.batch_size for j in jobs)

        try:
            return asyncio.run(ask())
        finally:
            batcher.close()

    (static, size), (continuous, _) = answers(DynamicBatcher), answers(ContinuousBatcher)
    assert size > 1  # they did share a padded batch
    for a, b in zip(static, continuous, strict=True):
        assert a.text == b.text and len(a.logprobs) == a.completion_tokens > 0
        assert [t.token for t in a.logprobs] == [t.token for t in b.logprobs]
        assert _close([t.logprob for t in a.logprobs], [t.logprob for t in b.logprobs])
        assert [[alt for alt, _ in t.top] for t in a.logprobs] == [[alt for alt, _ in t.top] for t in b.logprobs]
