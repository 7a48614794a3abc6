"""The embedded tiny base model: deterministic, cached, plain-transformers loadable, and knows its world."""

import json
import subprocess
import sys
from dataclasses import asdict

import pytest

from llmops_magics.models import make_world, tiny_base_model
from llmops_magics.models.tiny import INFO_FILE, TinyModelSpec

BUILD_AND_DIGEST = """
import sys
from pathlib import Path
from llmops_magics.models.loading import tree_digest
from llmops_magics.models.tiny import TinyModelSpec, build_tiny_model
folder = build_tiny_model(Path(sys.argv[1]), TinyModelSpec(steps=15, vocab_size=400))
print(tree_digest(folder))
"""


@pytest.mark.slow
def test_two_builds_in_separate_processes_have_the_same_digest(tmp_path):
    digests = [
        subprocess.run(
            [sys.executable, "-c", BUILD_AND_DIGEST, str(tmp_path / f"build{i}")],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout.split()[-1]
        for i in (1, 2)
    ]
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_a_different_seed_is_a_different_cache_entry():
    assert TinyModelSpec().key != TinyModelSpec(seed=1).key


def test_the_cached_model_loads_with_plain_transformers(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert (model.config.model_type, tokenizer.eos_token, tokenizer.pad_token) == ("gpt2", "<|endoftext|>", "<|pad|>")
    assert json.loads((tiny_model_dir / INFO_FILE).read_text())["spec"] == asdict(TinyModelSpec())


def test_the_model_recalls_the_capitals_of_its_world_in_prose(workspace, tiny_model_dir):
    from llmops_magics.models import generate, load_model

    loaded = load_model(tiny_model_dir)
    world = make_world(0)
    outs = generate(loaded, [f"The capital of {c.name} is" for c in world], max_new_tokens=6)
    recalled = sum(o.text.split()[0].rstrip(".") == c.capital for o, c in zip(outs, world, strict=True))
    assert recalled >= 50


def test_registering_the_tiny_model_twice_keeps_one_version_and_reuses_the_build(workspace, tiny_model_dir):
    stats = tiny_model_dir.parent / f"tiny-{TinyModelSpec().key}.build.json"
    before = stats.stat().st_mtime if stats.exists() else None
    first = tiny_base_model()
    again = tiny_base_model()
    assert (first.ref, again.ref) == ("model://tiny-gpt2/1", "model://tiny-gpt2/1")
    assert (stats.stat().st_mtime if stats.exists() else None) == before
    assert first.metadata["spec_key"] == TinyModelSpec().key
    assert first.metadata["finetune_defaults"]["lr"] > 0
