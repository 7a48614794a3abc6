"""Real models for the deployment tests, built once per test session.

The tiny base model is trained with fewer steps than the default (its answers
need not be right, only deterministic), and two LoRA adapters are trained on it
with ``peft`` in a plain torch loop, saved with ``save_pretrained`` plus the
tokenizer, exactly as ``%finetune`` saves them. ``register`` puts them in a
workspace's registry with the metadata and lineage ``%finetune`` records.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE = "Question: {{ question }}\nAnswer:"
TRAIN_ROWS = 96


@dataclass(frozen=True)
class Folders:
    base: Path
    adapter_a: Path
    adapter_b: Path


def _render(question: str) -> str:
    return TEMPLATE.replace("{{ question }}", question)


def train_adapter(base: Path, dest: Path, *, seed: int, steps: int = 24) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmops_magics.models import task_examples

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(base)
    tok.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True)
    model = get_peft_model(model, config)
    rows = task_examples()[:TRAIN_ROWS]
    texts = [f"{_render(r['question'])} {r['answer']}{tok.eos_token}" for r in rows]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(texts), (8,), generator=gen).tolist()
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


@functools.cache
def build_folders(root: str) -> Folders:
    """Train once per session (``root`` is the session's base temp folder)."""
    from llmops_magics.models import TinyModelSpec, build_tiny_model

    root_path = Path(root) / "deploy-models"
    base = build_tiny_model(root_path / "base", TinyModelSpec(steps=150, batch_size=16, n_layer=2, n_embd=64))
    return Folders(
        base,
        train_adapter(base, root_path / "adapter-a", seed=0, steps=20),
        train_adapter(base, root_path / "adapter-b", seed=1, steps=30),
    )


@dataclass(frozen=True)
class Refs:
    base: str
    dataset: str
    adapter: str
    adapter_v2: str
    prompt: str


def register(ws, folders: Folders) -> Refs:
    """Register the base model, the training data, both adapters (as qa-lora/1 and /2) and a prompt."""
    from llmops_magics import save_dataset, save_prompt
    from llmops_magics.models import task_examples
    from llmops_magics.models.loading import tokenizer_digest

    reg = ws.registry
    base = reg.save("model", "tiny-gpt2", path=folders.base, metadata={"architecture": "gpt2"}).artifact
    data = save_dataset("qa-train", task_examples()[:TRAIN_ROWS], workspace=ws)
    refs = []
    for folder in (folders.adapter_a, folders.adapter_b):
        art = reg.save(
            "adapter",
            "qa-lora",
            path=folder,
            metadata={
                "base_model": base.ref,
                "base_digest": base.digest,
                "tokenizer_digest": tokenizer_digest(folder),
                "chat_template": None,
                "prompt": None,
                "prompt_template": TEMPLATE,
                "target_column": "answer",
                "spec": {"op": "finetune", "steps": 24},
                "metrics": {},
            },
            parents=[(base, "base"), (data.artifact, "data")],
        ).artifact
        refs.append(art.ref)
    prompt = save_prompt("qa-chat", "Question: {{ question }}\nAnswer:", workspace=ws)
    return Refs(base.ref, data.ref, refs[0], refs[1], prompt.ref)


def quiet_workspace(home: Path):
    """A workspace on ``home`` that records nothing to W&B (for registering fixtures)."""
    from llmops_magics.context.workspaces import Settings, Workspace

    return Workspace(Settings(home=str(home), wandb_mode="disabled"), recorder=None)


@contextlib.contextmanager
def module_workspace(home: Path, *, wandb_dir: Path | None = None):
    """The process-wide workspace for a whole test module (the conftest one is per test).

    With ``wandb_dir`` W&B records offline there (the servers started inherit it);
    without, an in-memory recorder and ``wandb_mode="disabled"``.
    """
    import pytest

    from llmops_magics.context import workspaces as context
    from llmops_magics.recording import MemoryRecorder

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMOPS_HOME", str(home))
        if wandb_dir is None:
            ws = context.configure(home=str(home), wandb_mode="disabled", recorder=MemoryRecorder())
        else:
            for var, sub in (("WANDB_DIR", "runs"), ("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache")):
                (wandb_dir / sub).mkdir(parents=True, exist_ok=True)
                mp.setenv(var, str(wandb_dir / sub))
            (wandb_dir / "config").mkdir(parents=True, exist_ok=True)
            mp.setenv("WANDB_CONFIG_DIR", str(wandb_dir / "config"))
            mp.setenv("WANDB_MODE", "offline")
            ws = context.configure(home=str(home), wandb_mode="offline", wandb_project="tests")
        try:
            yield ws
        finally:
            ws.close()
            context._current = None


def stop_all(ws) -> None:
    """Stop every deployment this workspace knows (fixtures call it even when a test failed)."""
    from llmops_magics.serving import stop_deployment
    from llmops_magics.serving.control import NAMESPACE

    for name in list(ws.registry.list_state(NAMESPACE)):
        with contextlib.suppress(Exception):
            stop_deployment(name, grace=10.0, workspace=ws)


def logged_requests(handle, *, at_least: int, with_text: bool = False, timeout: float = 20.0) -> list[dict]:
    """The server's request log once it holds ``at_least`` rows.

    The server writes its log in the background every 0.25 s; a fixed sleep is
    enough on an idle machine and flaky on a loaded CI runner, so this polls.
    """
    import time

    from llmops_magics.serving.requestlog import read_requests

    deadline = time.monotonic() + timeout
    while True:
        rows = read_requests(handle.state["monitor_db"], with_text=with_text)
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _user_model(dest: Path, tokenizer_from: Path, model_cls: Any, config_cls: Any, **sizes: Any) -> Any:
    """A model of random weights saved to ``dest`` with ``save_pretrained``, as a user would; its tokenizer."""
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    torch.manual_seed(0)
    ids = {"pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id, "bos_token_id": tok.bos_token_id}
    model_cls(config_cls(vocab_size=len(tok), **ids, **sizes)).save_pretrained(dest)
    return tok


def gpt2_folder(dest: Path, tokenizer_from: Path) -> Path:
    """A small GPT-2 (random weights, another size than the tiny model) with a LICENSE file."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _user_model(
        dest, tokenizer_from, GPT2LMHeadModel, GPT2Config, n_embd=64, n_layer=3, n_head=4, n_positions=192
    )
    tok.save_pretrained(dest)
    (dest / "LICENSE").write_text("MIT License\n\nCopyright ...\n")
    return dest


def llama_folder(dest: Path, tokenizer_from: Path) -> Path:
    """A tiny Llama-architecture model (random weights) with the GPT-2 tokenizer, a chat template and a license."""
    from transformers import LlamaConfig, LlamaForCausalLM

    sizes = {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4}
    tok = _user_model(
        dest, tokenizer_from, LlamaForCausalLM, LlamaConfig, **sizes, num_key_value_heads=2, max_position_embeddings=256
    )
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    tok.save_pretrained(dest)
    (dest / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# small llama\n")
    return dest
