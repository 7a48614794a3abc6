"""``%finetune --data REF [options]`` (a background job with a live panel) and ``%finetune list``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ... import finetuning
from .base import usage_errors

__all__ = ["FinetuneMagics"]


@magics_class
class FinetuneMagics(Magics):
    @magic_arguments()
    @argument("--data", "-d", help="Training dataset reference (its 'train' split is used).")
    @argument(
        "--base",
        "-b",
        default=None,
        help="Base model: a registered model reference or a local HF folder. "
        "Default: the embedded tiny model (built and cached on first use).",
    )
    @argument("--eval-data", default=None, help="Evaluation dataset (default: --data's validation split, if any).")
    @argument(
        "--prompt",
        "-p",
        default=None,
        help="Registered prompt that formats each row (default: 'Question: {{ question }}\\nAnswer:').",
    )
    @argument("--target-column", default=None, help="Column holding the completion (default: answer).")
    @argument("--method", "-m", choices=finetuning.spec.METHODS, default=None, help="lora (default) or full.")
    @argument("--r", type=int, default=None, help="LoRA rank (default 8).")
    @argument("--alpha", type=float, default=None, help="LoRA alpha (default 16).")
    @argument("--dropout", type=float, default=None, help="LoRA dropout (default 0.05).")
    @argument("--target-modules", default=None, help="Comma-separated module names (default: all linear layers).")
    @argument("--epochs", type=float, default=None, help="Training epochs (default 3).")
    @argument("--max-steps", type=int, default=None, help="Optimizer steps; overrides --epochs.")
    @argument("--lr", type=float, default=None, help="Learning rate (default 2e-4 for LoRA, 2e-5 for full).")
    @argument("--batch-size", type=int, default=None, help="Examples per device per step (default 8).")
    @argument("--grad-accum", type=int, default=None, help="Gradient accumulation steps (default 1).")
    @argument("--max-length", type=int, default=None, help="Tokens per example, prompt and target (default 256).")
    @argument("--seed", type=int, default=None, help="Seed for weights init, data order and dropout (default 0).")
    @argument("--eval-steps", type=int, default=None, help="Evaluate every N steps (default: at the end).")
    @argument("--save-steps", type=int, default=None, help="Checkpoint every N steps (default: --eval-steps or 50).")
    @argument("--logging-steps", type=int, default=None, help="Log the training loss every N steps (default 5).")
    @argument("--early-stopping", type=int, default=None, help="Stop after N evaluations without improvement.")
    @argument("--name", "-n", default=None, help="Name of the adapter artifact (default: DATA-METHOD).")
    @argument("--alias", "-a", action="append", default=[], help="Alias for the result (repeatable).")
    @argument("--merge", action="store_true", default=None, help="Also register the merged model.")
    @argument(
        "--launcher",
        choices=finetuning.spec.LAUNCHERS,
        default=None,
        help="torchrun or accelerate: train with DDP in --nproc processes.",
    )
    @argument("--nproc", type=int, default=None, help="Processes for --launcher (default 2).")
    @argument("--threads", type=int, default=None, help="CPU threads per process (default: 1 for small models).")
    @argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        help="Continue the latest cancelled/crashed run of this spec, or the run id given.",
    )
    @argument("--wait", action="store_true", help="Block the cell until the run ends.")
    @line_magic
    @usage_errors
    def finetune(self, line):
        """Fine-tune a base model on a registered dataset, in the background, with a live panel.

        %finetune --data REF [--base REF_OR_PATH] [--eval-data REF] [--prompt REF] [--method lora|full]
                  [--r 8 --alpha 16 --dropout 0.05 --target-modules all-linear] [--epochs 3 | --max-steps N]
                  [--lr 2e-4] [--batch-size 8] [--max-length 256] [--seed 0] [--eval-steps N]
                  [--early-stopping N] [--name NAME] [--merge] [--launcher torchrun --nproc 2]
                  [--resume [RUN_ID]] [--wait]
        %finetune list

        Returns the job (``job.status``, ``job.wait()``, ``job.cancel()``, ``job.result``); the
        result is an ``adapter`` artifact linked to its base model, dataset and prompt.
        """
        if line.strip() == "list":
            return finetuning.finetune_runs()
        args = parse_argstring(self.finetune, line)
        options = {k: v for k, v in vars(args).items() if k not in ("alias", "wait")}
        job = finetuning.finetune(aliases=args.alias, spec={"magic": f"%finetune {line}".strip()}, **options)
        if args.wait:
            job.wait()
        return job
