"""The rest of the OpenAI request surface, through the official ``openai`` client, on a real server.

``n`` > 1, ``logprobs`` / ``top_logprobs`` on completions and chat, ``max_completion_tokens``,
``stream_options.include_usage``; and every field the server does not implement is a 400
that names it, never silently ignored. The log-probabilities are checked against the
model itself: the first token's value equals a forward pass of the same model. Streaming
these options is held to the non-streamed answers in ``test_serve_streaming.py``.
"""

from __future__ import annotations

import math

import pytest
from deploy_support import build_folders, module_workspace, register, stop_all

pytestmark = pytest.mark.slow

KEY = "options-key"
QUESTION = [{"role": "user", "content": "What is the capital of Brailand?"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from llmops_magics import deploy

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    with module_workspace(tmp_path_factory.mktemp("openai-options") / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            continuous = deploy(refs.base, name="qa", api_key=KEY, threads=1, workspace=ws)
            static = deploy(refs.base, name="qa-static", api_key=KEY, batching="static", threads=1, workspace=ws)
            yield folders, continuous, static
        finally:
            stop_all(ws)


@pytest.fixture(scope="module")
def client(served):
    from openai import OpenAI

    return OpenAI(base_url=served[1].url + "/v1", api_key=KEY, max_retries=0)


def test_n_sampled_choices_differ_and_a_seed_repeats_them(client):
    ask = dict(model="qa", prompt="People in", max_tokens=12, temperature=1.3, seed=7, n=3)
    first, again = client.completions.create(**ask), client.completions.create(**ask)
    texts = [c.text for c in first.choices]
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert len(set(texts)) == 3 and texts == [c.text for c in again.choices]
    singles = [client.completions.create(**{**ask, "n": 1, "seed": 7 + i}) for i in range(3)]
    assert texts == [s.choices[0].text for s in singles]  # choice i is drawn with seed + i
    assert first.usage.prompt_tokens == singles[0].usage.prompt_tokens  # the prompt counts once, not n times
    assert first.usage.completion_tokens == sum(s.usage.completion_tokens for s in singles)


def test_n_choices_of_several_prompts_come_prompt_by_prompt(client):
    out = client.completions.create(
        model="qa", prompt=["The capital of", "The flag of"], max_tokens=6, temperature=0, n=2
    )
    alone = [
        client.completions.create(model="qa", prompt=p, max_tokens=6, temperature=0).choices[0].text
        for p in ("The capital of", "The flag of")
    ]
    assert [c.text for c in out.choices] == [alone[0], alone[0], alone[1], alone[1]]
    assert [c.index for c in out.choices] == [0, 1, 2, 3]


def test_chat_returns_n_choices(client):
    out = client.chat.completions.create(model="qa", messages=QUESTION, max_tokens=6, temperature=0, n=2)
    assert len(out.choices) == 2 and out.choices[0].message.content == out.choices[1].message.content


def test_completion_logprobs_are_the_models_own(served, client):
    from llmops_magics.models.loading import load_model

    out = client.completions.create(model="qa", prompt="The capital of", max_tokens=8, temperature=0, logprobs=3)
    choice = out.choices[0]
    lp = choice.logprobs
    assert "".join(lp.tokens) == choice.text and len(lp.tokens) == out.usage.completion_tokens
    assert all(v <= 0 for v in lp.token_logprobs) and all(len(top) == 3 for top in lp.top_logprobs)
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs, strict=True):
        assert math.isclose(chosen, max(top.values()), abs_tol=1e-5)  # greedy: the most likely token
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]

    import torch

    loaded = load_model(served[0].base)
    ids = loaded.tokenizer("The capital of", add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        expected = torch.log_softmax(loaded.model(input_ids=ids).logits[0, -1].float(), -1).max()
    assert math.isclose(lp.token_logprobs[0], float(expected), abs_tol=1e-4)


def test_chat_logprobs_with_top_alternatives(client):
    out = client.chat.completions.create(
        model="qa", messages=QUESTION, max_tokens=6, temperature=0, logprobs=True, top_logprobs=2
    )
    content = out.choices[0].logprobs.content
    assert "".join(t.token for t in content) == out.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)
    assert all(math.isclose(t.logprob, t.top_logprobs[0].logprob, abs_tol=1e-5) for t in content)
    assert all(bytes(t.bytes).decode(errors="replace") == t.token for t in content)
    plain = client.chat.completions.create(model="qa", messages=QUESTION, max_tokens=6, temperature=0, logprobs=True)
    assert all(t.top_logprobs == [] for t in plain.choices[0].logprobs.content)
    none = client.chat.completions.create(model="qa", messages=QUESTION, max_tokens=6, temperature=0)
    assert none.choices[0].logprobs is None


def test_max_completion_tokens_and_streamed_usage(client):
    out = client.chat.completions.create(
        model="qa", messages=QUESTION, max_completion_tokens=3, extra_body={"ignore_eos": True}
    )
    assert out.usage.completion_tokens == 3
    stream = client.chat.completions.create(
        model="qa",
        messages=QUESTION,
        max_completion_tokens=4,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize(
    ("ask", "param"),
    [
        ({"n": 17}, "n"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),  # without stream
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"presence_penalty": -1}, "presence_penalty"),
        ({"logit_bias": {"50": 10}}, "logit_bias"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"extra_body": {"repetition_penalty": 1.2}}, "repetition_penalty"),
    ],
)
def test_what_the_server_does_not_do_is_a_400_naming_the_field(client, ask, param):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="qa", messages=QUESTION, max_tokens=2, **ask)
    assert caught.value.body["param"] == param


def test_neutral_values_of_unimplemented_fields_are_accepted(client):
    out = client.chat.completions.create(
        model="qa",
        messages=QUESTION,
        max_tokens=2,
        frequency_penalty=0,
        presence_penalty=0,
        response_format={"type": "text"},
        store=False,
    )
    assert out.choices[0].finish_reason in ("stop", "length")


def test_a_static_batching_deployment_serves_n_and_logprobs(served):
    import openai

    static = openai.OpenAI(base_url=served[2].url + "/v1", api_key=KEY, max_retries=0)
    out = static.completions.create(model="qa-static", prompt="The capital of", max_tokens=4, n=2, logprobs=1)
    assert [c.index for c in out.choices] == [0, 1]
    assert all(len(c.logprobs.tokens) == len(out.choices[0].logprobs.tokens) > 0 for c in out.choices)
    assert sum(len(c.logprobs.tokens) for c in out.choices) == out.usage.completion_tokens
