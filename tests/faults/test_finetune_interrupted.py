"""A kernel killed while its fine-tune job trains: the run is not left "running" forever, and
``resume`` continues it from the last checkpoint to the step it was asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import llmops_magics as lm

pytestmark = [pytest.mark.faults, pytest.mark.slow]

OPTIONS = {"max_steps": 40, "save_steps": 2, "logging_steps": 5}

KERNEL = textwrap.dedent(
    f"""
    import llmops_magics as lm
    job = lm.finetune("qa", **{OPTIONS!r})
    print(job.run_id, flush=True)
    job.wait(600)
    """
)


def test_a_run_whose_kernel_was_killed_is_marked_interrupted_and_resume_continues(qa_dataset, workspace):
    env = {**os.environ, "LLMOPS_HOME": str(workspace.registry.home), "LLMOPS_WANDB_MODE": "disabled"}
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL], env=env, stdout=subprocess.PIPE, text=True)
    run_id = kernel.stdout.readline().strip()
    assert run_id.startswith("ft-"), "the child kernel did not start a run"
    deadline = time.time() + 300
    while time.time() < deadline:
        record = workspace.registry.get_state("finetune", run_id) or {}
        if record.get("status") == "running":
            checkpoints = list((workspace.registry.home / "runs" / run_id / "checkpoints").glob("checkpoint-*"))
            if len(checkpoints) >= 2:
                break
        assert kernel.poll() is None, "the child kernel ended before it could be killed"
        time.sleep(0.05)
    else:
        pytest.fail("no checkpoint within 300 s")
    os.kill(kernel.pid, signal.SIGKILL)
    kernel.wait(30)

    (record,) = [r for r in lm.finetune_runs() if r["run_id"] == run_id]
    assert record["status"] == "interrupted", record
    assert f"pid {kernel.pid}" in record["error"] and record["checkpoint"]
    stopped_at = int(record["checkpoint"].rsplit("-", 1)[1])
    assert 2 <= stopped_at < OPTIONS["max_steps"]

    resumed = lm.finetune("qa", resume=True, **OPTIONS)
    result = resumed.wait(600)
    first = next(e for e in resumed.events if e["type"] == "progress")
    assert resumed.run_id == run_id and first["step"] >= stopped_at
    assert result.metrics["global_step"] == OPTIONS["max_steps"]
    (record,) = [r for r in lm.finetune_runs() if r["run_id"] == run_id]
    assert record["status"] == "succeeded"
