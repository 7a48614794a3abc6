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
from llmops_magics.models.tiny import build_tiny_model
print(tree_digest(build_tiny_model(Path(sys.argv[1]))))
"""


@pytest.mark.slow
def test_a_fresh_build_of_the_shipped_model_in_another_process_matches_the_cached_one(tmp_path, tiny_model_dir):
    """The shipped default spec, not a reduced one: its cache entry is trusted because builds are identical."""
    from llmops_magics.models.loading import tree_digest

    out = subprocess.run(
        [sys.executable, "-c", BUILD_AND_DIGEST, str(tmp_path / "fresh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert out.stdout.split()[-1] == tree_digest(tiny_model_dir)


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


def test_registering_the_tiny_model_mirrors_it_once_so_online_runs_can_use_it(workspace, tiny_model_dir):
    tiny_base_model()
    tiny_base_model()
    assert workspace.recorder.flush(60)
    assert [(a["type"], a["name"]) for a in workspace.memory.artifacts] == [("model", "tiny-gpt2")]
    assert workspace.registry.resolve("model://tiny-gpt2/1").wandb["mode"] == "memory"


def test_without_a_project_the_cache_is_beside_the_registry_not_in_the_home_folder(tmp_path, monkeypatch):
    from llmops_magics.context.home import find_project_root
    from llmops_magics.models.tiny import cache_dir

    monkeypatch.delenv("LLMOPS_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "work" / ".llmops"))
    monkeypatch.chdir(tmp_path)
    assert find_project_root() is None
    assert cache_dir() == tmp_path / "work" / ".cache" / "llmops"
    assert cache_dir(tmp_path / "other" / ".llmops") == tmp_path / "other" / ".cache" / "llmops"
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "shared"))
    assert cache_dir(tmp_path / "other" / ".llmops") == tmp_path / "shared"
