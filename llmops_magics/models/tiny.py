"""The embedded default base model: a tiny GPT-2 the project trains itself, offline.

``build_tiny_model`` trains a byte-level BPE tokenizer and a ~1M-parameter GPT-2
on the synthetic world's corpus (see ``world.py``), seeded and single-threaded so
the same seed gives byte-identical weights, and saves both with
``save_pretrained`` so plain ``AutoModelForCausalLM`` / ``AutoTokenizer`` load
them. ``tiny_base_model`` builds it once per workspace and registers it as
``model://tiny-gpt2``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .world import corpus, task_examples

__all__ = ["TinyModelSpec", "build_tiny_model", "tiny_base_model", "TINY_MODEL_NAME"]

TINY_MODEL_NAME = "tiny-gpt2"
EOS = "<|endoftext|>"
PAD = "<|pad|>"


@dataclass(frozen=True)
class TinyModelSpec:
    seed: int = 0
    vocab_size: int = 768
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 128
    seq_len: int = 48
    batch_size: int = 32
    steps: int = 500
    lr: float = 3e-3

    @property
    def key(self) -> str:
        import hashlib

        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def _train_tokenizer(spec: TinyModelSpec, texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=PAD)
    fast.padding_side = "left"
    fast.model_max_length = spec.n_positions
    return fast


def build_tiny_model(dest: str | Path, spec: TinyModelSpec | None = None) -> Path:
    """Train the tiny base model and save it to ``dest`` (a new folder). Deterministic per spec."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    spec = spec or TinyModelSpec()
    dest = Path(dest)
    started = time.perf_counter()
    lines = corpus(spec.seed)
    tokenizer = _train_tokenizer(spec, lines + [f"{r['question']} {r['answer']}" for r in task_examples(spec.seed)])

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-identical results need a fixed reduction order
    try:
        torch.manual_seed(spec.seed)
        ids: list[int] = []
        for line in lines:
            ids.extend([*tokenizer.encode(line), tokenizer.eos_token_id])
        data = torch.tensor(ids, dtype=torch.long)
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=spec.n_positions,
            n_embd=spec.n_embd,
            n_layer=spec.n_layer,
            n_head=spec.n_head,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
        model = GPT2LMHeadModel(config)
        opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.lr, total_steps=spec.steps, pct_start=0.1)
        gen = torch.Generator().manual_seed(spec.seed)
        model.train()
        for _ in range(spec.steps):
            starts = torch.randint(0, len(data) - spec.seq_len - 1, (spec.batch_size,), generator=gen)
            batch = torch.stack([data[s : s + spec.seq_len] for s in starts.tolist()])
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        final_loss = float(loss.detach())
    finally:
        torch.set_num_threads(threads)

    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=dest.parent if dest.parent.exists() else None))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "llmops_tiny.json").write_text(
        json.dumps(
            {
                "spec": asdict(spec),
                "final_loss": round(final_loss, 4),
                "parameters": model.num_parameters(),
                "build_seconds": None,
            },
            sort_keys=True,
            indent=1,
        )
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    staging.replace(dest)
    _ = time.perf_counter() - started
    return dest


def tiny_base_model(workspace: Any = None, spec: TinyModelSpec | None = None):
    """The registered tiny base model (``model://tiny-gpt2``), built on first use and cached."""
    from ..context import current
    from ..provenance import collect

    ws = workspace or current()
    reg = ws.registry
    spec = spec or TinyModelSpec()
    for art in reversed(reg.versions("model", TINY_MODEL_NAME) if reg.exists(f"model://{TINY_MODEL_NAME}") else []):
        if art.metadata.get("spec_key") == spec.key:
            return art
    with tempfile.TemporaryDirectory(dir=reg.home / "tmp") as tmp:
        folder = build_tiny_model(Path(tmp) / "model", spec)
        meta = json.loads((folder / "llmops_tiny.json").read_text())
        result = reg.save(
            "model",
            TINY_MODEL_NAME,
            path=folder,
            source=collect(),
            metadata={"spec_key": spec.key, "architecture": "gpt2", "built_by": "llmops_magics.models.tiny", **meta},
            spec={"op": "tiny_base_model", **asdict(spec)},
        )
    return result.artifact
