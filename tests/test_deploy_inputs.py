"""How the server turns a request into model input (the deployed prompt applied server-side).

In-process on the real tokenizer: the rules are in ``Service.completion_inputs`` and
``Service.chat_input``; the server tests check the same rules over HTTP.
"""

from __future__ import annotations

import types

import pytest
from deploy_support import build_folders

from llmops_magics.modelserver.protocol import ChatRequest, CompletionRequest, RequestError
from llmops_magics.modelserver.service import Arm, Service
from llmops_magics.prompts.template import parse_template


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(build_folders(str(tmp_path_factory.getbasetemp())).base)


RULES = Service.__new__(Service)  # the input rules need no loaded service around them


def arm(tokenizer, template: str | None, params=None) -> Arm:
    art = types.SimpleNamespace(ref="adapter://qa/1", kind="adapter", digest="0" * 64, created_at=0.0, name="qa")
    loaded = types.SimpleNamespace(tokenizer=tokenizer, model=None, base_artifact=None)
    engine = types.SimpleNamespace(loaded=loaded, batcher=None)
    parsed = parse_template(template) if template else None
    return Arm("primary", art, engine, "default", 100.0, parsed, "prompt://p/1" if parsed else None, params or {})


def chat(messages=None, **extra) -> ChatRequest:
    return ChatRequest.model_validate({"model": "qa", **({"messages": messages} if messages else {}), **extra})


def user(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def test_variables_render_a_text_template(tokenizer):
    req = CompletionRequest.model_validate({"model": "qa", "variables": {"question": "Why?"}})
    assert RULES.completion_inputs(arm(tokenizer, "Q: {{ question }}\nA:"), req) == ["Q: Why?\nA:"]


def test_a_raw_prompt_passes_through_even_with_a_template(tokenizer):
    req = CompletionRequest.model_validate({"model": "qa", "prompt": ["a", "b"]})
    assert RULES.completion_inputs(arm(tokenizer, "Q: {{ question }}"), req) == ["a", "b"]


def test_prompt_params_are_defaults_for_variables(tokenizer):
    req = CompletionRequest.model_validate({"model": "qa", "variables": {"question": "Why?"}})
    served = arm(tokenizer, "{{ tone }} Q: {{ question }}", {"tone": "Briefly."})
    assert RULES.completion_inputs(served, req) == ["Briefly. Q: Why?"]


def test_the_last_user_message_fills_a_one_variable_template(tokenizer):
    out = RULES.chat_input(arm(tokenizer, "Q: {{ question }}\nA:"), chat(user("Why?")))
    assert out == "Q: Why?\nA:"


def test_a_chat_template_without_variables_goes_before_the_conversation(tokenizer):
    out = RULES.chat_input(arm(tokenizer, "system:\nAnswer in one word."), chat(user("Why?")))
    assert out == "system: Answer in one word.\nsystem: be brief\nuser: Why?\nassistant:"


def test_without_a_template_messages_are_formatted_as_a_conversation(tokenizer):
    assert RULES.chat_input(arm(tokenizer, None), chat(user("Why?"))) == ("system: be brief\nuser: Why?\nassistant:")


def test_a_template_with_two_free_variables_needs_them_sent_as_variables(tokenizer):
    with pytest.raises(RequestError, match="needs variables a, b"):
        RULES.chat_input(arm(tokenizer, "{{ a }} {{ b }}"), chat(user("Why?")))


def test_variables_without_a_deployed_template_are_a_400(tokenizer):
    req = CompletionRequest.model_validate({"model": "qa", "variables": {"x": 1}})
    with pytest.raises(RequestError, match="without a prompt template") as info:
        RULES.completion_inputs(arm(tokenizer, None), req)
    assert (info.value.status, info.value.param) == (400, "variables")


def test_a_missing_template_variable_is_a_400_naming_it(tokenizer):
    req = CompletionRequest.model_validate({"model": "qa", "variables": {"q": "Why?"}})
    with pytest.raises(RequestError, match="question"):
        RULES.completion_inputs(arm(tokenizer, "Q: {{ question }}"), req)
