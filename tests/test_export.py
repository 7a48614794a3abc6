"""``export(REF, FOLDER)``: a folder plain transformers + PEFT load, in a process that never imports the project.

The adapter is a real LoRA (a few training steps on the tiny model, saved with PEFT's
``save_pretrained`` plus the tokenizer, as ``%finetune`` saves one); what the exported
folder generates in a fresh interpreter is compared with what the registry's own copy
generates here with the same plain code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import llmops_magics as lm
from llmops_magics import NotFoundError, ValidationError

PROMPT = "Question: What is the capital of Brouria?\nAnswer:"

# Runs in a fresh interpreter: only transformers, peft and huggingface_hub, never llmops_magics.
LOAD = """
import json, sys
import torch
from huggingface_hub import ModelCard
from peft import AutoPeftModelForCausalLM, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

folder, prompt = sys.argv[1], sys.argv[2]
card = ModelCard.load(folder + "/README.md")
base = AutoModelForCausalLM.from_pretrained(card.data.base_model)
model = PeftModel.from_pretrained(base, folder).eval()
tok = AutoTokenizer.from_pretrained(folder)
ids = tok(prompt, return_tensors="pt")
with torch.no_grad():
    out = model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.eos_token_id)
    auto = AutoPeftModelForCausalLM.from_pretrained(folder).eval()  # base_model_name_or_path in adapter_config
    again = auto.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.eos_token_id)
assert "llmops_magics" not in sys.modules, "the project was imported"
print(json.dumps({"tokens": out[0].tolist(), "auto": again[0].tolist(), "model_name": card.data.model_name}))
"""


def _generate_here(base_dir, adapter_dir) -> list[int]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(adapter_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir).eval()
    ids = tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        return model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.eos_token_id)[0].tolist()


@pytest.fixture(scope="session")
def lora_folder(tmp_path_factory, tiny_model_dir):
    from deploy_support import train_adapter

    return train_adapter(tiny_model_dir, tmp_path_factory.mktemp("export") / "adapter", seed=0, steps=4)


@pytest.fixture
def adapter(workspace, tiny_model_dir, lora_folder):
    """The tiny base and the LoRA registered as ``%finetune`` would (base edge, base_model metadata)."""
    reg = workspace.registry
    base = reg.save("model", "tiny-gpt2", path=tiny_model_dir).artifact
    meta = {"base_model": base.ref, "base_digest": base.digest, "prompt_template": "Question: {{ question }}\nAnswer:"}
    art = reg.save("adapter", "qa-lora", path=lora_folder, metadata=meta, parents=[(base, "base")]).artifact
    return base, art


def test_the_folder_holds_adapter_tokenizer_and_card_and_names_the_base(adapter, workspace, tmp_path):
    from huggingface_hub import ModelCard

    base, art = adapter
    out = lm.export(art.ref, str(tmp_path / "out"))
    files = set(out.files)
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"} <= files
    base_dir = str(workspace.registry.checkout(base))
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == base_dir == out.base_model
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.base_model == base_dir and card.data.llmops["ref"] == art.ref
    assert out.card_ref is None and workspace.registry.names(kind="card") == []  # written, not stored
    source = workspace.registry.checkout(art) / "adapter_model.safetensors"
    assert (tmp_path / "out" / "adapter_model.safetensors").read_bytes() == source.read_bytes()
    (event,) = lm.audit_events(art.ref, action="export")  # what left the registry, and where to
    assert event.to_ref == str(tmp_path / "out") and event.detail == {"card": None}


def test_the_newest_stored_card_is_the_readme(adapter, tmp_path):
    _, art = adapter
    lm.card(art.ref, intended_use="first")
    view = lm.card(art.ref, intended_use="second")
    out = lm.export(art.ref, str(tmp_path / "out"))
    assert out.card_ref == view.ref
    assert (tmp_path / "out" / "README.md").read_text() == view.markdown


@pytest.mark.slow
def test_a_fresh_process_loads_the_export_with_plain_transformers_and_peft_and_generates(adapter, workspace, tmp_path):
    base, art = adapter
    folder = tmp_path / "exported"
    lm.export(art.ref, str(folder))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", LOAD, str(folder), PROMPT], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = _generate_here(workspace.registry.checkout(base), workspace.registry.checkout(art))
    assert got["tokens"] == expected == got["auto"] and len(expected) > 1
    assert got["model_name"] == "qa-lora"


def test_a_full_model_exports_as_a_plain_transformers_folder(adapter, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoConfig

    base, _ = adapter
    out = lm.export(base.ref, str(tmp_path / "base"))
    assert {"config.json", "model.safetensors", "README.md"} <= set(out.files)
    assert AutoConfig.from_pretrained(tmp_path / "base").model_type == "gpt2"
    card = ModelCard.load(tmp_path / "base" / "README.md")
    assert card.data.library_name == "transformers" and card.data.base_model is None


# ---------------------------------------------------------------------- bad input


def test_a_non_empty_folder_is_refused_without_force_and_replaced_with_it(adapter, tmp_path):
    _, art = adapter
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValidationError) as info:
        lm.export(art.ref, str(folder))
    assert "is not empty (1 entries)" in str(info.value) and "\n" not in str(info.value)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    lm.export(art.ref, str(folder), force=True)
    assert not (folder / "notes.txt").exists() and (folder / "adapter_config.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".taken")] == []  # no temporary folder left
    (tmp_path / "empty").mkdir()
    assert lm.export(art.ref, str(tmp_path / "empty")).folder == tmp_path / "empty"  # an empty folder is fine


def test_bad_references_and_folders_are_one_line_and_write_nothing(adapter, workspace, tmp_path, monkeypatch):
    lm.save_dataset("rows", [{"q": "a"}])
    (tmp_path / "file.txt").write_text("x")
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("x")
    monkeypatch.chdir(work)
    cases = [
        (dict(ref="rows", folder=str(tmp_path / "a")), ValidationError, "dataset://rows/1 is a dataset"),
        (dict(ref="nope", folder=str(tmp_path / "a")), NotFoundError, "no artifact is named 'nope'"),
        (dict(ref="qa-lora", folder=str(tmp_path / "file.txt")), ValidationError, "is a file"),
        (dict(ref="qa-lora", folder=str(work), force=True), ValidationError, "holds the registry, the working"),
        (dict(ref="qa-lora", folder=str(workspace.home), force=True), ValidationError, "holds the registry"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for kwargs, error, words in cases:
        with pytest.raises(error) as info:
            lm.export(**kwargs)
        assert words in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and (work / "keep.txt").is_file()
    assert list(lm.audit_events(action="export")) == []


def test_the_cli_prints_the_folder_and_refuses_a_taken_one_with_status_2(adapter, workspace, tmp_path, capsys, ip):
    from llmops_magics.adapters.cli import main

    home = ["--home", str(workspace.home)]
    assert main([*home, "export", "qa-lora", str(tmp_path / "cli")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "cli")
    assert main([*home, "export", "qa-lora", str(tmp_path / "cli")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main([*home, "export", "qa-lora", str(tmp_path / "cli"), "--force"]) == 0
    shown = ip.run_line_magic("export", f"qa-lora {tmp_path / 'magic'}")
    assert "adapter_config.json" in shown._repr_mimebundle_()[0]["text/html"]
