"""Fine-tuning (LoRA or full) with transformers ``Trainer`` + PEFT, as a background job.

Heavy libraries are imported only when a run starts, inside its thread.
"""

from .outputs import FinetuneResult
from .run import FinetuneJob, finetune, finetune_runs
from .spec import DEFAULTS, FinetuneSpec

__all__ = ["DEFAULTS", "FinetuneJob", "FinetuneResult", "FinetuneSpec", "finetune", "finetune_runs"]
