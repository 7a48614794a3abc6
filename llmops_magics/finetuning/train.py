"""The training itself: transformers ``Trainer`` + PEFT, driven by a JSON-ready plan.

The same function runs in the notebook's job thread and in every process of a
``torchrun`` / ``accelerate`` launch (``worker.py``), so one spec trains the same
way on one process or N. It talks to the outside through two callables only:
``emit(event)`` for progress and metrics (rank 0 only) and ``should_stop()`` for
cancellation. Under DDP the stop flag is all-reduced every step, so all ranks stop
at the same step (a rank that stopped alone would hang its peers in the next
all-reduce), save one checkpoint together and exit.

Trainer is kept quiet: no tqdm, no ``PrinterCallback`` dicts on stdout,
``report_to=[]`` (W&B is recorded by the caller through its recorder, so the local
record never depends on W&B), transformers' logging at error level.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["run_training", "Plan", "last_checkpoint", "map_logs", "load_dtype"]

Plan = dict[str, Any]
Emit = Callable[[Mapping[str, Any]], None]
PROGRESS_INTERVAL = 0.25  # seconds between progress events; log events are never dropped


def last_checkpoint(folder: str | Path) -> Path | None:
    """The ``checkpoint-N`` with the highest N under ``folder`` that holds a complete trainer state."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = []
    for p in folder.glob("checkpoint-*"):
        suffix = p.name.rsplit("-", 1)[-1]
        if suffix.isdigit() and (p / "trainer_state.json").is_file():
            found.append((int(suffix), p))
    return max(found)[1] if found else None


def map_logs(logs: Mapping[str, Any]) -> tuple[str, dict[str, float]]:
    """Trainer's log dict → ``("log"|"summary", {"train/loss": …, "eval/loss": …})``."""
    out: dict[str, float] = {}
    final = any(k in logs for k in ("train_runtime", "train_loss"))
    for key, value in logs.items():
        if not isinstance(value, (int, float)) or key == "epoch":
            continue
        if key.startswith("eval_"):
            out[f"eval/{key[5:]}"] = float(value)
        elif key.startswith("train_"):
            out[f"train/{key[6:]}"] = float(value)
        elif key == "learning_rate":
            out["train/lr"] = float(value)
        else:
            out[f"train/{key}"] = float(value)
    return ("summary" if final else "log"), out


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _callbacks(emit: Emit, should_stop: Callable[[], bool], outcome: dict[str, Any]):
    import torch
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Progress (throttled), losses and ETA as events, from rank 0 only."""

        def __init__(self) -> None:
            self.started = 0.0
            self.first_step = 0
            self.last_sent = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.started, self.first_step = time.perf_counter(), state.global_step
            if state.is_world_process_zero:
                emit({"type": "progress", "step": state.global_step, "max_steps": state.max_steps, "phase": "train"})

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            last = state.global_step >= state.max_steps
            if not state.is_world_process_zero or (now - self.last_sent < PROGRESS_INTERVAL and not last):
                return
            self.last_sent = now
            done = state.global_step - self.first_step
            elapsed = now - self.started
            rate = done / elapsed if elapsed > 0 and done > 0 else None
            eta = (state.max_steps - state.global_step) / rate if rate else None
            emit(
                {
                    "type": "progress",
                    "step": state.global_step,
                    "max_steps": state.max_steps,
                    "epoch": round(state.epoch or 0.0, 3),
                    "elapsed_seconds": round(elapsed, 2),
                    "steps_per_second": round(rate, 3) if rate else None,
                    "eta_seconds": round(eta, 1) if eta is not None else None,
                }
            )

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            outcome["last_eval"] = {"step": state.global_step, **(metrics or {})}

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            kind, metrics = map_logs(logs)
            if metrics:
                emit({"type": kind, "step": state.global_step, "epoch": round(state.epoch or 0.0, 3), **metrics})

    class Stop(TrainerCallback):
        """Cancellation: one flag for all ranks; save a checkpoint, then stop."""

        def on_step_end(self, args, state, control, **kwargs):
            flag = 1.0 if should_stop() else 0.0
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                t = torch.tensor([flag], device=args.device if args.device.type != "cpu" else "cpu")
                torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
                flag = float(t.item())
            if flag and state.global_step < state.max_steps:
                control.should_save = True
                control.should_training_stop = True
                outcome["cancelled"] = True
            return control

    return [Progress(), Stop()]


def _training_args(plan: Plan, has_eval: bool):
    import torch
    from transformers import TrainingArguments

    s = plan["spec"]
    cuda = torch.cuda.is_available() and not plan.get("force_cpu")
    bf16 = bool(cuda and torch.cuda.is_bf16_supported())
    eval_steps = s["eval_steps"] if has_eval else None
    save_steps = s["save_steps"] or eval_steps or 50
    kwargs: dict[str, Any] = {
        "output_dir": plan["checkpoint_dir"],
        "per_device_train_batch_size": s["batch_size"],
        "per_device_eval_batch_size": s["batch_size"],
        "gradient_accumulation_steps": s["grad_accum"],
        "learning_rate": s["lr"],
        "num_train_epochs": s["epochs"],
        "max_steps": s["max_steps"] or -1,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "logging_strategy": "steps",
        "logging_steps": s["logging_steps"],
        "eval_strategy": "steps" if eval_steps else "no",
        "eval_steps": eval_steps,
        "save_strategy": "steps",
        "save_steps": save_steps,
        "save_total_limit": 2,
        "seed": s["seed"],
        "data_seed": s["seed"],
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": not cuda,
        "bf16": bf16,
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
        "ddp_backend": ("nccl" if cuda else "gloo") if _rank()[1] > 1 else None,
        "ddp_find_unused_parameters": False,
        "log_level": "error",
        "log_level_replica": "error",
    }
    if s["early_stopping"]:
        kwargs.update(
            load_best_model_at_end=True,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
            save_steps=eval_steps,
        )
    return TrainingArguments(**kwargs), bf16


def _rows(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_dtype(method: str, bf16: bool) -> str:
    """The dtype the base weights are loaded in: bf16 only for a frozen LoRA base.

    Trainer's ``bf16=True`` is autocast; the optimizer updates the weights in their own
    dtype. A full fine-tune loaded in bf16 would have no fp32 master weights, and
    AdamW's small updates would round away. LoRA's trainable weights are fp32 either
    way (PEFT upcasts adapters on a bf16 base), so its frozen base can stay in bf16.
    """
    return "bfloat16" if bf16 and method != "full" else "float32"


def _model(plan: Plan, bf16: bool):
    import torch
    from transformers import AutoModelForCausalLM

    s = plan["spec"]
    dtype = getattr(torch, load_dtype(s["method"], bf16))
    model = AutoModelForCausalLM.from_pretrained(plan["base_path"], dtype=dtype)
    if s["method"] == "full":
        return model
    import warnings

    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=s["r"],
        lora_alpha=s["alpha"],
        lora_dropout=s["dropout"],
        target_modules=s["target_modules"],
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # GPT-2's Conv1D: PEFT sets fan_in_fan_out itself and says so
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


def run_training(plan: Plan, emit: Emit, should_stop: Callable[[], bool]) -> dict[str, Any]:
    """Train as ``plan`` says; returns the outcome (metrics, output folders, or ``cancelled``).

    ``spec["threads"]`` sets torch's CPU threads for the run; both it and transformers' progress
    bars are restored afterwards.
    """
    import torch
    from transformers.utils import logging as hf_logging

    threads, wanted = torch.get_num_threads(), plan["spec"].get("threads")
    bars = hf_logging.is_progress_bar_enabled()
    if wanted and not torch.cuda.is_available():
        torch.set_num_threads(wanted)
    hf_logging.disable_progress_bar()  # "Loading weights" bars would land in whichever cell is running
    try:
        return _train(plan, emit, should_stop)
    finally:
        torch.set_num_threads(threads)
        if bars:
            hf_logging.enable_progress_bar()


def _train(plan: Plan, emit: Emit, should_stop: Callable[[], bool]) -> dict[str, Any]:
    import transformers
    from transformers import AutoTokenizer, EarlyStoppingCallback, PrinterCallback, Trainer

    from .data import CausalCollator, encode_examples

    transformers.logging.set_verbosity_error()
    transformers.set_seed(plan["spec"]["seed"])
    s = plan["spec"]
    rank, world = _rank()
    emit({"type": "message", "text": "loading the base model"})
    tokenizer = AutoTokenizer.from_pretrained(plan["base_path"])
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    common = (tokenizer, plan["template"], plan["prompt_params"], plan["target_column"], s["max_length"])
    train_rows, truncated = encode_examples(_rows(plan["train_file"]), *common, where=plan["train_ref"])
    eval_rows, _ = encode_examples(_rows(plan.get("eval_file")), *common, where=plan.get("eval_ref") or "", train=False)
    args, bf16 = _training_args(plan, bool(eval_rows))
    model = _model(plan, bf16)
    outcome: dict[str, Any] = {"cancelled": False}
    collator = CausalCollator(tokenizer.pad_token_id)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows or None,
        data_collator=collator,
        callbacks=_callbacks(emit, should_stop, outcome),
    )
    trainer.remove_callback(PrinterCallback)
    if s["early_stopping"]:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=s["early_stopping"]))
    resume = plan.get("resume_from")
    emit({"type": "message", "text": f"training from {Path(resume).name}" if resume else "training"})
    train_out = trainer.train(resume_from_checkpoint=resume)
    state = trainer.state
    _write_rank_record(plan, rank, world, state, collator)
    metrics = {k: v for k, v in train_out.metrics.items() if isinstance(v, (int, float))}
    metrics.update(global_step=state.global_step, max_steps=state.max_steps, truncated_examples=truncated)
    if not outcome["cancelled"] and eval_rows:
        last = outcome.pop("last_eval", None) or {}
        if last.get("step") != state.global_step or s["early_stopping"]:  # the best model may be an earlier one
            last = trainer.evaluate()
        metrics.update({k: v for k, v in last.items() if isinstance(v, (int, float)) and k != "step"})
    outcome.pop("last_eval", None)
    outcome.update(metrics=metrics, step=state.global_step, max_steps=state.max_steps)
    if outcome["cancelled"]:
        checkpoint = last_checkpoint(plan["checkpoint_dir"])
        outcome["checkpoint"] = str(checkpoint) if checkpoint else None
        return outcome
    _save_outputs(plan, trainer, tokenizer, outcome)
    return outcome


def _write_rank_record(plan: Plan, rank: int, world: int, state: Any, collator: Any) -> None:
    folder = Path(plan["run_dir"]) / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "rank": rank,
        "world_size": world,
        "global_step": state.global_step,
        "samples": collator.samples,
        "tokens": collator.tokens,
        "rows_seen": sorted(set(collator.seen)),
        "pid": os.getpid(),
    }
    tmp = folder / f".rank-{rank}.json.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(folder / f"rank-{rank}.json")


def _save_outputs(plan: Plan, trainer: Any, tokenizer: Any, outcome: dict[str, Any]) -> None:
    """Rank 0 writes the adapter (or full model) with its tokenizer, and the merged model if asked."""
    if not trainer.is_world_process_zero():
        return
    out = Path(plan["output_dir"])
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.save_pretrained(str(out))  # not trainer.save_model: its training_args.bin would make every digest unique
    tokenizer.save_pretrained(str(out))
    outcome["output_dir"] = str(out)
    if plan["spec"].get("merge"):
        merged_dir = Path(plan["merged_dir"])
        merged = model.merge_and_unload()
        merged.save_pretrained(str(merged_dir))
        tokenizer.save_pretrained(str(merged_dir))
        outcome["merged_dir"] = str(merged_dir)
