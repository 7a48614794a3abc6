"""``%dataset from-traces``: traced calls that kept their content become rows, each with its trace id."""

from __future__ import annotations

import pytest

import llmops_magics
from llmops_magics.tracing import provider
from llmops_magics.tracing.spans import model_call

pytest_plugins = ["tracing_support"]


@pytest.fixture
def capturing(tmp_path, workspace):
    (tmp_path / "pyproject.toml").write_text("[tool.llmops]\n[tool.llmops.tracing]\ncapture_content = true\n")
    provider.reset()
    yield workspace
    provider.reset()


def _chat(prompt, question: str, answer: str, model: str = "m", reason: str = "stop") -> None:
    messages = prompt.render(q=question)
    with model_call("chat", model, provider="openai", inputs=messages) as call:
        call.response(outputs=[answer], finish_reasons=[reason], input_tokens=3, output_tokens=1)


def test_traced_calls_of_a_prompt_become_rows_that_keep_their_trace_ids(capturing, ip):
    qa = llmops_magics.save_prompt("qa", "system:\nBe brief.\nuser:\nQ: {{ q }}")
    other = llmops_magics.save_prompt("other", "user:\n{{ q }}")
    _chat(qa, "2+2?", "4")
    _chat(qa, "capital of France?", "Paris", reason="length")
    _chat(other, "unrelated", "x")
    version = ip.run_line_magic("dataset", "from-traces qa-calls --prompt qa")
    rows = version.records("train")
    assert [(r["prompt"], r["answer"]) for r in rows] == [("Q: 2+2?", "4"), ("Q: capital of France?", "Paris")]
    stored = llmops_magics.get_trace(rows[0]["trace_id"]).spans
    assert stored[0].span_id == rows[0]["span_id"]
    assert version.artifact.spec["args"]["prompt"] == "prompt://qa"
    edges = capturing.registry.upstream(version.artifact, depth=1)
    assert [(e.source, e.relation) for e in edges] == [("prompt://qa/1", "from_traces")]


def test_fields_map_columns_and_where_narrows_the_calls(capturing):
    qa = llmops_magics.save_prompt("qa", "system:\nBe brief.\nuser:\nQ: {{ q }}")
    _chat(qa, "2+2?", "4", model="small")
    _chat(qa, "3+3?", "6", model="big", reason="length")
    version = llmops_magics.dataset_from_traces(
        "mapped",
        field={"question": "input", "reply": "output", "sys": "system", "tokens": "attr:gen_ai.usage.input_tokens"},
        where={"model": "big"},
    )
    (row,) = version.records("train")
    assert {k: row[k] for k in ("question", "reply", "sys", "tokens")} == {
        "question": "Q: 3+3?",
        "reply": "6",
        "sys": "Be brief.",
        "tokens": 3,
    }
    assert version.artifact.metadata["skipped"]["not_matching"] == 1


def test_a_batch_of_text_prompts_gives_one_row_per_prompt(capturing, tiny_model_dir):
    from llmops_magics.models.generation import generate
    from llmops_magics.models.loading import load_model

    gens = generate(load_model(tiny_model_dir), ["The capital of", "Once"], max_new_tokens=3)
    rows = llmops_magics.dataset_from_traces("batch").records("train")
    assert [(r["prompt"], r["answer"]) for r in rows] == [("The capital of", gens[0].text), ("Once", gens[1].text)]


def test_calls_without_content_give_no_rows_and_the_error_says_how_to_capture_it(spans):
    with model_call("chat", "m", provider="openai", inputs=[{"role": "user", "content": "hi"}]) as call:
        call.response(outputs=["hello"])
    with pytest.raises(llmops_magics.ValidationError, match="capture_content"):
        llmops_magics.dataset_from_traces("nothing")
