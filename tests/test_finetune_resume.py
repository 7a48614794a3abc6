"""Cancel a real fine-tune mid-run, then resume it from its checkpoint to the same weights."""

import time

import pytest

import llmops_magics as lm
from llmops_magics import JobCancelledError

pytestmark = pytest.mark.slow

OPTIONS = {"max_steps": 30, "save_steps": 1000, "logging_steps": 5}


def cancel_after(job, step):
    while job.progress.get("step", 0) < step and not job.done:
        time.sleep(0.02)
    job.cancel()
    with pytest.raises(JobCancelledError, match="resume with"):
        job.wait(300)


def test_a_cancelled_run_keeps_a_checkpoint_and_resume_finishes_it_with_an_identical_adapter(qa_dataset):
    job = lm.finetune("qa", **OPTIONS)
    cancel_after(job, 3)
    (record,) = list(lm.finetune_runs())
    assert record["status"] == "cancelled" and record["checkpoint"].split("-")[-1] == str(record["step"])
    stopped_at = record["step"]
    assert 3 <= stopped_at < 30

    resumed = lm.finetune("qa", resume=True, **OPTIONS)
    result = resumed.wait(300)
    first = next(e for e in resumed.events if e["type"] == "progress")
    assert (resumed.run_id, first["step"], result.metrics["global_step"]) == (job.run_id, stopped_at, 30)

    straight = lm.finetune("qa", name="qa-straight", **OPTIONS).wait(300)
    assert straight.artifact.digest == result.artifact.digest


def test_resume_without_a_resumable_run_is_a_validation_error(qa_dataset):
    with pytest.raises(lm.ValidationError, match="no cancelled or crashed run of this spec"):
        lm.finetune("qa", resume=True, **OPTIONS)
