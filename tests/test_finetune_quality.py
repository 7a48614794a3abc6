"""The demo's story is true: LoRA on the QA task lifts exact match on held-out questions.

The tiny base model knows its world's facts in prose but has never seen the
"Question: …\\nAnswer:" format, so it scores 0 on it. Fine-tuning on the train
split with the model's recorded defaults (lr 3e-3, 15 epochs, batch 16: 135 steps)
teaches the format, and the facts carry over to questions it never trained on.
"""

import pytest

import llmops_magics as lm
from llmops_magics.models import generate, load_model

pytestmark = pytest.mark.slow


def exact_match(ref, rows, template):
    loaded = load_model(ref)
    prompts = [template.replace("{{ question }}", r["question"]) for r in rows]
    outs = generate(loaded, prompts, max_new_tokens=8)
    return sum(o.text.strip() == r["answer"] for o, r in zip(outs, rows, strict=True)) / len(rows)


def test_lora_lifts_held_out_exact_match_from_zero_to_over_half(qa_dataset):
    held_out = qa_dataset.records("validation")
    result = lm.finetune("qa").wait(900)
    template = result.artifact.metadata["prompt_template"]
    base_em = exact_match("model://tiny-gpt2/1", held_out, template)
    tuned_em = exact_match(result.ref, held_out, template)
    print(f"held-out exact match: base {base_em:.3f} -> LoRA {tuned_em:.3f} ({len(held_out)} questions)")
    assert base_em <= 0.05
    assert tuned_em >= 0.5
