"""The embedded default base model: a tiny GPT-2 the project trains itself, offline.

``build_tiny_model`` trains a byte-level BPE tokenizer and a ~0.5M-parameter GPT-2
on the synthetic world's corpus (see ``world.py``), seeded and on a fixed number
of threads (one by default: the reduction order, hence every weight, is then
the same in every process, and a shared 2-core machine is not oversubscribed),
and saves both with ``save_pretrained`` so plain ``AutoModelForCausalLM`` /
``AutoTokenizer`` load them.

A build takes about 30 s of one core, so it happens once per machine: the
result is kept in a cache folder (``$LLMOPS_CACHE``, else the project's
``.cache/llmops/``, else one beside the registry folder) keyed by the spec, shared
by tests, notebooks and the demo.
``tiny_base_model`` registers the cached folder as ``model://tiny-gpt2`` in the
workspace's registry (once per spec) and mirrors it to W&B (about 2 MB).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .world import corpus, task_examples

__all__ = [
    "TinyModelSpec",
    "build_tiny_model",
    "cached_tiny_model",
    "tiny_base_model",
    "cache_dir",
    "TINY_MODEL_NAME",
    "FINETUNE_DEFAULTS",
]

TINY_MODEL_NAME = "tiny-gpt2"
CACHE_ENV = "LLMOPS_CACHE"
EOS = "<|endoftext|>"
PAD = "<|pad|>"
INFO_FILE = "llmops_tiny.json"
# Built here from generated text, so it is the project's own work, under the project's license.
TINY_LICENSE = "BSD-3-Clause"

# Hyperparameters measured to work on this model (``%finetune`` uses them unless told otherwise):
# on the QA task, LoRA with these lifts held-out exact match from 0 to about 0.7.
FINETUNE_DEFAULTS = {"lr": 3e-3, "epochs": 15, "batch_size": 16, "max_length": 64}


@dataclass(frozen=True)
class TinyModelSpec:
    """Everything that decides the weights; ``key`` names the cache folder and the registry version."""

    seed: int = 0
    vocab_size: int = 768
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 128
    seq_len: int = 32
    batch_size: int = 32
    steps: int = 300
    lr: float = 6e-3
    threads: int = 1

    @property
    def key(self) -> str:
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


def _train(spec: TinyModelSpec, tokenizer, lines: list[str]):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

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
    loss = torch.tensor(float("nan"))
    for _ in range(spec.steps):
        starts = torch.randint(0, len(data) - spec.seq_len - 1, (spec.batch_size,), generator=gen)
        batch = torch.stack([data[s : s + spec.seq_len] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, float(loss.detach())


def build_tiny_model(dest: str | Path, spec: TinyModelSpec | None = None) -> Path:
    """Train the tiny base model and save it to ``dest`` (replaced whole). Byte-identical per spec.

    Nothing that varies between builds (time, paths) goes into the folder, so two
    builds of one spec have the same registry digest.
    """
    import torch

    spec = spec or TinyModelSpec()
    dest = Path(dest)
    lines = corpus(spec.seed)
    tokenizer = _train_tokenizer(spec, lines + [f"{r['question']} {r['answer']}" for r in task_examples(spec.seed)])
    threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)  # bit-identical results need a fixed reduction order
    try:
        model, final_loss = _train(spec, tokenizer, lines)
    finally:
        torch.set_num_threads(threads)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        info = {"spec": asdict(spec), "final_loss": round(final_loss, 4), "parameters": model.num_parameters()}
        (staging / INFO_FILE).write_text(json.dumps(info, sort_keys=True, indent=1))
        if dest.exists():
            shutil.rmtree(dest)
        staging.replace(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def cache_dir(home: str | Path | None = None) -> Path:
    """``$LLMOPS_CACHE``, else ``.cache/llmops`` in the project root, else next to the registry folder.

    The model is cached in the workspace, never in the user's home folder: without a project
    root it goes beside ``home`` (the registry folder; default, the one ``resolve_home`` finds),
    where W&B's offline runs go too.
    """
    from ..context.home import find_project_root, resolve_home

    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    root = find_project_root()
    if root is not None:
        return root / ".cache" / "llmops"
    registry = Path(home).expanduser().resolve() if home else resolve_home()
    return registry.parent / ".cache" / "llmops"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """One builder per cache entry across processes (pytest, a kernel and the demo may start together)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_tiny_model(spec: TinyModelSpec | None = None, cache: str | Path | None = None) -> Path:
    """The built model folder for ``spec`` from the cache, building it there the first time."""
    spec = spec or TinyModelSpec()
    root = Path(cache) if cache else cache_dir()
    folder = root / f"tiny-{spec.key}"
    if (folder / INFO_FILE).is_file():
        return folder
    with _file_lock(root / f"tiny-{spec.key}.lock"):
        if not (folder / INFO_FILE).is_file():
            started = time.perf_counter()
            build_tiny_model(folder, spec)
            stats = {"build_seconds": round(time.perf_counter() - started, 1), "built_at": time.time()}
            (root / f"tiny-{spec.key}.build.json").write_text(json.dumps(stats))
    return folder


def tiny_base_model(
    workspace: Any = None, spec: TinyModelSpec | None = None, *, call: Any = None, name=None, aliases=()
):
    """The registered tiny base model (``model://tiny-gpt2``), built on first use and cached.

    Also what ``register_model("tiny")`` runs (``call`` then carries its command line).
    """
    from ..context.workspaces import current
    from ..ops.catalog import Call
    from ..ops.models import TINY, ModelSpec
    from ..recording.publish import publish
    from .card import describe_folder

    ws = workspace or (call.ws if call is not None else current())
    reg = ws.registry
    spec = spec or TinyModelSpec()
    name = name or TINY_MODEL_NAME
    if reg.exists(f"model://{name}"):
        for art in reversed(reg.versions("model", name)):
            if art.metadata.get("spec_key") == spec.key:
                for alias in aliases:
                    art = reg.set_alias(art, alias)
                return art
    folder = cached_tiny_model(spec, cache_dir(ws.home))
    stats_file = folder.parent / f"tiny-{spec.key}.build.json"
    stats = json.loads(stats_file.read_text()) if stats_file.is_file() else {}
    meta = json.loads((folder / INFO_FILE).read_text())
    result = publish(  # mirrored so that, online, a fine-tune's run can use_artifact its base
        ws,
        "model",
        name,
        spec=ModelSpec(source=TINY, name=None if name == TINY_MODEL_NAME else name, aliases=tuple(aliases)),
        call=call or Call(workspace=ws),
        path=folder,
        aliases=aliases,
        metadata={
            **describe_folder(folder),  # the card a chooser reads, as for any folder
            "license": TINY_LICENSE,
            "spec_key": spec.key,
            "architecture": "gpt2",
            "built_by": "llmops_magics.models.tiny",
            "finetune_defaults": FINETUNE_DEFAULTS,
            "build_seconds": stats.get("build_seconds"),
            **meta,
        },
    )
    return result.artifact
