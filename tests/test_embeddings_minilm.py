"""The numpy MiniLM encoder against transformers' BertModel on the same weights, and what it spares a
process: embedding text imports neither torch nor transformers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from llmops_magics.models.embeddings import embed, embedding_model_path

TEXTS = [
    "The capital of France is Paris.",
    "",
    "a",
    "Ünïcödé café naïve — résumé 東京 🚀",
    "word " * 400,  # truncated at 256 tokens, as the reference is
    "Hello, world! How are you doing today? I'm fine.",
    *[f"question {i}: which flag has {i % 5} stars and a {'red' if i % 2 else 'green'} field?" for i in range(70)],
]


@pytest.fixture(scope="module")
def reference():
    """Mean-pooled, normalised BertModel output: what sentence-transformers computes for this model."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = embedding_model_path()
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    enc = tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)
    ids = tokenizer(TEXTS, truncation=True, max_length=256)["input_ids"]
    return pooled.numpy(), ids


def test_numpy_encoder_equals_transformers_on_the_same_weights(reference):
    expected, _ = reference
    got = embed(TEXTS, batch_size=16)  # batches sorted by length: the order must come back
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_tokens_are_transformers_tokens(reference):
    from llmops_magics.models.embeddings import _load

    _, ids = reference
    assert [e.ids for e in _load().tokenizer.encode_batch(TEXTS)] == ids
    assert max(len(row) for row in ids) == 256


def test_a_text_embeds_the_same_alone_and_in_a_padded_batch():
    alone = embed([TEXTS[0]])[0]
    crowd = embed(TEXTS)[0]
    assert np.abs(alone - crowd).max() < 1e-6


def test_embedding_imports_neither_torch_nor_transformers():
    code = (
        "import sys\n"
        "from llmops_magics.models.embeddings import cosine_similarity\n"
        "assert cosine_similarity(['a cat'], ['a cat'])[0] > 0.999\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
