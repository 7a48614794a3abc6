"""One real LoRA fine-tune (Trainer + PEFT, tiny model, CPU) and what it leaves behind.

The run happens once for the module: a registered prompt formats the rows, the
dataset's validation split is the eval data, and ``merge`` adds a merged model.
"""

import pytest

import llmops_magics as lm
from llmops_magics.models import task_examples

pytestmark = pytest.mark.slow

TEMPLATE = "Q: {{ question }}\nA:"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    from llmops_magics.context import workspaces as context
    from llmops_magics.recording import MemoryRecorder

    home = tmp_path_factory.mktemp("lora") / ".llmops"
    recorder = MemoryRecorder()
    ws = context.configure(home=str(home), wandb_mode="disabled", recorder=recorder)
    lm.save_dataset("qa", task_examples(), validation_fraction=0.2, seed=0)
    lm.save_prompt("short-qa", TEMPLATE)
    job = lm.finetune("qa", prompt="short-qa", max_steps=12, eval_steps=6, logging_steps=3, merge=True, name="qa-lora")
    result = job.wait(600)
    yield ws, job, result, recorder
    ws.close()
    context._current = None


def test_the_adapter_loads_with_plain_peft_and_changes_the_output(run):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ws, _, result, _ = run
    base_dir = ws.registry.checkout(result.artifact.metadata["base_model"])
    adapter_dir = ws.registry.checkout(result.artifact)
    tok = AutoTokenizer.from_pretrained(adapter_dir)
    ids = tok("Q: What is the capital of Brouria?\nA:", return_tensors="pt")["input_ids"]
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    with torch.no_grad():
        before = base(ids).logits[0, -1]
        tuned = PeftModel.from_pretrained(base, adapter_dir)
        after = tuned(ids).logits[0, -1]
    assert (adapter_dir / "adapter_config.json").is_file() and (adapter_dir / "tokenizer.json").is_file()
    assert not torch.allclose(before, after, atol=1e-3)
    assert {"c_attn", "c_proj"} <= set(result.artifact.metadata["lora_modules"])  # GPT-2's, found by PEFT


def test_the_adapter_is_linked_to_its_base_model_data_and_prompt(run):
    ws, _, result, _ = run
    edges = {(e.source, e.relation) for e in ws.registry.upstream(result.artifact, depth=1)}
    assert edges == {
        ("model://tiny-gpt2/1", "base"),
        ("dataset://qa/1", "train_data"),
        ("dataset://qa/1", "eval_data"),
        ("prompt://short-qa/1", "prompt"),
    }


def test_the_metadata_holds_what_eval_and_serving_check(run):
    from llmops_magics.models.loading import tokenizer_digest

    ws, _, result, _ = run
    meta = result.artifact.metadata
    base = ws.registry.resolve("model://tiny-gpt2/1")
    assert (result.artifact.kind, meta["base_model"], meta["base_digest"]) == ("adapter", base.ref, base.digest)
    assert meta["tokenizer_digest"] == tokenizer_digest(ws.registry.checkout(result.artifact))
    assert (meta["prompt"], meta["prompt_template"], meta["target_column"], meta["target_prefix"]) == (
        "prompt://short-qa/1",
        TEMPLATE,
        "answer",
        " ",
    )
    assert meta["chat_template"] is None and meta["seed"] == 0
    assert {"torch", "transformers", "peft"} <= set(meta["libraries"])
    assert meta["metrics"]["global_step"] == 12 and meta["metrics"]["eval_loss"] > 0
    (wandb_run,) = [r for r in run[3].runs if r.job_type == "finetune"]
    assert meta["wandb_run_id"] == result.wandb_run_id == wandb_run.id


def test_the_resolved_spec_records_every_hyperparameter_and_where_defaults_came_from(run):
    _, _, result, _ = run
    stored = result.artifact.spec
    spec = stored["args"]
    assert stored["op"] == "finetune" and result.artifact.metadata["defaults_from"] == "model://tiny-gpt2/1"
    assert (spec["method"], spec["r"], spec["alpha"], spec["target_modules"], spec["max_steps"]) == (
        "lora",
        8,
        16.0,
        "all-linear",
        12,
    )
    assert (spec["lr"], spec["batch_size"], spec["threads"]) == (3e-3, 16, 1)
    assert all(spec[k] is not None for k in ("base", "data", "epochs", "seed", "max_length", "logging_steps"))


def test_merge_registers_a_model_made_from_the_adapter(run):
    ws, _, result, _ = run
    assert result.merged.ref == "model://qa-lora-merged/1"
    edges = [(e.source, e.relation) for e in ws.registry.upstream(result.merged, depth=1)]
    assert edges == [(result.ref, "merged_from")]
    assert (ws.registry.checkout(result.merged) / "model.safetensors").is_file()


def test_the_run_reports_train_and_eval_losses_as_events_and_to_the_recorder(run):
    _, job, _, recorder = run
    logs = [e for e in job.events if e["type"] == "log"]
    assert [e["step"] for e in logs if "train/loss" in e] == [3, 6, 9, 12]
    assert [e["step"] for e in logs if "eval/loss" in e] == [6, 12]
    (wandb_run,) = [r for r in recorder.runs if r.job_type == "finetune"]
    assert [h["_step"] for h in wandb_run.history if "eval/loss" in h] == [6, 12]
    assert wandb_run.config["max_steps"] == 12 and wandb_run.finished == 0
    assert {a["type"] for a in wandb_run.artifacts} == {"adapter", "model"}


def test_a_finished_run_is_recorded_as_succeeded_and_its_checkpoints_are_removed(run):
    _, job, result, _ = run
    (record,) = [r for r in lm.finetune_runs() if r["run_id"] == result.run_id]
    assert (record["status"], record["result"], record["merged"]) == ("succeeded", result.ref, result.merged.ref)
    assert not (job.run_dir / "checkpoints").exists()


def test_the_result_keeps_its_loss_curves_and_draws_them(run):
    import xml.etree.ElementTree as ET

    _, job, result, _ = run
    logs = [e for e in job.events if e["type"] == "log"]
    curve = result.artifact.metadata["loss_curve"]
    assert [step for step, _ in curve["train"]] == [3, 6, 9, 12]
    assert [loss for _, loss in curve["train"]] == [e["train/loss"] for e in logs if "train/loss" in e]
    assert [step for step, _ in curve["eval"]] == [6, 12]
    svg = ET.fromstring(result._repr_mimebundle_()[0]["image/svg+xml"])
    lines = {e.get("data-name"): e.get("data-n") for e in svg.iter() if e.get("class") == "series"}
    assert lines == {"train": "4", "eval": "2"}
