"""``%card REF [--intended-use …] [--limitations …]`` and ``%export REF FOLDER [--force]``: model cards and export."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["CardMagics"]


@magics_class
class CardMagics(Magics):
    @spec_arguments("llmops_magics.ops.card:CardSpec")
    @line_magic
    @usage_errors
    def card(self, line):
        """Write the model card of an adapter or model from its lineage, store it, show it.

        %card qa-lora --intended-use "Answering questions about the demo world" --limitations "English only"

        Base model, training data with digests and PII scans, hyperparameters, evals (model-index),
        fairness gaps, the W&B run; "not recorded" where lineage holds nothing. A ``card`` artifact.
        """
        from ...ops.card import CARD

        spec, _ = parse_spec(self.card, split(line))
        return CARD.run(spec, call(f"%card {line}"))

    @spec_arguments("llmops_magics.ops.card:ExportSpec")
    @line_magic
    @usage_errors
    def export(self, line):
        """Write an adapter or model as a folder plain transformers + PEFT load: weights, tokenizer, README.md card.

        %export qa-lora exports/qa-lora [--force]
        """
        from ...ops.card import EXPORT

        spec, _ = parse_spec(self.export, split(line))
        return EXPORT.run(spec, call(f"%export {line}"))
