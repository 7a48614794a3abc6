"""A local folder as the base: registered as a content-addressed model, so the output has a ``base`` edge."""

import shutil

import pytest

import llmops_magics as lm
from llmops_magics.finetuning.spec import FinetuneSpec, resolve_spec
from llmops_magics.models.loading import tree_digest


@pytest.fixture
def model_folder(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "My Model")


def test_a_local_folder_is_registered_as_a_model_named_after_it(qa_dataset, workspace, model_folder):
    run = resolve_spec(FinetuneSpec(data="qa", base=str(model_folder)), workspace)
    art = run.base_artifact
    assert (art.ref, run.base_ref, run.spec["base"]) == ("model://My-Model/1",) * 3
    assert art.metadata["source_path"] == str(model_folder)
    assert run.base_digest == art.digest == tree_digest(model_folder)
    assert (run.base_path, run.inputs[0]) == (model_folder, (art, "base"))


def test_the_same_folder_content_is_one_model_version(qa_dataset, workspace, model_folder, tiny_model_dir):
    first = resolve_spec(FinetuneSpec(data="qa", base=str(model_folder)), workspace).base_artifact
    again = resolve_spec(FinetuneSpec(data="qa", base=str(tiny_model_dir)), workspace).base_artifact
    assert again.ref == first.ref and [n.name for n in workspace.registry.names("model")] == ["My-Model"]


def test_a_folder_holding_the_tiny_model_reuses_its_registered_artifact(qa_dataset, workspace, model_folder):
    tiny = lm.tiny_base_model()
    assert resolve_spec(FinetuneSpec(data="qa", base=str(model_folder)), workspace).base_artifact.ref == tiny.ref


def test_checking_alone_registers_nothing(qa_dataset, workspace, model_folder):
    run = resolve_spec(FinetuneSpec(data="qa", base=str(model_folder)), workspace, register=False)
    assert (run.base_artifact, run.base_ref) == (None, str(model_folder))
    assert workspace.registry.names("model") == []
