"""The live job panel: progress, ETA, loss curve and a cancel button, redrawn a few times a second."""

import threading
import time

from llmops_magics import Job, JobCancelledError
from llmops_magics.adapters.widgets.job_panel import JobPanel, format_seconds, loss_curve_svg
from llmops_magics.adapters.widgets.throttle import Throttle


def training_like(steps: int, pause: float, release: threading.Event | None = None):
    def target(ctx):
        for step in range(1, steps + 1):
            if ctx.cancelled:
                raise JobCancelledError(f"cancelled at step {step - 1}")
            ctx.emit({"type": "progress", "step": step, "max_steps": steps, "eta_seconds": 65.0, "epoch": step / 10})
            if step % 5 == 0:
                ctx.emit({"type": "log", "step": step, "train/loss": 3.0 / step})
            time.sleep(pause)
        if release is not None:
            release.wait(10)
        return "adapter://qa-lora/1"

    return target


def test_the_panel_shows_progress_eta_and_the_latest_loss():
    release = threading.Event()
    job = Job(training_like(20, 0.0, release), name="qa-lora", kind="finetune").start()
    while job.progress.get("step") != 20:
        time.sleep(0.01)
    panel = JobPanel(job, interval=0.01)
    assert (panel.bar.get_state()["value"], panel.bar.get_state()["max"]) == (20, 20)
    assert "ETA 1:05" in panel.stats.value and "train loss 0.1500" in panel.stats.value
    assert "<polyline" in panel.curve.value
    release.set()
    job.wait(10)
    panel.close()


def test_the_final_state_is_drawn_at_once_with_the_result():
    job = Job(training_like(5, 0.0), name="qa-lora", kind="finetune")
    panel = JobPanel(job, interval=60)
    job.start().wait(10)
    assert "succeeded" in panel.title.value and "adapter://qa-lora/1" in panel.footer.value
    assert panel.cancel_button.disabled
    panel.close()


def test_clicking_cancel_cancels_the_job():
    job = Job(training_like(10_000, 0.005), name="qa-lora", kind="finetune").start()
    panel = JobPanel(job, interval=0.05)
    panel.cancel_button.click()
    job._done.wait(10)
    assert job.status == "cancelled"
    assert panel.cancel_button.disabled and "cancelled" in panel.title.value
    panel.close()


def test_hundreds_of_events_a_second_cause_only_a_few_redraws():
    job = Job(training_like(400, 0.0025), name="qa-lora", kind="finetune")
    panel = JobPanel(job, interval=0.25)
    started = time.perf_counter()
    job.start().wait(30)
    elapsed = time.perf_counter() - started
    assert len(job.events) > 400
    assert panel.renders <= elapsed / 0.25 + 3
    panel.close()


def test_a_closed_panel_stops_listening_to_its_job():
    release = threading.Event()
    job = Job(training_like(3, 0.0, release), name="qa-lora", kind="finetune")
    panel = JobPanel(job, interval=0.0)
    panel.close()
    renders = panel.renders
    job.start()
    release.set()
    job.wait(10)
    assert panel.renders == renders


def test_the_throttle_always_delivers_the_last_call():
    calls = []
    throttle = Throttle(lambda: calls.append(time.perf_counter()), interval=0.1)
    for _ in range(50):
        throttle()
    time.sleep(0.3)
    assert len(calls) == 2


def test_the_loss_curve_has_one_line_per_series_and_no_markup_from_outside():
    svg = loss_curve_svg({"train": [(1, 2.0), (2, 1.0)], "eval": [(2, 1.5)]}, max_step=10)
    assert svg.count("<polyline") == 2 and svg.startswith("<svg")
    assert format_seconds(3725) == "1:02:05" and format_seconds(None) == "-"


def test_a_job_displays_as_its_panel_once_the_extension_is_loaded(ip):
    job = Job(training_like(2, 0.0), name="qa-lora", kind="finetune").start()
    job.wait(10)
    data = job._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
