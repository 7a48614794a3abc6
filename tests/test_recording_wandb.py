"""Real W&B in offline mode: the run is written to disk and read back with W&B's own inspector."""

import time
import warnings
from pathlib import Path

import pytest
from conftest import read_wandb_run

import llmops_magics as lm
from llmops_magics.errors import RecordingError, ValidationError
from llmops_magics.recording import MemoryRecorder, RecordingWarning, SafeRecorder, WandbOptions, WandbRecorder
from llmops_magics.recording.wandb_recorder import resolve_mode

pytestmark = pytest.mark.wandb


def _artifact_records(run_dir):
    return [r["artifact"] for r in read_wandb_run(run_dir) if r["type"] == "artifact"]


def test_a_prompt_version_becomes_an_offline_wandb_artifact_with_its_aliases(wandb_workspace, wandb_env):
    p = lm.save_prompt("qa", "Answer {{ q }}", aliases=["production"], description="first")
    assert lm.flush(120)
    info = wandb_workspace.registry.resolve(p.ref).wandb
    assert info["mode"] == "offline"
    assert Path(info["run_dir"]).parent == Path(wandb_env) / "wandb"
    [art] = _artifact_records(info["run_dir"])
    assert (art["type"], art["name"]) == ("prompt", "qa")
    assert {"production", "latest", "llmops-v1"} <= set(art["aliases"])
    assert '"llmops_ref":"prompt://qa/1"' in art["metadata"].replace(" ", "")
    assert [f["path"] for f in art["manifest"]["contents"]] == ["prompt.json"]


def test_moving_an_alias_logs_the_version_again_with_the_new_alias(wandb_workspace):
    lm.save_prompt("qa", "Answer {{ q }}")
    lm.tag_prompt("qa/1", "staging")
    assert lm.flush(120)
    info = wandb_workspace.registry.resolve("prompt://qa/1").wandb
    [art] = _artifact_records(info["run_dir"])
    assert "staging" in art["aliases"]


def test_a_run_records_config_metrics_and_summary(wandb_env):
    rec = SafeRecorder(WandbRecorder(WandbOptions(mode="offline", project="tests")), timeout=120)
    run = rec.start_run(job_type="unit", name="metrics", config={"lr": 0.1})
    for step in range(3):
        run.log({"train/loss": 1.0 / (step + 1)}, step=step)
    run.summary({"final": 0.5})
    run.finish()
    assert rec.flush(120)
    records = read_wandb_run(run.info["run_dir"])
    history = [r for r in records if r["type"] == "history"]
    assert len(history) == 3
    config = next(r for r in records if r["type"] == "run")["run"]["config"]
    assert "lr" in str(config)
    assert any("final" in str(r) for r in records if r["type"] == "summary")


def test_online_mode_without_credentials_fails_fast_and_keeps_the_local_record(tmp_path, monkeypatch, wandb_env):
    from llmops_magics.context import workspaces as context

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    ws = context.configure(home=str(tmp_path / ".llmops"), wandb_mode="online")
    try:
        started = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = lm.save_prompt("qa", "Answer {{ q }}")
            assert lm.flush(30)
        assert time.monotonic() - started < 20
        assert any(issubclass(w.category, RecordingWarning) and "credentials" in str(w.message) for w in caught)
        assert ws.registry.resolve(p.ref).wandb == {}
        assert ws.registry.verify().ok
    finally:
        ws.close()
        context._current = None


def test_a_hung_tracker_is_bounded_and_the_save_returns(workspace):
    class Hung(MemoryRecorder):
        def start_run(self, **kw):
            time.sleep(5)
            return super().start_run(**kw)

    rec = SafeRecorder(Hung(), timeout=0.2)
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = rec.start_run(job_type="x")
        assert run.log_artifact(workspace.registry.save("prompt", "p", data=b"x").artifact, None) == {}
    assert time.monotonic() - started < 2
    assert any("longer than" in str(w.message) for w in caught)
    assert rec.flush(10)


def test_auto_mode_follows_wandb_mode_and_is_otherwise_offline(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("auto") == "disabled"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "")
    assert resolve_mode("auto") == "offline"


def test_an_unknown_mode_is_a_validation_error():
    with pytest.raises(ValidationError):
        resolve_mode("sometimes")
    assert issubclass(RecordingError, lm.LLMOpsError)


def test_an_input_that_w_and_b_cannot_find_still_lets_the_output_artifact_be_logged(wandb_workspace):
    """Online, ``use_artifact`` raises for an input never mirrored; offline W&B raises the same way."""
    from llmops_magics.recording.wandb_recorder import WandbRun

    reg = wandb_workspace.registry
    base = reg.save("model", "never-mirrored", data=b"weights").artifact
    out = reg.save("adapter", "qa-lora", data=b"adapter", parents=[(base.ref, "base")]).artifact
    inner = WandbRecorder(WandbOptions(mode="offline", project="tests")).start_run(job_type="unit")
    run = WandbRun(inner._run, "online")  # take the online path on a real (offline) run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = run.log_artifact(out, None, [(base, "base")])
    run.finish()
    assert info["artifact"] == "qa-lora:llmops-v1"
    assert any(issubclass(w.category, RecordingWarning) and "not linked" in str(w.message) for w in caught)
    [art] = _artifact_records(run.info["run_dir"])
    assert (art["type"], art["name"]) == ("adapter", "qa-lora")
