"""Traces of the project's own model calls and of a user's code, read back from the real SDK and ``traces.db``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import llmops_magics
from llmops_magics.tracing import conventions as C
from llmops_magics.tracing import get_trace, list_traces, trace, traced
from llmops_magics.tracing.spans import model_call

pytest_plugins = ["tracing_support"]


def test_the_projects_attribute_names_are_the_genai_conventions_names():
    from opentelemetry.semconv._incubating.attributes import error_attributes as E
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as G

    ours = {k: v for k, v in vars(C).items() if k.startswith("GEN_AI_")}
    assert ours == {k: getattr(G, k) for k in ours}
    assert C.ERROR_TYPE == E.ERROR_TYPE


def test_load_ext_imports_no_opentelemetry():
    code = (
        "import sys\nfrom IPython.testing.globalipapp import get_ipython\n"
        "get_ipython().run_line_magic('load_ext', 'llmops_magics')\n"
        "import llmops_magics.tracing\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_public_functions_are_exported():
    assert llmops_magics.trace is trace and llmops_magics.traced is traced


def test_a_traced_function_inside_a_trace_block_is_its_child(spans):
    @traced
    def retrieve(query):
        return [query.upper()]

    with trace("answer", user="ada") as outer:
        retrieve("q")
    got = spans.by_name()
    assert got["answer"].attributes["user"] == "ada"
    child = got[retrieve.__qualname__]
    assert spans.parent_of(child) is got["answer"]
    assert f"{child.context.trace_id:032x}" == outer.trace_id


def test_a_model_call_span_carries_the_genai_attributes(spans):
    request = {"temperature": 0.5, "max_tokens": 7, "seed": 3, "top_p": 0.9, "stop": ["\n"]}
    with model_call("chat", "gpt-x", provider="openai", request=request, kind="client") as call:
        call.response(finish_reasons=["stop"], input_tokens=11, output_tokens=4, model="gpt-x-1", response_id="r1")
    span = spans.by_name()["chat gpt-x"]
    assert dict(span.attributes) == {
        C.GEN_AI_OPERATION_NAME: "chat",
        C.GEN_AI_PROVIDER_NAME: "openai",
        C.GEN_AI_REQUEST_MODEL: "gpt-x",
        C.GEN_AI_REQUEST_TEMPERATURE: 0.5,
        C.GEN_AI_REQUEST_MAX_TOKENS: 7,
        C.GEN_AI_REQUEST_SEED: 3,
        C.GEN_AI_REQUEST_TOP_P: 0.9,
        C.GEN_AI_REQUEST_STOP_SEQUENCES: ("\n",),
        C.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        C.GEN_AI_USAGE_INPUT_TOKENS: 11,
        C.GEN_AI_USAGE_OUTPUT_TOKENS: 4,
        C.GEN_AI_RESPONSE_MODEL: "gpt-x-1",
        C.GEN_AI_RESPONSE_ID: "r1",
    }
    assert span.kind.name == "CLIENT"


def test_a_failing_call_records_its_error_type_and_the_error_reaches_the_caller(spans):
    with pytest.raises(TimeoutError, match="too slow"):
        with model_call("chat", "gpt-x", provider="openai"):
            raise TimeoutError("too slow")
    span = spans.by_name()["chat gpt-x"]
    assert span.attributes[C.ERROR_TYPE] == "TimeoutError"
    assert span.status.status_code.name == "ERROR"


def test_content_is_not_recorded_unless_asked_for(spans):
    @traced
    def echo(text):
        return text

    with model_call("chat", "m", provider="openai", inputs=[{"role": "user", "content": "secret"}]) as call:
        call.response(outputs=["also secret"])
    echo("secret")
    recorded = json.dumps([dict(s.attributes) for s in spans.get_finished_spans()])
    assert "secret" not in recorded


def test_content_is_recorded_and_cut_when_the_project_asks_for_it(tmp_path, workspace, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.llmops]\n[tool.llmops.tracing]\ncapture_content = true\nmax_content_chars = 16\n"
    )
    from llmops_magics.tracing import provider

    provider.reset()
    try:

        @traced
        def echo(text):
            return text + "!"

        with model_call("chat", "m", provider="openai", inputs=[{"role": "user", "content": "hello " * 10}]) as call:
            call.response(outputs=["fine"], finish_reasons=["stop"])
        echo("hi")
        view = get_trace()  # the last trace: echo
        assert view.spans[0].attributes[C.LLMOPS_INPUT] == '{"text": "hi"}'
        assert view.spans[0].attributes[C.LLMOPS_OUTPUT] == "hi!"
        call_trace = list_traces(limit=2).ids[1]
        stored = get_trace(call_trace).spans[0].attributes
        messages = json.loads(stored[C.GEN_AI_INPUT_MESSAGES])
        assert messages[0]["parts"][0]["content"].startswith("hello hello ")
        assert "more characters" in messages[0]["parts"][0]["content"]
        assert json.loads(stored[C.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "fine"
    finally:
        provider.reset()


def test_the_standard_variable_turns_content_capture_on(spans, workspace, monkeypatch):
    from llmops_magics.tracing import provider

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    provider.reset()
    assert provider.tracing_for(workspace).capture_content


def test_tracing_turned_off_records_nothing_and_the_code_still_runs(workspace, monkeypatch):
    from llmops_magics.tracing import provider

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    provider.reset()
    with trace("off") as span:
        assert not span.recording and span.trace_id is None
    assert len(list_traces()) == 0


def test_spans_are_stored_in_the_workspace_and_listed_newest_first(spans, workspace):
    with trace("first"):
        pass
    with trace("second"):
        with model_call("chat", "m", provider="openai") as call:
            call.response(input_tokens=5, output_tokens=2)
    listed = list_traces()
    assert [r.name for r in listed] == ["second", "first"]
    assert (listed.rows[0].spans, listed.rows[0].input_tokens, listed.rows[0].output_tokens) == (2, 5, 2)
    assert (workspace.home / "traces.db").is_file()
    assert "second" in str(listed) and "second" in listed._repr_mimebundle_()["text/html"]


def test_a_trace_is_found_by_a_unique_prefix_of_its_id(spans):
    with trace("one") as span:
        pass
    assert get_trace(span.trace_id[:8]).trace_id == span.trace_id
    with pytest.raises(llmops_magics.NotFoundError):
        get_trace("ffff0000")
    with pytest.raises(llmops_magics.ValidationError):
        get_trace("xyz")


def test_a_rendered_prompt_links_the_span_it_is_passed_to(spans):
    llmops_magics.save_prompt("qa", "Q: {{ q }}")
    v2 = llmops_magics.save_prompt("qa", "Question: {{ q }}")
    rendered = v2.render(q="why?")
    assert rendered.prompt_ref == "prompt://qa/2"

    @traced
    def ask(prompt):
        return prompt

    ask(rendered)
    span = spans.by_name()[ask.__qualname__]
    assert span.attributes[C.LLMOPS_PROMPT_REF] == "prompt://qa/2"
    assert len(list_traces(prompt="qa")) == 1
    assert len(list_traces(prompt="qa/2")) == 1
    assert len(list_traces(prompt="qa/1")) == 0


def test_a_trace_block_names_its_prompt_version_and_its_calls_inherit_it(spans):
    llmops_magics.save_prompt("qa", "Q: {{ q }}", aliases=["production"])
    with trace("answer", prompt="qa@production"):
        with model_call("chat", "m", provider="openai"):
            pass
    assert spans.by_name()["chat m"].attributes[C.LLMOPS_PROMPT_REF] == "prompt://qa/1"
    assert spans.by_name()["chat m"].attributes[C.GEN_AI_PROMPT_NAME] == "qa"


def test_generate_is_one_span_per_batch_with_its_tokens(spans, tiny_model_dir):
    from llmops_magics.models.generation import generate
    from llmops_magics.models.loading import load_model

    loaded = load_model(tiny_model_dir)
    gens = generate(loaded, ["The capital of", "Once"], max_new_tokens=4, seed=7)
    span = spans.by_name()[f"text_completion {tiny_model_dir.name}"]
    a = span.attributes
    assert a[C.GEN_AI_PROVIDER_NAME] == "transformers"
    assert (a[C.GEN_AI_REQUEST_MAX_TOKENS], a[C.GEN_AI_REQUEST_TEMPERATURE], a[C.GEN_AI_REQUEST_SEED]) == (4, 0.0, 7)
    assert a[C.GEN_AI_USAGE_INPUT_TOKENS] == sum(g.prompt_tokens for g in gens)
    assert a[C.GEN_AI_USAGE_OUTPUT_TOKENS] == sum(g.completion_tokens for g in gens)
    assert list(a[C.GEN_AI_RESPONSE_FINISH_REASONS]) == [g.finish_reason for g in gens]
    assert a[C.LLMOPS_BATCH_SIZE] == 2


def test_the_in_memory_exporter_and_the_store_hold_the_same_spans(spans):
    with trace("outer"):
        with model_call("chat", "m", provider="openai") as call:
            call.response(input_tokens=1, output_tokens=1)
    stored = get_trace().spans
    memory = spans.get_finished_spans()
    assert {(s.name, s.span_id) for s in stored} == {(s.name, f"{s.context.span_id:016x}") for s in memory}
    assert dict(stored[1].attributes) == json.loads(json.dumps(dict(memory[0].attributes)))


def test_a_bad_tracing_table_costs_the_spans_never_the_call(tmp_path, workspace):
    from llmops_magics.tracing import provider
    from llmops_magics.tracing.settings import TracingWarning

    (tmp_path / "pyproject.toml").write_text("[tool.llmops]\n[tool.llmops.tracing]\ncapture_content = 'maybe'\n")
    provider.reset()
    try:
        with pytest.warns(TracingWarning, match="capture_content must be true or false"):
            with model_call("chat", "m", provider="openai") as call:
                call.response(input_tokens=1)
        assert not call.recording
    finally:
        provider.reset()


def test_a_trace_shows_its_tree_with_timings_tokens_and_cost_at_the_projects_prices(spans, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.llmops]\n[tool.llmops.prices]\nm = { input = 1.0, output = 2.0 }\n")
    with trace("outer"):
        with model_call("chat", "m", provider="openai") as call:
            call.response(input_tokens=1000, output_tokens=500, finish_reasons=["stop"])
        with model_call("chat", "unpriced", provider="openai") as call:
            call.response(input_tokens=7, output_tokens=7)
    view = get_trace()
    assert [(depth, s.name) for depth, s in view.tree()] == [(0, "outer"), (1, "chat m"), (1, "chat unpriced")]
    assert view.cost == pytest.approx(0.002)
    assert (view.input_tokens, view.output_tokens) == (1007, 507)
    html = view._repr_mimebundle_()[0]["text/html"]
    assert "$0.002000" in html and "1000→500" in html and "width:" in html


def test_a_malformed_price_table_costs_the_dollars_never_the_trace(spans, tmp_path):
    from llmops_magics.evaluation.usage import PriceWarning

    (tmp_path / "pyproject.toml").write_text('[tool.llmops]\n[tool.llmops.prices]\nm = "cheap"\n')
    with trace("outer"):
        with model_call("chat", "m", provider="openai") as call:
            call.response(input_tokens=1000, output_tokens=500)
    with pytest.warns(PriceWarning, match=r"\[tool.llmops.prices\]"):
        view = get_trace()
    assert view.cost is None and (view.input_tokens, view.output_tokens) == (1000, 500)
    assert "1000→500" in view._repr_mimebundle_()[0]["text/html"]


def test_a_shown_trace_is_cut_to_its_size_limits(spans, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.llmops]\n[tool.llmops.tracing]\ncapture_content = true\n")
    from llmops_magics.tracing import provider

    provider.reset()
    try:
        with trace("many"):
            for i in range(30):
                with model_call("chat", f"m{i}", provider="openai", inputs=[{"role": "user", "content": "x" * 500}]):
                    pass
        view = get_trace(max_spans=10, max_chars=50)
        text, html = str(view), view._repr_mimebundle_()[0]["text/html"]
        assert "21 more spans not shown" in text and "21 more spans not shown" in html
        assert "x" * 51 not in html and "456 more characters" in html
        assert len(view.spans) == 31
    finally:
        provider.reset()
