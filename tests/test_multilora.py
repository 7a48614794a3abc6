"""The gathered multi-LoRA forward gives what PEFT's own per-adapter loop gives, row by row.

Three adapters of different ranks on the tiny GPT-2 base, and base rows, mixed in one batch:
the logits through ``multilora.rows`` equal PEFT's ``adapter_names`` path and each adapter run
alone. A model with a LoRA layer the gathered path does not cover (an embedding) is reported,
so the server drives it the PEFT way.
"""

from __future__ import annotations

import pytest
import torch
from deploy_support import build_folders

from llmops_magics.modelserver.batcher import adapters_of
from llmops_magics.modelserver.multilora import install, rows


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    torch.manual_seed(3)
    rank2 = tmp_path_factory.mktemp("rank2")
    config = LoraConfig(r=2, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True, init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(folders.base), config).save_pretrained(rank2)
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folders.base), folders.adapter_a)
    peft.load_adapter(str(folders.adapter_b), adapter_name="b")
    peft.load_adapter(str(rank2), adapter_name="r2")
    return peft.eval()


def _logits(model, ids, **kw):
    with torch.inference_mode():
        return model(input_ids=ids, **kw).logits


def test_gathered_rows_equal_peft_mixed_batches_and_each_adapter_alone(model):
    names = ["default", "b", "__base__", "r2", "b", "default"]
    ids = torch.randint(0, 300, (len(names), 7), generator=torch.Generator().manual_seed(0))
    expected = _logits(model, ids, adapter_names=names)
    assert install(model)
    with rows(names):
        gathered = _logits(model, ids)
    torch.testing.assert_close(gathered, expected, rtol=1e-5, atol=1e-5)
    for i, name in enumerate(names):
        alone = _logits(model, ids[i : i + 1], adapter_names=[name])
        torch.testing.assert_close(gathered[i : i + 1], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(gathered[0], gathered[2])  # the adapter changes something


def test_the_batchers_choose_rows_only_for_mixed_batches(model):
    install(model)
    active = model.active_adapter
    assert adapters_of(model, [active, None])[1] == {}  # everything on the active adapter: PEFT's plain path
    context, kwargs = adapters_of(model, ["b", active])
    assert kwargs == {} and context is not None
    assert adapters_of(torch.nn.Linear(2, 2), ["b"])[1] == {}  # not a PEFT model: nothing to choose


def test_a_model_with_a_lora_embedding_is_driven_the_peft_way(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    base = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=16))
    peft = get_peft_model(base, LoraConfig(r=2, target_modules=["wte", "c_attn"], fan_in_fan_out=True))
    peft.add_adapter("other", LoraConfig(r=2, target_modules=["wte", "c_attn"], fan_in_fan_out=True))
    assert install(peft) is False
    assert adapters_of(peft, ["other", "default"])[1] == {"adapter_names": ["other", "default"]}
