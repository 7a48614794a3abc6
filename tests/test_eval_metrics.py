"""Every built-in metric against small hand-checked cases, and the contract for user metrics."""

from __future__ import annotations

import math

import pytest

from llmops_magics.errors import ValidationError
from llmops_magics.evaluation.metrics import (
    Example,
    MetricCall,
    MetricContext,
    get_metric,
    metric,
    parse_metric_specs,
    run_metric,
)


def ex(output: str, reference: str | None = "Paris", **row) -> Example:
    return Example(
        index=0,
        row=row,
        prompt="Question: capital of France?\nAnswer:",
        output=output,
        reference=reference,
        prompt_tokens=7,
        completion_tokens=2,
        latency_s=0.25,
        finish_reason="stop",
        cached=False,
    )


def score(name: str, examples, arg=None, target=None):
    call = MetricCall(get_metric(name), arg)
    return run_metric(call, examples, MetricContext(target=target, options=None))


def test_exact_match_ignores_surrounding_whitespace():
    assert score("exact_match", [ex(" Paris\n")])["exact_match"] == [1.0]


def test_exact_match_is_case_sensitive():
    assert score("exact_match", [ex("paris")])["exact_match"] == [0.0]


def test_exact_match_skips_examples_without_reference():
    assert score("exact_match", [ex("Paris", reference=None)])["exact_match"] == [None]


def test_contains_finds_the_reference_inside_a_longer_answer_ignoring_case():
    assert score("contains", [ex("It is PARIS, of course."), ex("Lyon")])["contains"] == [1.0, 0.0]


def test_regex_fully_matches_the_pattern_given_after_the_colon():
    assert score("regex", [ex(" 42 "), ex("42 apples")], arg=r"\d+")["regex"] == [1.0, 0.0]


def test_regex_reads_the_pattern_column_when_no_pattern_is_given():
    assert score("regex", [ex("abc", pattern="[a-c]+"), ex("abd", pattern="[a-c]+")])["regex"] == [1.0, 0.0]


def test_regex_without_any_pattern_is_rejected():
    with pytest.raises(ValidationError, match="needs a pattern"):
        score("regex", [ex("abc")])


def test_json_valid_accepts_json_and_rejects_prose():
    values = score("json_valid", [ex(' {"a": [1, 2]} '), ex("{'a': 1}"), ex("null")])["json_valid"]
    assert values == [1.0, 0.0, 1.0]


def test_rouge_l_matches_the_longest_common_subsequence_f_measure():
    # LCS("the cat sat on the mat", "the cat on the mat") = 5 tokens: P = 5/5, R = 5/6, F = 10/11
    values = score("rouge_l", [ex("the cat on the mat", reference="the cat sat on the mat")])["rouge_l"]
    assert values[0] == pytest.approx(10 / 11)


def test_bleu_is_one_for_an_identical_sentence_and_zero_for_a_disjoint_one():
    ref = "the quick brown fox jumps over the lazy dog"
    values = score("bleu", [ex(ref, reference=ref), ex("an entirely different answer here", reference=ref)])["bleu"]
    assert values == [pytest.approx(1.0), pytest.approx(0.0)]


def test_chrf_is_one_for_identical_text_and_lower_for_a_near_miss():
    values = score("chrf", [ex("Kesdor", reference="Kesdor"), ex("Kesdar", reference="Kesdor")])["chrf"]
    assert values[0] == pytest.approx(1.0)
    assert 0.2 < values[1] < 0.9


def test_semantic_similarity_is_one_for_identical_text():
    values = score("semantic_similarity", [ex("The cat sat on the mat.", reference="The cat sat on the mat.")])
    assert values["semantic_similarity"][0] == pytest.approx(1.0, abs=1e-4)


def test_semantic_similarity_ranks_a_paraphrase_above_an_unrelated_sentence():
    ref = "The capital of France is Paris."
    values = score(
        "semantic_similarity",
        [ex("Paris is the capital city of France.", reference=ref), ex("I like green bananas.", reference=ref)],
    )["semantic_similarity"]
    assert values[0] > values[1] + 0.3


@pytest.mark.parametrize("name", ["exact_match", "contains", "rouge_l", "bleu", "chrf", "semantic_similarity"])
@pytest.mark.parametrize("reference", ["", "  \n"])
def test_a_blank_reference_makes_a_reference_metric_not_applicable(name, reference):
    assert score(name, [ex("", reference=reference), ex("  ", reference=reference), ex("Paris", reference=reference)])[
        name
    ] == [None, None, None]


def test_perplexity_of_a_blank_reference_is_not_applicable(eval_ws):
    from llmops_magics.evaluation.targets import resolve_targets

    target = resolve_targets(["model://tiny-gpt2"], eval_ws, ["question", "answer"])[0]
    assert score("perplexity", [ex("whatever", reference="  ")], target=target)["perplexity"] == [None]


def test_latency_reports_each_examples_seconds():
    assert score("latency", [ex("a")]) == {"latency_s": [0.25]}


def test_tokens_reports_completion_and_prompt_counts():
    assert score("tokens", [ex("a")]) == {"completion_tokens": [2.0], "prompt_tokens": [7.0]}


def test_faithfulness_sim_scores_a_supported_answer_above_an_unsupported_one():
    context = "The weather was mild. The capital of Brelia is Tosmar."
    values = score(
        "faithfulness_sim",
        [ex("The capital of Brelia is Tosmar.", context=context), ex("Bananas grow on trees.", context=context)],
    )["faithfulness_sim"]
    assert values[0] > 0.95
    assert values[1] < 0.5


def test_faithfulness_sim_skips_rows_without_context():
    assert score("faithfulness_sim", [ex("Tosmar", context="")])["faithfulness_sim"] == [None]


def test_perplexity_equals_exp_of_the_models_mean_loss_on_the_reference(eval_ws):
    import torch

    from llmops_magics.evaluation.targets import resolve_targets

    target = resolve_targets(["model://tiny-gpt2"], eval_ws, ["question", "answer"])[0]
    example = ex("whatever", reference="Tosmar")
    value = score("perplexity", [example], target=target)["perplexity"][0]

    loaded = target.backend.loaded
    prompt_ids = loaded.tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    answer_ids = loaded.tokenizer(" Tosmar", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + answer_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])
    with torch.inference_mode():
        loss = loaded.model(input_ids=ids, labels=labels).loss.item()
    assert value == pytest.approx(math.exp(loss), rel=1e-4)


def test_perplexity_after_an_empty_prompt_does_not_depend_on_its_batch_neighbours(eval_ws):
    import torch

    from llmops_magics.evaluation.targets import resolve_targets

    backend = resolve_targets(["model://tiny-gpt2"], eval_ws, ["question", "answer"])[0].backend
    alone = backend.log_likelihoods([""], ["Tosmar"])[0]
    batched = backend.log_likelihoods(["", "Question: What is the capital of Brelia?\nAnswer:"], ["Tosmar", " Tosmar"])
    assert batched[0] == pytest.approx(alone, rel=1e-5)

    tok, model = backend.loaded.tokenizer, backend.loaded.model
    ids = tok("Tosmar", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        loss = model(input_ids=torch.tensor([[tok.bos_token_id, *ids]]), labels=torch.tensor([[-100, *ids]])).loss
    assert alone[1] == len(ids) and alone[0] == pytest.approx(-loss.item() * len(ids), rel=1e-4)


def test_a_registered_user_metric_runs_with_the_same_signature():
    @metric(name="starts_upper", needs=("reference",), replace=True)
    def starts_upper(examples, ctx):
        return [float(e.output[:1].isupper()) for e in examples]

    assert score("starts_upper", [ex("Paris"), ex("paris")]) == {"starts_upper": [1.0, 0.0]}


def test_registering_an_existing_metric_name_needs_replace():
    with pytest.raises(ValidationError, match="already registered"):

        @metric(name="exact_match")
        def other(examples, ctx):
            return [0.0 for _ in examples]


def test_a_metric_returning_the_wrong_number_of_values_is_rejected():
    @metric(name="too_short", replace=True)
    def too_short(examples, ctx):
        return []

    with pytest.raises(ValidationError, match="returned 0 value"):
        score("too_short", [ex("a")])


def test_unknown_metric_names_list_the_known_ones():
    with pytest.raises(ValidationError, match=r"unknown metric 'bleurt'.*exact_match"):
        parse_metric_specs("exact_match,bleurt")


def test_metric_specs_split_commas_and_keep_the_argument_after_the_first_colon():
    calls = parse_metric_specs(r"exact_match, regex:^a:b$")
    assert [(c.name, c.arg) for c in calls] == [("exact_match", None), ("regex", "^a:b$")]


def test_a_regex_spec_keeps_the_commas_of_its_pattern():
    calls = parse_metric_specs(r"regex:^\d{1,3}$,exact_match")
    assert [(c.name, c.arg) for c in calls] == [("regex", r"^\d{1,3}$"), ("exact_match", None)]


def test_a_comma_followed_by_a_metric_name_still_separates_metrics_after_a_regex():
    calls = parse_metric_specs(r"exact_match, regex:[a,b]{2, 4}, contains")
    assert [(c.name, c.arg) for c in calls] == [("exact_match", None), ("regex", "[a,b]{2, 4}"), ("contains", None)]
