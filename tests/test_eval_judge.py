"""LLM-as-judge mechanics: score parsing, k samples, variance, counted failures, registered prompts.

Most tests judge with the tiny model, whose scores mean nothing; they check that it is
asked k times per example, that its replies are parsed or counted as failures, and that
the judge prompt and model are recorded. ``ScriptedJudge`` is a real HTTP endpoint that
replies fixed scores, so the per-example mean, variance and failures can be checked exactly.
"""

from __future__ import annotations

import pytest
from eval_support import OpenAIServer, shared_workspace

import llmops_magics
from llmops_magics import evaluate
from llmops_magics.evaluation.judge import aggregate_scores, parse_score

JUDGED = dict(data="qa-task", limit=4, max_new_tokens=4, judge_model="model://tiny-gpt2", judge_k=3)


@pytest.fixture(scope="module")
def judged(eval_models, tmp_path_factory):
    """One judged eval, shared by the tests that only read it."""
    with shared_workspace(tmp_path_factory.mktemp("judged") / ".llmops", eval_models) as ws:
        yield ws, evaluate("adapter://qa-lora", metrics="judge", workspace=ws, **JUDGED).wait()


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        (" 4", 0.75),
        ("Score: 5/5", 1.0),
        ("4 out of 5", 0.75),
        ("Score: 4 (it misses 2 of 3 details)", 0.75),
        ("1. Wrong.", 0.0),
        ("3.5", 0.625),
        ("none", None),
        (" 9", None),
        ("", None),
    ],
)
def test_a_plain_or_labelled_number_on_the_scale_is_the_score(reply, score):
    assert parse_score(reply, 1, 5) == score


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("1-5: 3", 0.5),
        ("On a scale of 1 to 5 I give it a 2.", 0.25),
        ("Initial score: 2. Final rating: 4", 0.75),
        ("It has 2 errors, so 3", 0.5),
    ],
)
def test_a_labelled_or_last_number_wins_over_an_echoed_scale(reply, score):
    assert parse_score(reply, 1, 5) == score


def test_k_scores_aggregate_to_mean_sample_variance_and_failures():
    mean, var, failures = aggregate_scores([0.25, None, 0.75])
    assert (mean, var, failures) == (0.5, 0.125, 1)


def test_a_single_valid_score_has_no_variance():
    assert aggregate_scores([0.5, None, None]) == (0.5, None, 2)


def test_the_judge_is_asked_k_times_per_example(judged):
    _, result = judged
    assert result.summary["A"]["judge_calls"] == 4 * 3


def test_every_judge_sample_is_either_a_score_or_a_counted_failure(judged):
    _, result = judged
    failures = result.df["judge_failures"]
    assert failures.between(0, 3).all()
    assert result.summary["A"]["judge_parse_failures"] == failures.sum()


def test_an_example_with_no_parseable_judge_reply_has_no_judge_score(judged):
    _, result = judged
    failed = result.df[result.df["judge_failures"] == 3]
    assert failed["judge"].isna().all()


def test_the_judge_reports_a_variance_column(judged):
    _, result = judged
    assert {"judge", "judge_var", "judge_failures"} <= set(result.df.columns)


def test_each_judge_sample_of_an_example_has_its_own_seed(eval_ws):
    evaluate("adapter://qa-lora", metrics="judge", **JUDGED).wait()
    assert _cache_entries(eval_ws) == 4 + 4 * 3  # 4 answers, then 4 examples x 3 seeds of judge replies


def test_a_rerun_takes_the_judge_replies_from_the_cache(eval_ws):
    first = evaluate("adapter://qa-lora", metrics="judge", **JUDGED).wait()
    entries = _cache_entries(eval_ws)
    again = evaluate("adapter://qa-lora", metrics="judge", **JUDGED).wait()
    assert _cache_entries(eval_ws) == entries
    assert again.df["judge_failures"].tolist() == first.df["judge_failures"].tolist()


def _cache_entries(ws) -> int:
    import sqlite3

    with sqlite3.connect(ws.registry.home / "cache" / "generations.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]


def test_the_default_judge_prompt_is_a_registered_prompt_version(judged):
    ws, _ = judged
    prompt = llmops_magics.get_prompt("judge-correctness", workspace=ws)
    assert {"question", "answer", "reference"} <= set(prompt.variables)


def test_the_eval_links_to_the_judge_prompt_and_the_judge_model(judged):
    ws, result = judged
    edges = {(e.source, e.relation) for e in ws.registry.upstream(result.ref, depth=1)}
    assert {("prompt://judge-correctness/1", "judge_prompt"), ("model://tiny-gpt2/1", "judge_model")} <= edges


def test_a_custom_judge_prompt_is_rendered_with_the_candidate_answer(eval_ws):
    llmops_magics.save_prompt("strict", "Is '{{ answer }}' right for '{{ question }}'? Score 1-5:")
    result = evaluate("adapter://qa-lora", metrics="judge", judge_prompt="strict", **JUDGED).wait()
    assert result.artifact.spec["args"]["judge_prompt"] == "prompt://strict/1"
    assert any(e.source == "prompt://strict/1" for e in eval_ws.registry.upstream(result.ref, depth=1))


def test_a_judge_prompt_with_an_empty_scale_is_rejected_before_anything_runs(eval_ws):
    from llmops_magics.errors import ValidationError

    llmops_magics.save_prompt("flat", "Rate '{{ answer }}':", params={"min_score": 3, "max_score": 3})
    with pytest.raises(ValidationError, match="min_score must be below max_score, found 3 and 3"):
        evaluate("adapter://qa-lora", metrics="judge", judge_prompt="flat", **JUDGED).wait()
    assert not eval_ws.registry.names("eval")


def test_faithfulness_judge_skips_rows_without_context(eval_ws):
    from llmops_magics import save_dataset

    rows = [
        {
            "question": "What is the capital of Brelia?",
            "answer": "Tosmar",
            "context": "The capital of Brelia is Tosmar.",
        },
        {"question": "What is the capital of Kor?", "answer": "Dun", "context": ""},
    ]
    save_dataset("with-context", rows)
    options = {**JUDGED, "data": "with-context"}
    result = evaluate("adapter://qa-lora", metrics="faithfulness_judge", **options).wait()
    assert result.summary["A"]["faithfulness_judge_calls"] == 1 * 3
    assert result.df["faithfulness_judge_failures"].isna().tolist() == [False, True]


class ScriptedJudge(OpenAIServer):
    """An endpoint judge whose reply depends only on the question judged and the sample's seed."""

    def __init__(self, model_path, replies: dict[str, list[str]]) -> None:
        super().__init__(model_path)
        self.replies = replies

    def complete(self, prompt, body):
        question = next(q for q in self.replies if f"Question: {q}\n" in prompt)
        return self.replies[question][body["seed"]], 10, 1, "stop"


def test_an_endpoint_judges_scores_give_the_exact_mean_variance_and_failures(eval_ws, eval_models):
    from llmops_magics.datasets import get_dataset

    questions = [r["question"] for r in get_dataset("qa-task").records("validation")[:3]]
    script = {
        questions[0]: ["4", "2", "4"],  # 0.75, 0.25, 0.75
        questions[1]: ["Score: 5", "5", "I cannot tell."],  # 1.0, 1.0 and one failure
        questions[2]: ["2", "2", "1"],  # 0.25, 0.25, 0.0
    }
    with ScriptedJudge(eval_models.base, script) as judge:
        result = evaluate(
            "model://tiny-gpt2", **{**JUDGED, "limit": 3, "judge_model": judge.url}, metrics="judge"
        ).wait()
    df = result.df
    assert df["judge"].tolist() == pytest.approx([7 / 12, 1.0, 1 / 6])
    assert df["judge_var"].tolist() == pytest.approx([1 / 12, 0.0, 1 / 48])
    assert df["judge_failures"].tolist() == [0.0, 1.0, 0.0]
    assert result.summary["A"]["judge"] == pytest.approx((7 / 12 + 1.0 + 1 / 6) / 3)
    assert (result.summary["A"]["judge_parse_failures"], result.summary["A"]["judge_calls"]) == (1, 9)


def test_the_project_judge_model_is_used_when_an_eval_names_none(eval_ws, ip):
    ip.run_line_magic("config", "LLMOps.judge_model = 'model://tiny-gpt2'")
    ws = llmops_magics.workspace()
    assert ws.settings.judge_model == "model://tiny-gpt2"
    run = {**JUDGED, "judge_model": None, "limit": 2, "judge_k": 1}
    result = evaluate("adapter://qa-lora", metrics="judge", workspace=ws, **run).wait()
    stored = ws.registry.resolve(result.ref).spec["args"]
    assert stored["judge_model"] == "model://tiny-gpt2/1"  # pinned, so a replay judges with the same version
    assert ("model://tiny-gpt2/1", "judge_model") in {(e.source, e.relation) for e in ws.registry.upstream(result.ref)}
