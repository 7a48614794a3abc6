"""Every eval totals the tokens and dollars of its model calls: the targets' answers and the judge's verdicts.

``usage_server`` is a real OpenAI-compatible endpoint on 127.0.0.1 whose usage is known in
advance: a prompt costs as many tokens as it has characters (so rows differ) and every
answer a fixed number. Prices come from ``[tool.llmops.prices]``, so every total below is
computed from the prompts the server received and the prices written, never read back
from the code under test. The local tiny model's totals are checked against its own
tokenizer's counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_wandb_run
from eval_support import ScoringJudge

from llmops_magics import evaluate, save_dataset
from llmops_magics.evaluation.usage import TARGET_KEYS

ROWS = 5


def usage_server(reply: str, completion_tokens: int, prompt_tokens: int | None = None) -> ScoringJudge:
    """An endpoint replying ``reply`` with ``completion_tokens`` and, unless ``prompt_tokens`` is given,
    one prompt token per character of the prompt (``prompts`` keeps every prompt answered)."""
    return ScoringJudge(
        lambda prompt: reply,
        usage=lambda prompt: (len(prompt) if prompt_tokens is None else prompt_tokens, completion_tokens),
    )


def write_prices(folder: Path, table: dict[str, tuple[float, float]]) -> None:
    lines = "".join(f'"{name}" = {{ input = {i}, output = {o} }}\n' for name, (i, o) in table.items())
    (folder / "pyproject.toml").write_text("[tool.llmops.prices]\n" + lines)


@pytest.fixture
def qa(workspace):
    from llmops_magics.models.world import task_examples

    save_dataset("qa-task", task_examples(), validation_fraction=0.25, seed=0, workspace=workspace)
    return workspace


@pytest.fixture
def judged(qa, tmp_path):
    """An endpoint judged by another endpoint, each priced differently: (result, target server, judge server)."""
    with usage_server(" Paris", completion_tokens=3) as target, usage_server(" 4", 2, prompt_tokens=100) as judge:
        write_prices(tmp_path, {target.url: (2.0, 5.0), judge.url: (1.0, 10.0)})
        result = evaluate(target.url, data="qa-task", limit=ROWS, max_new_tokens=4, metrics=["exact_match", "judge"],
                          judge_model=judge.url, judge_k=2).wait()  # fmt: skip
        yield result, target, judge


def test_an_eval_totals_its_answers_tokens_and_cost_without_being_asked(judged):
    result, target, _ = judged
    sent = sum(len(p) for p in target.prompts)
    assert len(target.prompts) == ROWS and sent > 0
    summary = result.summary["A"]
    assert (summary["prompt_tokens_total"], summary["completion_tokens_total"]) == (sent, 3 * ROWS)
    assert summary["cost_usd_total"] == pytest.approx((2.0 * sent + 5.0 * 3 * ROWS) / 1e6)
    assert "prompt_tokens" not in summary and "cost_usd" not in summary  # the per-answer metrics were not asked for


def test_the_judges_calls_are_counted_apart_and_priced_by_the_judge_models_name(judged):
    result, _, judge = judged
    calls = ROWS * 2  # every answer judged k=2 times
    assert len(judge.prompts) == calls
    summary = result.summary["A"]
    assert (summary["judge_prompt_tokens"], summary["judge_completion_tokens"]) == (100 * calls, 2 * calls)
    assert summary["judge_cost_usd"] == pytest.approx((1.0 * 100 * calls + 10.0 * 2 * calls) / 1e6)


def test_the_totals_are_stored_shown_and_in_the_run_summary(judged, qa):
    from llmops_magics.evaluation import get_eval

    result, target, _ = judged
    sent = sum(len(p) for p in target.prompts)
    stored = get_eval(result.ref, workspace=qa).summary["A"]
    assert {k: stored[k] for k in ("prompt_tokens_total", "judge_prompt_tokens")} == {
        "prompt_tokens_total": sent,
        "judge_prompt_tokens": 100 * ROWS * 2,
    }
    line = f"A tokens: {sent:,} in + {3 * ROWS} out tokens, $"
    assert line in str(result) and "judge 1,000 in + 20 out, $0.0012" in str(result)
    assert f"{sent:,} in + {3 * ROWS} out tokens" in result._repr_mimebundle_()[0]["text/html"]
    (run,) = [r for r in qa.memory.runs if r.job_type == "eval"]
    assert run.summary_values["prompt_tokens_total"] == sent
    assert run.summary_values["judge_cost_usd"] == pytest.approx(1200 / 1e6)


def test_a_rerun_with_the_same_answers_reports_the_same_totals_and_is_the_same_version(judged, qa):
    result, target, judge = judged
    again = evaluate(target.url, data="qa-task", limit=ROWS, max_new_tokens=4, metrics=["exact_match", "judge"],
                     judge_model=judge.url, judge_k=2, workspace=qa).wait()  # fmt: skip
    assert len(target.prompts) == 2 * ROWS  # an unknown endpoint's answers are never cached: asked again
    assert again.created is False and again.ref == result.ref
    assert again.summary["A"] == result.summary["A"]


def test_an_unpriced_model_costs_nothing_but_its_tokens_are_still_counted(qa):
    with usage_server(" Paris", completion_tokens=7) as target:
        summary = evaluate(target.url, data="qa-task", limit=3, max_new_tokens=4, metrics="exact_match").wait().summary
    assert summary["A"]["completion_tokens_total"] == 21
    assert summary["A"]["cost_usd_total"] == 0.0 and "judge_prompt_tokens" not in summary["A"]


def test_a_local_models_totals_are_its_tokenizers_counts(eval_ws, tmp_path):
    from transformers import AutoTokenizer

    from llmops_magics.models.leaderboard import price_of

    write_prices(tmp_path, {eval_ws.base.name: (3.0, 7.0)})
    result = evaluate(eval_ws.base.ref, data="qa-task", limit=4, max_new_tokens=4,
                      metrics=["exact_match", "tokens", "cost"]).wait()  # fmt: skip
    tok = AutoTokenizer.from_pretrained(eval_ws.registry.checkout(eval_ws.base))
    prompts = [len(tok(r["prompt"], add_special_tokens=False)["input_ids"]) for r in result.records]
    summary = result.summary["A"]
    assert summary["prompt_tokens_total"] == sum(prompts)
    assert summary["completion_tokens_total"] == sum(r["completion_tokens"] for r in result.records)
    assert summary["cost_usd_total"] == pytest.approx(sum(r["cost_usd"] for r in result.records))
    assert price_of(eval_ws.base.ref) == {"input": 3.0, "output": 7.0} and summary["cost_usd_total"] > 0
    cached = evaluate(eval_ws.base.ref, data="qa-task", limit=4, max_new_tokens=4, metrics="exact_match").wait()
    assert cached.cache_hits == 4  # a cached answer keeps the tokens of the call that made it
    assert {k: cached.summary["A"][k] for k in TARGET_KEYS} == {k: summary[k] for k in TARGET_KEYS}


@pytest.mark.wandb
def test_each_targets_totals_are_in_the_offline_wandb_run(wandb_workspace, tmp_path):
    from llmops_magics.models.world import task_examples

    save_dataset("qa-task", task_examples(), validation_fraction=0.25, seed=0, workspace=wandb_workspace)
    with usage_server(" Paris", completion_tokens=3) as a, usage_server(" Rome", completion_tokens=5) as b:
        write_prices(tmp_path, {a.url: (2.0, 5.0), b.url: (4.0, 1.0)})
        result = evaluate(a.url, compare=[b.url], data="qa-task", limit=ROWS, max_new_tokens=4,
                          metrics="exact_match").wait()  # fmt: skip
    assert wandb_workspace.recorder.flush(120)
    summary: dict = {}
    for r in read_wandb_run(Path(result.wandb["run_dir"])):
        if r["type"] == "summary":
            summary.update(r["summary"].get("update", {}))
    sent_a, sent_b = sum(map(len, a.prompts)), sum(map(len, b.prompts))
    assert (summary["A/prompt_tokens_total"], summary["A/completion_tokens_total"]) == (sent_a, 3 * ROWS)
    assert (summary["B/prompt_tokens_total"], summary["B/completion_tokens_total"]) == (sent_b, 5 * ROWS)
    assert summary["A/cost_usd_total"] == pytest.approx((2.0 * sent_a + 5.0 * 3 * ROWS) / 1e6)
    assert summary["B/cost_usd_total"] == pytest.approx((4.0 * sent_b + 1.0 * 5 * ROWS) / 1e6)


SAMPLES = 3


def test_the_answers_sampled_for_consistency_are_in_the_totals_and_shown_apart(qa, tmp_path):
    """selfcheck_* asks the target SAMPLES more times per row: those calls are paid for like its answers."""
    with usage_server(" Paris", completion_tokens=3) as target:
        write_prices(tmp_path, {target.url: (2.0, 5.0)})
        result = evaluate(target.url, data="qa-task", limit=ROWS, max_new_tokens=4, samples=SAMPLES,
                          metrics=["exact_match", "selfcheck_ngram"]).wait()  # fmt: skip
    assert len(target.prompts) == ROWS * (1 + SAMPLES)  # each row answered once, then sampled SAMPLES times
    answered = sum(len(r["prompt"]) for r in result.records)
    sent = sum(len(p) for p in target.prompts)
    assert sent == (1 + SAMPLES) * answered
    summary = result.summary["A"]
    assert (summary["prompt_tokens_total"], summary["completion_tokens_total"]) == (sent, 3 * ROWS * (1 + SAMPLES))
    assert summary["cost_usd_total"] == pytest.approx((2.0 * sent + 5.0 * 3 * ROWS * (1 + SAMPLES)) / 1e6)
    sampled = (SAMPLES * answered, 3 * ROWS * SAMPLES)
    assert (summary["consistency_prompt_tokens"], summary["consistency_completion_tokens"]) == sampled
    assert summary["consistency_cost_usd"] == pytest.approx((2.0 * sampled[0] + 5.0 * sampled[1]) / 1e6)
    assert summary["consistency_samples"] == ROWS * SAMPLES
    assert f"{sent:,} in + " in str(result) and f"of which consistency samples {sampled[0]:,} in" in str(result)
    assert qa.recorder.flush(60)  # the run summary is written by the recorder's worker
    (run,) = [r for r in qa.memory.runs if r.job_type == "eval"]
    assert run.summary_values["cost_usd_total"] == pytest.approx(summary["cost_usd_total"])


def test_a_malformed_price_table_costs_the_dollars_only_and_is_named_once(qa, tmp_path, monkeypatch):
    from llmops_magics.evaluation import usage

    monkeypatch.setattr(usage, "_WARNED", set())
    with usage_server(" Paris", completion_tokens=3) as target, usage_server(" 4", 2, prompt_tokens=100) as judge:
        (tmp_path / "pyproject.toml").write_text(f'[tool.llmops.prices]\n"{target.url}" = "cheap"\n')
        with pytest.warns(usage.PriceWarning) as caught:
            result = evaluate(target.url, data="qa-task", limit=ROWS, max_new_tokens=4, samples=2, judge_k=1,
                              metrics=["exact_match", "cost", "judge", "selfcheck_ngram"],
                              judge_model=judge.url).wait()  # fmt: skip
    named = [w for w in caught if issubclass(w.category, usage.PriceWarning)]
    assert len(named) == 1 and f"[tool.llmops.prices] {target.url} must be" in str(named[0].message)
    summary = result.summary["A"]
    sent = sum(len(p) for p in target.prompts)
    assert (summary["prompt_tokens_total"], summary["completion_tokens_total"]) == (sent, 3 * ROWS * 3)
    assert summary["judge_prompt_tokens"] == 100 * ROWS and summary["consistency_completion_tokens"] == 3 * ROWS * 2
    costs = ("cost_usd_total", "judge_cost_usd", "consistency_cost_usd", "cost_usd")
    assert {k: summary.get(k) for k in costs} == dict.fromkeys(costs)
    assert all(r["cost_usd"] is None for r in result.records) and "exact_match" in summary
