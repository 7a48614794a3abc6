"""``%finetune --data REF [options]`` (a background job with a live panel) and ``%finetune list``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["FinetuneMagics"]

WAIT = (("--wait",), {"action": "store_true", "help": "Block the cell until the run ends."})


@magics_class
class FinetuneMagics(Magics):
    @spec_arguments("llmops_magics.ops.finetune:FinetuneSpec", WAIT)
    @line_magic
    @usage_errors
    def finetune(self, line):
        """Fine-tune a base model on a registered dataset, in the background, with a live panel.

        %finetune --data REF [--base REF_OR_PATH] [--method lora|full] [--max-steps N] … [--wait]
        %finetune list

        Returns the job (``job.status``, ``job.wait()``, ``job.cancel()``, ``job.result``); the
        result is an ``adapter`` artifact linked to its base model, dataset and prompt.
        """
        if line.strip() == "list":
            from ...finetuning import finetune_runs

            return finetune_runs()
        from ...ops.finetune import FINETUNE

        spec, front = parse_spec(self.finetune, split(line))
        job = FINETUNE.run(spec, call(f"%finetune {line}"))
        if front.get("wait"):
            job.wait()
        return job
