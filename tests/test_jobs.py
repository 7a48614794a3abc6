"""Background jobs: a handle with status, wait, cancel, result, error and replayable progress events."""

import threading
import time

import pytest

from llmops_magics import Job, JobCancelledError, JobError, JobTimeoutError


def counting(steps: int, pause: float = 0.0, fail_at: int | None = None):
    def target(ctx):
        for step in range(1, steps + 1):
            if ctx.cancelled:
                raise JobCancelledError(f"stopped at step {step - 1}")
            if step == fail_at:
                raise RuntimeError("boom")
            ctx.emit({"type": "progress", "step": step, "max_steps": steps})
            time.sleep(pause)
        return steps

    return target


def test_a_job_returns_at_once_and_wait_gives_its_result():
    job = Job(counting(3, pause=0.05), name="count").start()
    assert job.status == "running"
    assert job.wait(10) == 3
    assert (job.status, job.result, job.progress["step"]) == ("succeeded", 3, 3)


def test_a_failure_is_a_job_error_that_keeps_the_original_error():
    job = Job(counting(5, fail_at=2), name="count").start()
    with pytest.raises(JobError, match="failed: RuntimeError: boom") as caught:
        job.wait(10)
    assert job.status == "failed"
    assert isinstance(job.error, RuntimeError) and isinstance(caught.value.__cause__, RuntimeError)
    assert "boom" in job.traceback


def test_cancel_stops_a_cooperative_job_and_its_result_says_so():
    job = Job(counting(1000, pause=0.01), name="count").start()
    while job.progress.get("step", 0) < 3:
        time.sleep(0.01)
    assert job.cancel(wait=10)
    assert job.status == "cancelled"
    with pytest.raises(JobCancelledError, match="stopped at step"):
        _ = job.result


def test_wait_with_a_timeout_raises_and_the_job_goes_on():
    release = threading.Event()
    job = Job(lambda ctx: release.wait(10), name="blocked").start()
    with pytest.raises(JobTimeoutError, match=r"still running after 0\.05s"):
        job.wait(0.05)
    release.set()
    assert job.wait(10) is True


def test_the_result_of_a_running_job_is_an_error_not_a_wait():
    release = threading.Event()
    job = Job(lambda ctx: release.wait(10), name="blocked").start()
    with pytest.raises(JobError, match="is running"):
        _ = job.result
    release.set()
    job.wait(10)


def test_a_late_listener_first_receives_the_events_it_missed():
    job = Job(counting(4), name="count").start()
    job.wait(10)
    seen = []
    job.add_listener(lambda j, e: seen.append((e["type"], e.get("step") or e.get("status"))))
    assert seen == [("status", "running"), *[("progress", i) for i in range(1, 5)], ("status", "succeeded")]


def test_a_listener_that_raises_does_not_break_the_job():
    job = Job(counting(3), name="count")
    job.add_listener(lambda j, e: 1 / 0)
    assert job.start().wait(10) == 3


def test_a_job_displays_as_text_when_no_view_is_installed():
    job = Job(counting(2), name="count").start()
    job.wait(10)
    data = job._repr_mimebundle_()
    assert "status: succeeded" in data["text/plain"] and "<table" in data["text/html"]
