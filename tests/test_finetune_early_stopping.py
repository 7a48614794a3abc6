"""Early stopping ends a run when eval loss stops improving, and keeps the best model."""

import pytest

import llmops_magics as lm

pytestmark = pytest.mark.slow


def test_early_stopping_stops_before_max_steps_and_keeps_the_best_eval_loss(qa_dataset):
    job = lm.finetune("qa", max_steps=200, eval_steps=5, early_stopping=1, lr=2e-2)
    result = job.wait(600)
    evals = [e["eval/loss"] for e in job.events if "eval/loss" in e]
    assert result.metrics["global_step"] < 200
    assert result.metrics["eval_loss"] == pytest.approx(min(evals))
