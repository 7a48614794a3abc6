"""Fine-tuning (LoRA or full) with transformers ``Trainer`` + PEFT, as a background job.

The operation (its spec and ``finetune()``) is ``ops/finetune.py``; this package resolves a
spec (``spec``), trains (``train``, ``launch`` for DDP), and registers what it made
(``outputs``). Heavy libraries are imported only when a run starts, inside its thread.
"""

from .outputs import FinetuneResult
from .run import FinetuneJob, finetune_runs
from .spec import DEFAULTS

__all__ = ["DEFAULTS", "FinetuneJob", "FinetuneResult", "finetune_runs"]
