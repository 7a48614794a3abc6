"""Bad input fails with a typed error before anything runs, and writes nothing to the registry."""

from __future__ import annotations

import pytest

from llmops_magics import evaluate, save_dataset
from llmops_magics.errors import EndpointError, NotFoundError, ValidationError


def fails_without_writing(ws, error, match, *targets, **options):
    ws.recorder.flush()  # let the mirroring of data saved by the test itself land first
    before = ws.registry.change_counter()
    options.setdefault("data", "qa-task")
    with pytest.raises(error, match=match):
        evaluate(list(targets), **options).wait()
    ws.recorder.flush()
    assert ws.registry.change_counter() == before


def test_an_unknown_metric_is_rejected(eval_ws):
    fails_without_writing(eval_ws, ValidationError, "unknown metric 'accuracy'", "qa-lora", metrics="accuracy")


def test_a_prompt_needing_a_column_the_data_lacks_is_rejected(eval_ws):
    import llmops_magics

    llmops_magics.save_prompt("needs-region", "Where is {{ region }}?")
    fails_without_writing(
        eval_ws, ValidationError, r"needs column\(s\) region", "model://tiny-gpt2", prompt="needs-region"
    )


def test_a_reference_metric_on_data_without_a_reference_column_is_rejected(eval_ws):
    save_dataset("questions-only", [{"question": "Why?"}, {"question": "How?"}])
    fails_without_writing(
        eval_ws, ValidationError, "need a reference column", "model://tiny-gpt2", data="questions-only"
    )


def test_a_named_target_column_that_does_not_exist_is_rejected(eval_ws):
    fails_without_writing(eval_ws, ValidationError, r"no column\(s\) label", "qa-lora", target_column="label")


def test_a_context_metric_on_data_without_context_is_rejected(eval_ws):
    save_dataset("no-context", [{"question": "Why?", "answer": "Because."}])
    fails_without_writing(
        eval_ws, ValidationError, "need a 'context' column", "qa-lora", data="no-context", metrics="faithfulness_sim"
    )


def test_an_empty_split_is_rejected(eval_ws):
    save_dataset("empty-test", {"train": [{"question": "Why?", "answer": "Because."}], "test": []})
    fails_without_writing(eval_ws, ValidationError, "has no rows", "qa-lora", data="empty-test", split="test")


def test_an_unknown_split_is_rejected(eval_ws):
    fails_without_writing(eval_ws, NotFoundError, "no split 'dev'", "qa-lora", split="dev")


def test_an_unknown_dataset_is_rejected(eval_ws):
    fails_without_writing(eval_ws, NotFoundError, "no dataset is named 'nope'", "qa-lora", data="nope")


def test_an_unknown_target_is_rejected(eval_ws):
    fails_without_writing(eval_ws, NotFoundError, "target 'model://gpt-5'", "model://gpt-5")


def test_a_dataset_is_not_a_target(eval_ws):
    fails_without_writing(eval_ws, ValidationError, "is a dataset", "dataset://qa-task")


def test_a_prompt_target_without_a_model_is_rejected(eval_ws):
    import llmops_magics

    llmops_magics.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    fails_without_writing(eval_ws, ValidationError, "say which model runs it", "prompt://qa")


def test_the_judge_without_a_judge_model_is_rejected_before_its_prompt_is_saved(eval_ws):
    fails_without_writing(eval_ws, ValidationError, "needs a judge model", "qa-lora", metrics="judge")


def test_a_non_positive_limit_is_rejected(eval_ws):
    fails_without_writing(eval_ws, ValidationError, "limit must be a positive integer", "qa-lora", limit=0)


def test_perplexity_on_an_endpoint_is_rejected(eval_ws):
    fails_without_writing(eval_ws, ValidationError, "need a local model", "http://127.0.0.1:9", metrics="perplexity")


def test_an_unreachable_endpoint_fails_before_anything_is_written(eval_ws):
    fails_without_writing(eval_ws, EndpointError, "cannot reach endpoint", "http://127.0.0.1:9", metrics="exact_match")


def test_no_target_at_all_is_rejected(eval_ws):
    fails_without_writing(eval_ws, ValidationError, "at least one target")
