"""``%model SOURCE`` (register a base model) and ``%model list [SEARCH]``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["ModelMagics"]


@magics_class
class ModelMagics(Magics):
    @spec_arguments("llmops_magics.ops.models:ModelSpec")
    @line_magic
    @usage_errors
    def model(self, line):
        """Register a base model (a local Hugging Face folder, or the embedded tiny model), or list models.

        %model SOURCE [--name NAME] [--alias A] [--description TEXT]
        %model list [SEARCH]
        """
        words = split(line)
        if words[:1] == ["list"]:
            from ...context import registry

            return registry().list("model", words[1] if len(words) > 1 else None)
        from ...ops.models import MODEL

        spec, _ = parse_spec(self.model, words)
        return MODEL.run(spec, call(f"%model {line}"))
