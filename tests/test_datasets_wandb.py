"""A dataset version in real (offline) W&B: an artifact of type dataset carrying a wandb.Table preview."""

import pytest
from conftest import read_wandb_run

from llmops_magics import save_dataset

pytestmark = pytest.mark.wandb


def test_a_dataset_is_a_wandb_dataset_artifact_with_a_preview_table(wandb_workspace):
    rows = [{"question": f"q{i}", "answer": f"a{i}", "tags": ["x", i]} for i in range(12)]
    v = save_dataset("qa", rows, validation_fraction=0.25, aliases=["golden"])
    assert wandb_workspace.recorder.flush(120)
    info = wandb_workspace.registry.resolve(v.ref).wandb
    records = read_wandb_run(info["run_dir"])
    (artifact,) = [r["artifact"] for r in records if r["type"] == "artifact" and r["artifact"]["type"] == "dataset"]
    entries = {e["path"] for e in artifact["manifest"]["contents"]}
    assert (artifact["type"], artifact["name"]) == ("dataset", "qa")
    assert {"train.jsonl", "validation.jsonl", "preview.table.json"} <= entries
    assert {"golden", "llmops-v1"} <= set(artifact["aliases"])
    logged = [r["history"]["item"] for r in records if r["type"] == "history"]
    (table,) = [i for i in logged if i.get("dataset/qa/preview._type") == "table-file"]
    assert (table["dataset/qa/preview.nrows"], table["dataset/qa/preview.ncols"]) == (12, 3)
