"""Fine-tuning: ``%finetune --data REF``, ``finetune(data=…)``, ``llmops finetune --data …``.

``None`` means "the default": the base model's ``finetune_defaults`` first (the tiny model
ships values measured to work on it), then each option's ``fallback``. The stored spec
is the resolved one: every value filled in and every reference pinned to a version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..finetuning import FinetuneJob

__all__ = ["FinetuneSpec", "finetune", "FINETUNE", "METHODS", "LAUNCHERS"]

METHODS = ("lora", "full")
LAUNCHERS = ("none", "torchrun", "accelerate")


def _modules(value: Any) -> str | tuple[str, ...]:
    """``"all-linear"`` stays text; ``"c_attn,c_proj"`` or a list becomes a tuple of module names."""
    if isinstance(value, str):
        if value.strip() in ("", "all-linear", "all"):
            return "all-linear"
        value = value.split(",")
    if not isinstance(value, Sequence):
        raise ValidationError(f"target_modules must be module names or all-linear, found {value!r}")
    mods = tuple(str(v).strip() for v in value if str(v).strip())
    if not mods:
        raise ValidationError("target_modules must name at least one module (or be all-linear)")
    return mods


@dataclass(frozen=True, kw_only=True)
class FinetuneSpec(Spec):
    """What a fine-tune trains, on what, and how."""

    op = "finetune"

    data: str | None = option(None, short="-d", help="Training dataset reference (its 'train' split is used).")
    base: str | None = option(
        None,
        short="-b",
        help="Base model: a registered model reference or a local HF folder. "
        "Default: the embedded tiny model (built and cached on first use).",
    )
    eval_data: str | None = option(
        None, help="Evaluation dataset (default: the validation split of --data, if it has one)."
    )
    prompt: str | None = option(
        None,
        short="-p",
        help="Registered prompt that formats each row (default: 'Question: {{ question }}\\nAnswer:').",
    )
    target_column: str | None = option(None, help="Column holding the completion (default: answer).")
    method: str | None = option(None, short="-m", choices=METHODS, fallback="lora", help="lora or full.")
    r: int | None = option(None, fallback=8, help="LoRA rank.")
    alpha: float | None = option(None, fallback=16, help="LoRA alpha.")
    dropout: float | None = option(None, fallback=0.05, help="LoRA dropout.")
    target_modules: Any = option(
        None,
        kind="any",
        check=_modules,
        fallback="all-linear",
        help="Comma-separated module names (default: all linear layers, found per architecture by PEFT).",
    )
    epochs: float | None = option(None, fallback=3.0, help="Training epochs.")
    max_steps: int | None = option(None, fallback=None, help="Optimizer steps; overrides --epochs.")
    lr: float | None = option(None, fallback=2e-4, help="Learning rate (default 2e-4 for LoRA, 2e-5 for full).")
    batch_size: int | None = option(None, fallback=8, help="Examples per device per step.")
    grad_accum: int | None = option(None, fallback=1, help="Gradient accumulation steps.")
    max_length: int | None = option(None, fallback=256, help="Tokens per example, prompt and target.")
    seed: int | None = option(None, fallback=0, help="Seed for weights init, data order and dropout.")
    eval_steps: int | None = option(None, fallback=None, help="Evaluate every N steps (default: at the end).")
    save_steps: int | None = option(None, fallback=None, help="Checkpoint every N steps (default: --eval-steps or 50).")
    logging_steps: int | None = option(None, fallback=5, help="Log the training loss every N steps.")
    early_stopping: int | None = option(
        None, fallback=None, help="Stop after N evaluations without improvement (default: never)."
    )
    name: str | None = option(
        None,
        short="-n",
        help="Name of the run and its adapter (default: DATA-METHOD); "
        "the adapter's registry name keeps letters, digits, '.', '_', '-' ('my run' → my-run).",
    )
    aliases: tuple[str, ...] = option((), flag="--alias", short="-a", help="Alias for the result (repeatable).")
    merge: bool | None = option(
        None, fallback=False, help="Also register the model with the adapter merged into its weights."
    )
    launcher: str | None = option(
        None,
        choices=LAUNCHERS,
        fallback="none",
        help="torchrun or accelerate: train with DDP in --nproc processes (default: none).",
    )
    nproc: int | None = option(None, fallback=1, help="Processes for --launcher (default 2 with a launcher, else 1).")
    train_split: str | None = option(None, fallback="train", help="Split of --data to train on.")
    eval_split: str | None = option(None, fallback=None, help="Split of the evaluation data (default: validation).")
    threads: int | None = option(None, fallback=None, help="CPU threads per process (default: 1 for small models).")
    resume: bool | str = option(
        False,
        kind="bool",
        const=True,
        stored=False,
        metavar="RUN_ID",
        help="Continue the latest cancelled/crashed run of this spec, or the run id given.",
    )


def finetune(
    data: str | None = None,
    base: str | None = None,
    *,
    eval_data: str | None = None,
    prompt: str | None = None,
    target_column: str | None = None,
    method: str | None = None,
    r: int | None = None,
    alpha: float | None = None,
    dropout: float | None = None,
    target_modules: str | Sequence[str] | None = None,
    epochs: float | None = None,
    max_steps: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    grad_accum: int | None = None,
    max_length: int | None = None,
    seed: int | None = None,
    eval_steps: int | None = None,
    save_steps: int | None = None,
    logging_steps: int | None = None,
    early_stopping: int | None = None,
    name: str | None = None,
    aliases: Sequence[str] = (),
    merge: bool | None = None,
    launcher: str | None = None,
    nproc: int | None = None,
    train_split: str | None = None,
    eval_split: str | None = None,
    threads: int | None = None,
    resume: bool | str = False,
    workspace: Workspace | None = None,
) -> FinetuneJob:
    """Fine-tune ``base`` (default: the tiny model) on dataset ``data``; returns a running job at once.

    ``job.wait()`` gives a ``FinetuneResult`` (``.artifact`` is the ``adapter``, or the ``model``
    for ``method="full"``). ``None`` options take the base model's ``finetune_defaults``, then
    the built-in defaults (LoRA r=8, alpha=16 on all linear layers, lr 2e-4, 3 epochs, batch 8,
    max_length 256, seed 0). ``launcher="torchrun"`` (or ``"accelerate"``) with ``nproc=N``
    trains with DDP in N processes. ``resume`` continues a cancelled or crashed run from its
    last checkpoint (``True``: the latest one of this spec; or a run id; ``data`` may then be
    left out).
    """
    return FINETUNE.call(locals())


FINETUNE = Operation(
    "finetune",
    FinetuneSpec,
    "llmops_magics.finetuning.run:run",
    "finetune",
    "fine-tune a base model (LoRA or full) on a registered dataset; prints the adapter's reference",
    long=True,
    ref_of=lambda value, stored: (
        (value.merged if stored.get("output") == "merged" and value.merged else value.artifact).ref
    ),
)
