"""The same spec under torchrun: two CPU processes (gloo, DDP) that both train, on disjoint rows."""

import pytest

import llmops_magics as lm

pytestmark = pytest.mark.slow


def test_two_torchrun_processes_both_train_and_the_parent_registers_the_result(qa_dataset):
    job = lm.finetune("qa", launcher="torchrun", nproc=2, max_steps=3, batch_size=8, logging_steps=1)
    result = job.wait(600)
    ranks = sorted(result.ranks, key=lambda r: r["rank"])
    assert [(r["rank"], r["world_size"], r["global_step"]) for r in ranks] == [(0, 2, 3), (1, 2, 3)]
    assert all(r["samples"] >= 24 for r in ranks)
    assert len({r["pid"] for r in ranks}) == 2
    assert not set(ranks[0]["rows_seen"]) & set(ranks[1]["rows_seen"])
    assert result.metrics["world_size"] == 2
    assert [e["step"] for e in job.events if e["type"] == "log" and "train/loss" in e] == [1, 2, 3]
    edges = {(e.source, e.relation) for e in lm.registry().upstream(result.artifact, depth=1)}
    assert ("model://tiny-gpt2/1", "base") in edges and result.artifact.spec["args"]["launcher"] == "torchrun"
