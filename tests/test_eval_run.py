"""``evaluate()`` end to end on the real tiny model and a real LoRA adapter (CPU)."""

from __future__ import annotations

import json
import warnings

import pytest

import llmops_magics
from llmops_magics import evaluate
from llmops_magics.errors import RegressionError
from llmops_magics.evaluation import ConsistencyWarning, get_eval
from llmops_magics.evaluation.generations import clear_loaded_models

# The test adapter learns the answer format (one word after "Answer:") long before the facts.
ONE_WORD = {"limit": 24, "metrics": [r"regex:\w+", "exact_match"]}
FAST = dict(data="qa-task", limit=8, max_new_tokens=6, metrics=["exact_match", "contains", "latency", "tokens"])


def test_the_package_exposes_evaluate_as_a_function_even_after_the_core_is_imported():
    import llmops_magics.evaluation.runner

    assert llmops_magics.evaluate is evaluate


def test_a_single_target_eval_has_one_row_per_example(eval_ws):
    result = evaluate("model://tiny-gpt2", **FAST).wait()
    assert len(result.df) == 8
    assert set(result.df["target"]) == {"A"}


def test_the_summary_holds_the_mean_of_each_metric(eval_ws):
    result = evaluate("model://tiny-gpt2", **FAST).wait()
    assert result.summary["A"]["exact_match"] == pytest.approx(result.df["exact_match"].mean())
    assert result.summary["A"]["n"] == 8


def test_a_metrics_string_keeps_the_commas_of_a_regex_pattern(eval_ws):
    result = evaluate(
        "model://tiny-gpt2", data="qa-task", limit=2, max_new_tokens=2, metrics=r"regex:^.{0,500}$,tokens"
    ).wait()
    assert list(result.artifact.spec["args"]["metrics"]) == [r"regex:^.{0,500}$", "tokens"]
    assert result.summary["A"]["regex"] == 1.0


def test_the_validation_split_is_evaluated_by_default(eval_ws):
    from llmops_magics.datasets import get_dataset

    result = evaluate("model://tiny-gpt2", **FAST).wait()
    questions = [r["question"] for r in get_dataset("qa-task").records("validation")[:8]]
    assert result.split == "validation"
    assert list(result.df["question"]) == questions


def test_an_adapter_is_prompted_with_its_training_template(eval_ws):
    result = evaluate("adapter://qa-lora", **FAST).wait()
    assert result.df["prompt"].iloc[0].startswith("Question: ") and result.df["prompt"].iloc[0].endswith("\nAnswer:")


def test_a_base_model_compared_with_an_adapter_borrows_the_adapters_template(eval_ws):
    result = evaluate("model://tiny-gpt2", compare="adapter://qa-lora", **FAST).wait()
    prompts = result.df.pivot(index="example", columns="target", values="prompt")
    assert (prompts["A"] == prompts["B"]).all()


def test_a_model_without_a_template_gets_the_question_column_as_is(eval_ws):
    result = evaluate("model://tiny-gpt2", **FAST).wait()
    assert (result.df["prompt"] == result.df["question"]).all()


def test_an_ab_comparison_reports_a_verdict_for_every_primary_metric(eval_ws):
    result = evaluate("model://tiny-gpt2", compare="adapter://qa-lora", **FAST).wait()
    assert [c.metric for c in result.comparisons] == ["exact_match", "contains", "latency_s", "completion_tokens"]
    assert all(v for v in result.verdicts)


def test_two_prompt_versions_on_one_model_are_compared(eval_ws):
    llmops_magics.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    llmops_magics.save_prompt("qa", "Q: {{ question }}\nA:")
    result = evaluate("prompt://qa/1", compare="prompt://qa/2", model="model://tiny-gpt2", **FAST).wait()
    assert [t["prompt"] for t in result.targets] == ["prompt://qa/1", "prompt://qa/2"]
    assert result.df[result.df.target == "B"]["prompt"].iloc[0].startswith("Q: ")


def test_prompt_comparisons_are_named_after_the_prompts(eval_ws):
    llmops_magics.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    llmops_magics.save_prompt("qa", "Q: {{ question }}\nA:")
    result = evaluate("prompt://qa/1", compare="prompt://qa/2", model="model://tiny-gpt2", **FAST).wait()
    assert result.ref == "eval://qa-task-qa.1-vs-qa.2/1"


def test_batched_generation_gives_the_same_answers_as_one_at_a_time(eval_ws):
    batched = evaluate("adapter://qa-lora", batch_size=8, cache=False, **FAST).wait()
    single = evaluate("adapter://qa-lora", batch_size=1, cache=False, **FAST).wait()
    assert list(batched.df["output"]) == list(single.df["output"])


def test_a_rerun_takes_every_answer_from_the_cache(eval_ws):
    evaluate("adapter://qa-lora", **FAST).wait()
    again = evaluate("adapter://qa-lora", **FAST).wait()
    assert again.cache_hits == 8 and again.generated == 0
    assert again.df["cached"].all()


def test_a_fully_cached_rerun_loads_no_model(eval_ws):
    evaluate("adapter://qa-lora", **FAST).wait()
    clear_loaded_models()
    from llmops_magics.evaluation import generations

    evaluate("adapter://qa-lora", **FAST).wait()
    assert len(generations._loaded) == 0


def test_a_cached_rerun_returns_the_same_eval_version(eval_ws):
    first = evaluate("adapter://qa-lora", **FAST).wait()
    again = evaluate("adapter://qa-lora", **FAST).wait()
    assert again.ref == first.ref and again.created is False


def test_changing_a_generation_parameter_misses_the_cache(eval_ws):
    evaluate("adapter://qa-lora", **FAST).wait()
    longer = evaluate("adapter://qa-lora", **{**FAST, "max_new_tokens": 7}).wait()
    assert longer.cache_hits == 0


def test_no_cache_regenerates_every_answer(eval_ws):
    evaluate("adapter://qa-lora", **FAST).wait()
    assert evaluate("adapter://qa-lora", cache=False, **FAST).wait().cache_hits == 0


def test_sampling_without_a_seed_is_not_cached(eval_ws):
    evaluate("adapter://qa-lora", temperature=0.8, **FAST).wait()
    assert evaluate("adapter://qa-lora", temperature=0.8, **FAST).wait().cache_hits == 0


def test_sampling_with_a_seed_is_cached(eval_ws):
    evaluate("adapter://qa-lora", temperature=0.8, seed=3, **FAST).wait()
    assert evaluate("adapter://qa-lora", temperature=0.8, seed=3, **FAST).wait().cache_hits == 8


def test_the_cache_is_a_sqlite_file_under_the_registry_home(eval_ws):
    evaluate("adapter://qa-lora", **FAST).wait()
    assert (eval_ws.registry.home / "cache" / "generations.sqlite").is_file()


def test_the_eval_artifact_has_lineage_edges_to_data_model_adapter_and_prompt(eval_ws):
    llmops_magics.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    result = evaluate("adapter://qa-lora", prompt="prompt://qa/1", **FAST).wait()
    edges = {(e.source, e.relation) for e in eval_ws.registry.upstream(result.ref, depth=1)}
    assert edges == {
        ("dataset://qa-task/1", "data"),
        ("model://tiny-gpt2/1", "model"),
        ("adapter://qa-lora/1", "adapter"),
        ("prompt://qa/1", "prompt"),
    }


def test_the_spec_holds_the_resolved_arguments(eval_ws):
    result = evaluate("qa-lora", **FAST).wait()
    spec = result.artifact.spec["args"]
    assert spec["data"] == "dataset://qa-task/1" and spec["split"] == "validation"
    assert (list(spec["target"]), list(spec["compare"])) == (["adapter://qa-lora/1"], [])
    assert spec["max_new_tokens"] == 6 and spec["limit"] == 8


def test_the_spec_pins_prompt_targets_and_their_model_to_versions(eval_ws):
    llmops_magics.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    result = evaluate("qa", model="tiny-gpt2", **FAST).wait()
    spec = result.artifact.spec["args"]
    assert (list(spec["target"]), spec["model"]) == (["prompt://qa/1"], "model://tiny-gpt2/1")


def test_the_artifact_holds_the_per_example_records(eval_ws):
    result = evaluate("adapter://qa-lora", **FAST).wait()
    folder = eval_ws.registry.checkout(result.artifact)
    rows = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
    assert [r["output"] for r in rows] == list(result.df["output"])


def test_a_recorded_eval_reads_back_with_its_comparisons(eval_ws):
    result = evaluate("model://tiny-gpt2", compare="adapter://qa-lora", **FAST).wait()
    again = get_eval(result.ref)
    assert again.verdicts == result.verdicts
    assert again.df["output"].tolist() == result.df["output"].tolist()


def test_the_result_displays_escaped_html_and_text(eval_ws):
    result = evaluate("model://tiny-gpt2", compare="adapter://qa-lora", **FAST).wait()
    data, meta = result._repr_mimebundle_()
    assert "A: model://tiny-gpt2/1" in data["text/plain"]
    assert "adapter://qa-lora/1" in data["text/html"] and meta["llmops"]["ref"] == result.ref


def test_the_eval_run_is_recorded_with_a_table_and_summary(eval_ws):
    result = evaluate("adapter://qa-lora", **FAST).wait()
    eval_ws.recorder.flush()
    run = next(r for r in eval_ws.memory.runs if r.job_type == "eval")
    assert len(run.tables["examples"][1]) == 8
    assert run.summary_values["exact_match"] == result.summary["A"]["exact_match"]


def test_fail_on_regression_raises_when_b_is_significantly_worse(eval_ws):
    options = {**FAST, **ONE_WORD}
    with pytest.raises(RegressionError, match="B worse on regex"):
        evaluate("adapter://qa-lora", compare="model://tiny-gpt2", fail_on_regression=True, **options).wait()


def test_a_failing_regression_check_still_records_the_eval(eval_ws):
    options = {**FAST, **ONE_WORD}
    with pytest.raises(RegressionError) as info:
        evaluate("adapter://qa-lora", compare="model://tiny-gpt2", fail_on_regression=True, **options).wait()
    assert eval_ws.registry.resolve(info.value.result.ref).metadata["regressions"]


def test_fail_on_regression_passes_when_b_is_better(eval_ws):
    options = {**FAST, **ONE_WORD}
    result = evaluate("model://tiny-gpt2", compare="adapter://qa-lora", fail_on_regression=True, **options).wait()
    assert result.regressions == []


def test_an_adapter_recorded_on_other_base_weights_warns_loudly(eval_ws, eval_models):
    from eval_support import register_models

    register_models(eval_ws, eval_models, adapter_name="drifted", base_digest="0" * 64)
    with pytest.warns(ConsistencyWarning, match="base_digest"):
        evaluate("adapter://drifted", **FAST).wait()


def test_a_consistency_mismatch_is_recorded_in_the_eval(eval_ws, eval_models):
    from eval_support import register_models

    register_models(eval_ws, eval_models, adapter_name="drifted", chat_template="{{ messages }}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConsistencyWarning)
        result = evaluate("adapter://drifted", **FAST).wait()
    assert [m["field"] for m in result.artifact.metadata["consistency"]] == ["chat_template"]


def test_a_consistent_adapter_raises_no_warning(eval_ws):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConsistencyWarning)
        assert evaluate("adapter://qa-lora", **FAST).wait().mismatches == []


def _adapter_on_base_folder(ws, models, folder, name="on-folder"):
    """An adapter registered the way ``%finetune --base PATH`` records it: base named by path and folder digest."""
    from eval_support import register_models

    from llmops_magics.evaluation.targets import resolve_targets
    from llmops_magics.models.loading import tree_digest

    register_models(ws, models, adapter_name=name, base_model=str(folder), base_digest=tree_digest(models.base))
    return resolve_targets([f"adapter://{name}"], ws, ["question", "answer"])[0]


def test_an_adapter_trained_on_a_local_base_folder_matches_that_folder(eval_ws, eval_models):
    from llmops_magics.evaluation.consistency import check_adapter

    target = _adapter_on_base_folder(eval_ws, eval_models, eval_models.base)
    assert check_adapter(target, warn=False) == []


def test_an_adapter_trained_on_a_local_base_folder_warns_when_loaded_on_another(eval_ws, eval_models, tmp_path):
    import shutil

    from llmops_magics.evaluation.consistency import check_adapter
    from llmops_magics.models.loading import tree_digest

    other = shutil.copytree(eval_models.base, tmp_path / "other-base")
    (other / "generation_config.json").write_text('{"do_sample": false}')
    target = _adapter_on_base_folder(eval_ws, eval_models, other)
    (mismatch,) = check_adapter(target, warn=False)
    assert (mismatch.field, mismatch.loaded) == ("base_digest", tree_digest(other))


def test_a_base_folder_digest_is_the_digest_the_registry_gives_it(eval_ws, eval_models):
    from llmops_magics.models.loading import tree_digest

    assert tree_digest(eval_models.base) == eval_ws.base.digest
