"""On a bf16 GPU the weights that train are fp32: Trainer's ``bf16=True`` is autocast, not fp32 masters.

No GPU is needed: the model is built as it would be for a bf16 run, on CPU.
"""

import pytest
import torch

from llmops_magics.finetuning.train import _model, load_dtype

LORA = {"method": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}


def trainable_dtypes(model) -> set:
    return {p.dtype for p in model.parameters() if p.requires_grad}


def test_a_full_fine_tune_loads_fp32_weights_even_when_training_in_bf16(tiny_model_dir):
    assert load_dtype("full", bf16=True) == "float32"
    model = _model({"base_path": str(tiny_model_dir), "spec": {"method": "full"}}, bf16=True)
    assert trainable_dtypes(model) == {torch.float32}


def test_lora_keeps_a_bf16_base_and_trains_fp32_adapters(tiny_model_dir):
    assert load_dtype("lora", bf16=True) == "bfloat16"
    model = _model({"base_path": str(tiny_model_dir), "spec": LORA}, bf16=True)
    assert trainable_dtypes(model) == {torch.float32}
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {torch.bfloat16}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_without_bf16_everything_is_fp32(method):
    assert load_dtype(method, bf16=False) == "float32"
