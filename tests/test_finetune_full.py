"""A full fine-tune from a local model folder: a ``model`` artifact, digests the registry would give."""

import pytest

import llmops_magics as lm

pytestmark = pytest.mark.slow


def test_a_full_fine_tune_of_a_local_folder_registers_a_model_linked_to_the_folder(qa_dataset, tiny_model_dir):
    result = lm.finetune("qa", base=str(tiny_model_dir), method="full", max_steps=3, name="qa-full").wait(600)
    meta = result.artifact.metadata
    base = lm.registry().resolve(f"model://{tiny_model_dir.name}")
    assert (result.artifact.kind, meta["base_model"], result.artifact.spec["args"]["lr"]) == ("model", base.ref, 2e-5)
    assert base.metadata["source_path"] == str(tiny_model_dir)
    assert meta["base_digest"] == base.digest == lm.tiny_base_model().digest
    edges = {(e.source, e.relation) for e in lm.registry().upstream(result.artifact, depth=1)}
    assert edges == {(base.ref, "base"), ("dataset://qa/1", "train_data"), ("dataset://qa/1", "eval_data")}
    tuned, base = lm.load_model(result.ref).model, lm.load_model(str(tiny_model_dir)).model
    changed = [n for n, p in tuned.named_parameters() if not p.equal(dict(base.named_parameters())[n])]
    assert len(changed) > 10
