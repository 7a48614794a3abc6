"""An eval is a real W&B run (offline): config, a table of examples, summary metrics, the eval artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_wandb_run
from eval_support import shared_workspace

from llmops_magics import evaluate

pytestmark = pytest.mark.wandb


@pytest.fixture(scope="module")
def recorded(eval_models, tmp_path_factory):
    """One A/B eval recorded to offline W&B, read back with W&B's own inspector."""
    tmp = tmp_path_factory.mktemp("eval-wandb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
            (tmp / var).mkdir()
            mp.setenv(var, str(tmp / var))
        with shared_workspace(tmp / ".llmops", eval_models, wandb_mode="offline", wandb_project="tests") as ws:
            result = evaluate(
                "model://tiny-gpt2",
                compare="adapter://qa-lora",
                data="qa-task",
                limit=6,
                max_new_tokens=4,
                metrics=["exact_match", "tokens"],
                workspace=ws,
            ).wait()
            assert ws.recorder.flush(120)
            run_dir = Path(result.wandb["run_dir"])
            records = read_wandb_run(run_dir)
    return result, run_dir, records


def _summary(records) -> dict:
    out: dict = {}
    for r in records:
        if r["type"] == "summary":
            out.update(r["summary"].get("update", {}))
    return out


def test_the_run_is_an_eval_job_named_after_the_artifact(recorded):
    result, _, records = recorded
    run = next(r["run"] for r in records if r["type"] == "run")
    assert (run["job_type"], run["display_name"]) == ("eval", result.artifact.name)


def test_the_run_config_holds_the_eval_spec(recorded):
    _, _, records = recorded
    config = next(r["run"]["config"]["update"] for r in records if r["type"] == "run")
    assert (config["op"], config["args"]["data"]) == ("eval", "dataset://qa-task/1")
    assert config["args"]["target"] + config["args"]["compare"] == ["model://tiny-gpt2/1", "adapter://qa-lora/1"]


def test_the_summary_holds_each_targets_means_and_the_delta(recorded):
    result, _, records = recorded
    summary = _summary(records)
    assert summary["A/exact_match"] == result.summary["A"]["exact_match"]
    assert summary["B-A/exact_match"] == pytest.approx(result.comparisons[0].delta)


def test_the_examples_table_has_a_row_per_example_and_target(recorded):
    _, run_dir, _ = recorded
    (table,) = (run_dir / "files" / "media" / "table").glob("examples_*.table.json")
    data = json.loads(table.read_text())
    assert len(data["data"]) == 12
    assert {"output", "reference", "exact_match"} <= set(data["columns"])


def test_the_eval_artifact_is_logged_with_its_lineage_in_the_config(recorded):
    result, _, records = recorded
    artifact = next(r["artifact"] for r in records if r["type"] == "artifact" and r["artifact"]["type"] == "eval")
    assert artifact["name"] == result.artifact.name
    lineage = [
        r["config"]["update"]["llmops_lineage"]
        for r in records
        if r["type"] == "config" and "llmops_lineage" in r["config"].get("update", {})
    ]
    assert {e["relation"] for e in lineage[-1]} == {"data", "model", "adapter"}
