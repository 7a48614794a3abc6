"""Bad fine-tune requests fail at once, with a typed error naming the problem, and write nothing."""

import pytest

import llmops_magics as lm
from llmops_magics import NotFoundError, RenderError, ValidationError


def nothing_written(ws):
    assert {n.kind for n in ws.registry.names()} <= {"dataset", "prompt"} and ws.registry.list_state("finetune") == {}
    assert not (ws.registry.home / "runs").exists()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"method": "qlora"}, ValidationError, "method must be one of lora, full, found 'qlora'"),
        ({"r": 0}, ValidationError, "r must be a positive int, found 0"),
        ({"lr": -1.0}, ValidationError, "lr must be a positive float"),
        ({"dropout": 1.5}, ValidationError, r"dropout must be in \[0, 1\)"),
        ({"max_length": 4}, ValidationError, "max-length must be at least 8 tokens"),
        ({"nproc": 2}, ValidationError, "nproc > 1 needs a launcher"),
        ({"launcher": "mpirun"}, ValidationError, "launcher must be one of none, torchrun, accelerate"),
        ({"method": "full", "merge": True}, ValidationError, "merge applies to LoRA adapters"),
        ({"early_stopping": 2}, ValidationError, "early-stopping needs --eval-steps"),
        ({"target_column": "nope"}, ValidationError, "has no column"),
        ({"eval_data": "missing"}, NotFoundError, "--eval-data: no dataset is named 'missing'"),
        ({"prompt": "missing"}, NotFoundError, "no prompt is named 'missing'"),
        ({"base": "model://nope"}, NotFoundError, "neither a registered model nor a local model folder"),
        ({"name": "bad/name"}, ValidationError, "must not contain path separators"),
    ],
)
def test_a_bad_option_is_rejected_before_anything_runs(qa_dataset, workspace, options, error, message):
    with pytest.raises(error, match=message):
        lm.finetune("qa", **options)
    nothing_written(workspace)


def test_missing_training_data_is_named(workspace):
    with pytest.raises(NotFoundError, match="--data: no dataset is named 'nope'"):
        lm.finetune("nope")
    with pytest.raises(ValidationError, match="needs training data"):
        lm.finetune()


def test_a_prompt_that_reads_a_column_the_data_lacks_is_a_render_error(qa_dataset, workspace):
    lm.save_prompt("needs-topic", "Topic: {{ subject }}\nQ: {{ question }}\nA:")
    with pytest.raises(RenderError, match="needs column\\(s\\) subject, which dataset://qa/1 lacks"):
        lm.finetune("qa", prompt="needs-topic")
    nothing_written(workspace)


def test_data_without_a_known_input_column_asks_for_a_prompt(tiny_model_dir, workspace):
    lm.save_dataset("pairs", [{"text": "a", "answer": "b"}])
    with pytest.raises(ValidationError, match="give --prompt PROMPT_REF"):
        lm.finetune("pairs")


def test_a_folder_that_is_not_a_model_is_rejected(qa_dataset, workspace, tmp_path):
    with pytest.raises(ValidationError, match=r"not a Hugging Face model \(no config\.json\)"):
        lm.finetune("qa", base=str(tmp_path))


def test_eval_steps_without_evaluation_data_is_rejected(tiny_model_dir, workspace):
    lm.save_dataset("train-only", [{"question": f"q{i}", "answer": f"a{i}"} for i in range(8)])
    with pytest.raises(ValidationError, match="eval-steps needs evaluation data"):
        lm.finetune("train-only", eval_steps=5)
    nothing_written(workspace)


@pytest.mark.parametrize("base", ["models/foo", "./models/foo", "~/no-such-dir/model", "/no/such/model"])
def test_a_mistyped_base_path_says_the_folder_does_not_exist(qa_dataset, workspace, base):
    with pytest.raises(NotFoundError, match=r"local model folder '.*model.*' does not exist"):
        lm.finetune("qa", base=base)
    nothing_written(workspace)


def test_a_registered_model_with_a_missing_version_is_still_named_a_reference(qa_dataset, workspace):
    with pytest.raises(NotFoundError, match="'tiny-gpt2/7' is neither a registered model nor a local model folder"):
        lm.finetune("qa", base="tiny-gpt2/7")


def test_an_adapter_folder_given_as_base_is_named(qa_dataset, workspace, tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ValidationError, match="is a PEFT adapter folder, not a model"):
        lm.finetune("qa", base=str(tmp_path))


def test_a_resume_with_nothing_to_resume_writes_nothing_not_even_the_base_model(qa_dataset, workspace):
    with pytest.raises(ValidationError, match="no cancelled or crashed run of this spec"):
        lm.finetune("qa", resume=True)
    assert workspace.registry.names("model") == []
    nothing_written(workspace)
