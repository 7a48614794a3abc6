"""Spans of an eval: its run, each target, each generation batch, the judge and endpoint requests, linked."""

from __future__ import annotations

import pytest
from eval_support import OpenAIServer

import llmops_magics
from llmops_magics import evaluate, list_traces
from llmops_magics.tracing import conventions as C
from llmops_magics.tracing import trace

pytest_plugins = ["tracing_support"]

FAST = dict(data="qa", limit=4, max_new_tokens=4, metrics=["exact_match", "tokens"], prompt="qa")


@pytest.fixture
def tiny(spans, qa_dataset, tiny_model_dir):
    llmops_magics.register_model(str(tiny_model_dir), name="tiny")
    llmops_magics.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    return spans


def _named(spans, prefix: str) -> list:
    return [s for s in spans.get_finished_spans() if s.name.startswith(prefix)]


def test_an_eval_links_its_run_to_the_eval_artifact_and_its_generations_to_the_prompt(tiny):
    result = evaluate("model://tiny", **FAST).wait()
    (run,) = _named(tiny, "eval ")
    assert run.attributes[C.LLMOPS_ARTIFACT_REF] == result.ref
    (target,) = _named(tiny, "target A")
    assert tiny.parent_of(target) is run
    assert target.attributes[C.LLMOPS_PROMPT_REF] == "prompt://qa/1"
    assert target.attributes[C.LLMOPS_MODEL_REF] == "model://tiny/1"
    calls = _named(tiny, "text_completion tiny")
    assert calls and all(tiny.parent_of(c) is target for c in calls)
    assert all(c.attributes[C.LLMOPS_PROMPT_REF] == "prompt://qa/1" for c in calls)
    assert sum(c.attributes[C.GEN_AI_USAGE_OUTPUT_TOKENS] for c in calls) == sum(
        r["completion_tokens"] for r in result.records
    )
    assert list_traces(artifact=result.ref).ids == [f"{run.context.trace_id:032x}"]
    assert len(list_traces(prompt="qa@latest")) == 1


def test_a_cached_rerun_makes_no_generation_span_and_counts_its_cache_hits(tiny):
    evaluate("model://tiny", **FAST).wait()
    tiny.clear()
    evaluate("model://tiny", **FAST).wait()
    assert _named(tiny, "text_completion") == []
    (target,) = _named(tiny, "target A")
    assert target.attributes[C.LLMOPS_CACHED] == 4


def test_judge_calls_name_the_judge_prompt_not_the_targets(tiny):
    evaluate("model://tiny", **{**FAST, "metrics": ["judge"]}, judge_model="model://tiny", judge_k=1).wait()
    (judge,) = _named(tiny, "judge judge")
    assert judge.attributes[C.LLMOPS_PROMPT_REF] == "prompt://judge-correctness/1"
    judged = [c for c in _named(tiny, "text_completion") if tiny.parent_of(c) is judge]
    assert judged and all(c.attributes[C.LLMOPS_PROMPT_REF] == "prompt://judge-correctness/1" for c in judged)
    assert all(c.attributes[C.GEN_AI_REQUEST_MAX_TOKENS] == 8 for c in judged)


def test_an_eval_started_inside_a_trace_block_is_part_of_that_trace(tiny):
    with trace("experiment") as outer:
        evaluate("model://tiny", **FAST).wait()
    (run,) = _named(tiny, "eval ")
    assert f"{run.context.trace_id:032x}" == outer.trace_id
    assert tiny.parent_of(run).name == "experiment"


def test_endpoint_requests_are_client_spans_under_their_target_with_the_servers_usage(tiny, tiny_model_dir):
    with OpenAIServer(tiny_model_dir) as server:
        result = evaluate(server.url, **FAST, batch_size=2).wait()
    (target,) = _named(tiny, "target A")
    # the test's server runs in this process: its own generate() calls are spans too, internal ones
    calls = [c for c in _named(tiny, "text_completion tiny") if c.kind.name == "CLIENT"]
    assert len(calls) == 4 and all(tiny.parent_of(c) is target for c in calls)
    port = int(server.url.rsplit(":", 1)[1])
    for c in calls:
        assert (c.attributes[C.GEN_AI_PROVIDER_NAME], c.attributes[C.SERVER_PORT]) == ("openai", port)
        assert c.attributes[C.SERVER_ADDRESS] == "127.0.0.1"
    assert sorted(c.attributes[C.GEN_AI_USAGE_INPUT_TOKENS] for c in calls) == sorted(
        r["prompt_tokens"] for r in result.records
    )


def test_the_eval_run_gets_its_spans_as_a_table(tiny, workspace):
    from llmops_magics.tracing.wandb_table import COLUMNS

    result = evaluate("model://tiny", **FAST).wait()
    (run,) = [r for r in workspace.memory.runs if r.job_type == "eval"]
    columns, rows = run.tables["traces"]
    assert tuple(columns) == COLUMNS
    (run_span,) = _named(tiny, "eval ")
    assert {r[0] for r in rows} == {f"{run_span.context.trace_id:032x}"}
    calls = [dict(zip(columns, r, strict=True)) for r in rows if r[columns.index("operation")] == "text_completion"]
    assert calls and all(c["prompt_ref"] == "prompt://qa/1" for c in calls)
    assert sum(c["output_tokens"] for c in calls) == sum(r["completion_tokens"] for r in result.records)
    assert all(c["input"] is None for c in calls)  # content was not captured
