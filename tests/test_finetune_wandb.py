"""A fine-tune in real (offline) W&B: config, train/eval losses, summary, the adapter artifact."""

import pytest
from conftest import read_wandb_run

import llmops_magics as lm
from llmops_magics.models import task_examples

pytestmark = [pytest.mark.slow, pytest.mark.wandb]


def test_the_wandb_run_has_the_config_the_losses_and_the_adapter_with_its_lineage(wandb_workspace, tiny_model_dir):
    lm.save_dataset("qa", task_examples(), validation_fraction=0.2)
    result = lm.finetune("qa", max_steps=6, eval_steps=3, logging_steps=2, aliases=["candidate"]).wait(600)
    assert lm.flush(120)
    art = lm.registry().resolve(result.ref)
    assert art.wandb["run_id"] == result.wandb_run_id == art.metadata["wandb_run_id"]
    records = read_wandb_run(art.wandb["run_dir"])
    (config,) = [r["run"]["config"]["update"] for r in records if r["type"] == "run"]
    assert (config["max_steps"], config["method"], config["data"]) == (6, "lora", "dataset://qa/1")
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert [h["_step"] for h in history if "train/loss" in h] == [2, 4, 6]
    assert [h["_step"] for h in history if "eval/loss" in h] == [3, 6]
    summary = {k: v for r in records if r["type"] == "summary" for k, v in r["summary"]["update"].items()}
    assert summary["artifact"] == result.ref and summary["final/global_step"] == 6
    (adapter,) = [r["artifact"] for r in records if r["type"] == "artifact"]
    assert (adapter["type"], adapter["name"]) == ("adapter", "qa-lora")
    assert {"candidate", "llmops-v1"} <= set(adapter["aliases"])
    lineage = [r["config"]["update"]["llmops_lineage"] for r in records if r["type"] == "config"][-1]
    assert {(e["source"], e["relation"]) for e in lineage} == {
        ("model://tiny-gpt2/1", "base"),
        ("dataset://qa/1", "train_data"),
        ("dataset://qa/1", "eval_data"),
    }
